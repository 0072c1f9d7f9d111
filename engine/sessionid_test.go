package engine

import "testing"

func TestSessionIDsAllocFreeResume(t *testing.T) {
	a := NewSessionIDs(0x12)
	for want := uint32(0); want < 3; want++ {
		id, ok := a.Alloc()
		if !ok || id != 0x12000000|want {
			t.Fatalf("alloc %d = %08x %v", want, id, ok)
		}
	}
	a.Free(0x12000001)
	// The cursor rolls on: the freed slot is not reused before the space wraps.
	if id, _ := a.Alloc(); id != 0x12000003 {
		t.Fatalf("after free got %08x, want 12000003", id)
	}
	if !a.Take(0x12000001, 0) {
		t.Fatal("resume of a free id refused")
	}
	if a.Take(0x12000001, 0) || a.Take(0x12000000, 0) {
		t.Fatal("resume of a used id accepted")
	}
	if a.Take(0x13000009, 0) {
		t.Fatal("resume of another server's id accepted")
	}
	// An id last held on loop 1 may be resumed on loop 1 only: duplicate sets are per loop.
	a.FreeOn(0x12000001, 1)
	if a.Take(0x12000001, 0) {
		t.Fatal("resume on another loop accepted")
	}
	if !a.Take(0x12000001, 1) {
		t.Fatal("resume on the same loop refused")
	}
	a.Free(0x13000000) // other server: ignored
	a.Free(0x12000000)
	a.Free(0x12000000) // double free: ignored
	if a.Len() != 3 {
		t.Fatalf("Len = %d, want 3", a.Len())
	}
}

func TestSessionIDsFullAndWrap(t *testing.T) {
	a := NewSessionIDs(1)
	for i := 0; i <= MaxSessionIndex; i++ {
		if _, ok := a.Alloc(); !ok {
			t.Fatalf("alloc %d failed", i)
		}
	}
	if _, ok := a.Alloc(); ok {
		t.Fatal("alloc succeeded on a full allocator")
	}
	a.Free(0x01000005)
	a.Free(0x01abcdef)
	// Cursor sits at the last index; the scan wraps to the lowest free one.
	if id, ok := a.Alloc(); !ok || id != 0x01000005 {
		t.Fatalf("wrap got %08x %v", id, ok)
	}
	if id, ok := a.Alloc(); !ok || id != 0x01abcdef {
		t.Fatalf("second got %08x %v", id, ok)
	}
}

package btcpool

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestSolvedShareGolden(t *testing.T) {
	var hdr [80]byte
	for i := range hdr {
		hdr[i] = byte(i + 1)
	}
	m := SolvedShare{JobID: 0x5f5e100000000201, WorkerID: -2, UserID: 1234, Height: 650000, Header: hdr,
		WorkerFullName: "alice.rig01", Coinbase: []byte{0x02, 0x00, 0x00, 0x00, 0x01}}
	// Built from the FoundBlock offsets of spec §7.1.
	want := make([]byte, 144, 149)
	le := binary.LittleEndian
	le.PutUint64(want[0:], 0x5f5e100000000201)
	le.PutUint64(want[8:], 0xfffffffffffffffe)
	le.PutUint32(want[16:], 1234)
	le.PutUint32(want[20:], 650000)
	copy(want[24:104], hdr[:])
	copy(want[104:144], "alice.rig01")
	want = append(want, 0x02, 0x00, 0x00, 0x00, 0x01)
	got := AppendSolvedShare(nil, &m)
	if !bytes.Equal(got, want) {
		t.Fatalf("\n got %x\nwant %x", got, want)
	}
	var d SolvedShare
	d.Coinbase = make([]byte, 0, 64) // reused storage
	if err := DecodeSolvedShare(got, &d); err != nil {
		t.Fatal(err)
	}
	if d.JobID != m.JobID || d.WorkerID != m.WorkerID || d.UserID != m.UserID || d.Height != m.Height ||
		d.Header != m.Header || d.WorkerFullName != m.WorkerFullName || !bytes.Equal(d.Coinbase, m.Coinbase) {
		t.Fatalf("decode %+v", d)
	}
	got[144] = 0xff
	if d.Coinbase[0] != 0x02 {
		t.Fatal("decoded coinbase aliases the input")
	}
}

func TestSolvedShareNames(t *testing.T) {
	long := strings.Repeat("n", 45)
	m := SolvedShare{WorkerFullName: long, Coinbase: []byte{1}}
	b := AppendSolvedShare(nil, &m)
	if len(b) != FoundBlockSize+1 || b[104+39] != 0 || b[104+38] != 'n' {
		t.Fatalf("name not truncated to 39 + NUL: % x", b[104:144])
	}
	var d SolvedShare
	if err := DecodeSolvedShare(b, &d); err != nil || d.WorkerFullName != long[:39] {
		t.Fatalf("%v %q", err, d.WorkerFullName)
	}
	// A foreign producer filling all 40 bytes: the name is all 40.
	copy(b[104:144], strings.Repeat("x", 40))
	if err := DecodeSolvedShare(b, &d); err != nil || d.WorkerFullName != strings.Repeat("x", 40) {
		t.Fatalf("%v %q", err, d.WorkerFullName)
	}
	for _, n := range []int{0, 1, 143, 144} {
		if err := DecodeSolvedShare(make([]byte, n), &d); err == nil {
			t.Errorf("accepted %d bytes", n)
		}
	}
}

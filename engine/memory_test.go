package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// Every connection holds a Session, so its size is part of the per-session
// memory budget (docs/DESIGN.md, "Where each byte goes"): it must stay in
// the 480-byte size class. Agent-only and rarely needed state is made on
// first use instead.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 480 {
		t.Fatalf("Session is %d bytes; keep it within 480 (the allocator rounds 481–512 up to 512)", n)
	}
}

// An idle authorized session holds no vardiff ring, no spam-guard ring and
// no compact decoder; each is made by the first share, reject or compact
// frame that needs it.
func TestIdleSessionStateIsLazy(t *testing.T) {
	o := newOffline(t, testOptions(t))
	s := authorizedSession(t, o)
	if s.m.vd.ring != nil || s.m.rejects != nil || s.compact.d != nil {
		t.Fatalf("idle session: vardiff ring %d, rejects %v, compact %v", len(s.m.vd.ring), s.m.rejects != nil, s.compact.d != nil)
	}
	// The same share twice: vardiff counts the first, the duplicate is a
	// reject and starts the spam guard's ring.
	share := `{"id":3,"method":"mining.submit","params":["alice.rig1","0","0000000000000000","` + fmt.Sprintf("%08x", o.job.Time) + `","00000000"]}` + "\n"
	o.run(s, share)
	if s.m.vd.ring == nil || s.m.rejects != nil {
		t.Fatalf("after an accepted share: vardiff ring %d, rejects %v", len(s.m.vd.ring), s.m.rejects != nil)
	}
	if out := o.run(s, share); !strings.Contains(out, `"error":[22`) {
		t.Fatalf("second submit answered %s, want duplicate (22)", out)
	}
	if s.m.rejects == nil || s.m.vd.ring == nil {
		t.Fatalf("after a rejected share: rejects %v, vardiff ring %d", s.m.rejects != nil, len(s.m.vd.ring))
	}
}

// A lazily made vardiff ring gives the same difficulties as one made at
// once: the slots it never had were all zero.
func TestVarDiffLazyRingSameAsEager(t *testing.T) {
	cfg := VarDiffConfig{MinExp: 0, MaxExp: 40, DefaultExp: 10, WindowSecs: 300, SlotSecs: 10}
	lazy := NewVarDiff(&cfg)
	eager := NewVarDiff(&cfg)
	eager.ring = make([]float32, 2*eager.slots())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for step := range 2000 {
		now += int64(step % 7)
		if step%3 == 0 && step > 400 {
			lazy.AddShare(now, 1024)
			eager.AddShare(now, 1024)
		}
		if step%11 == 0 {
			if a, b := lazy.Calc(now), eager.Calc(now); a != b {
				t.Fatalf("step %d: lazy ring gives 2^%d, eager 2^%d", step, a, b)
			}
		}
	}
}

// A job's duplicate sets are sized from the previous job's on each loop, so
// a job that gets as many accepted shares as the one before it never grows
// (allocates on) its set on the loop.
func TestDupSetSizedFromPreviousJob(t *testing.T) {
	r := NewJobRepo(300, 30, 8, 2)
	now := time.Now().Unix()
	p1 := testJobParams(100, false)
	j1, _, err := r.Add(p1, now)
	if err != nil {
		t.Fatal(err)
	}
	const keys = 20_000
	for i := uint64(1); i <= keys; i++ {
		j1.seen[0].seenBefore(dupKey{i * 0x9e3779b97f4a7c15, i})
	}
	p2 := testJobParams(101, false)
	j2, _, err := r.Add(p2, now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(j2.seen[0].slots), dupSlotsFor(keys); got != want || want < 2*keys {
		t.Fatalf("loop 0: %d slots, want %d (room for %d keys)", got, want, keys)
	}
	if j2.seen[1].slots != nil {
		t.Fatalf("loop 1 had no shares, yet its set has %d slots", len(j2.seen[1].slots))
	}
	before := &j2.seen[0].slots[0]
	for i := uint64(1); i <= keys+keys/8; i++ {
		j2.seen[0].seenBefore(dupKey{i * 0xbf58476d1ce4e5b9, i})
	}
	if &j2.seen[0].slots[0] != before {
		t.Fatalf("the set grew on the loop with %d keys (sized for %d)", keys+keys/8, keys)
	}
	if dupSlotsFor(0) != dupSetInitial || dupSlotsFor(1<<30) != 2*maxDupPerLoop {
		t.Fatalf("dupSlotsFor bounds: %d, %d", dupSlotsFor(0), dupSlotsFor(1<<30))
	}
}

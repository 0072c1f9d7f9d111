package jobmaker

import (
	"errors"
	"testing"
)

func testBook() *book {
	return &book{jobInterval: 20, lifeTime: 90, emptyLife: 15}
}

// tmpl returns a template at height h, empty or with one transaction.
func tmpl(h int32, empty bool) *Template {
	t := &Template{Height: h}
	if !empty {
		t.TxIDs = [][32]byte{{byte(h)}}
	}
	return t
}

func hashN(n int) [32]byte {
	var h [32]byte
	h[0], h[1] = byte(n), byte(n>>8)
	return h
}

// step is one event in a book scenario: a template arriving (add) or a
// check of what job is due at a time (due), optionally marking it sent.
type step struct {
	now     int64
	add     bool
	hash    int
	created uint32
	height  int32
	empty   bool
	wantErr error // for add

	// for due:
	wantHeight  int32
	wantEmpty   bool
	wantTrigger Trigger
	send        bool
}

func add(now int64, hash int, created uint32, height int32, empty bool, wantErr error) step {
	return step{now: now, add: true, hash: hash, created: created, height: height, empty: empty, wantErr: wantErr}
}

func due(now int64, height int32, empty bool, why Trigger, send bool) step {
	return step{now: now, wantHeight: height, wantEmpty: empty, wantTrigger: why, send: send}
}

func runSteps(t *testing.T, b *book, steps []step) {
	t.Helper()
	for i, s := range steps {
		if s.add {
			_, err := b.admit(hashN(s.hash), s.created, s.now)
			if err == nil {
				_, err = b.insert(hashN(s.hash), s.created, tmpl(s.height, s.empty))
			}
			if !errors.Is(err, s.wantErr) || (err != nil) != (s.wantErr != nil) {
				t.Fatalf("step %d: add(height %d, created %d) at %d: err %v, want %v", i, s.height, s.created, s.now, err, s.wantErr)
			}
			continue
		}
		got, why := b.due(s.now)
		if why != s.wantTrigger {
			t.Fatalf("step %d: due at %d: trigger %v, want %v", i, s.now, why, s.wantTrigger)
		}
		if s.wantTrigger != NoTrigger && (got.Height != s.wantHeight || got.Empty() != s.wantEmpty) {
			t.Fatalf("step %d: due at %d: template height %d empty %v, want %d %v", i, s.now, got.Height, got.Empty(), s.wantHeight, s.wantEmpty)
		}
		if s.send {
			b.sent(got, s.now)
		}
	}
}

func TestBookRules(t *testing.T) {
	const T = 1_763_000_000
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"empty book makes no job", []step{
			due(T, 0, false, NoTrigger, false),
		}},
		{"first template is a new height", []step{
			add(T, 1, T, 100, false, nil),
			due(T, 100, false, NewHeight, true),
			due(T+19, 0, false, NoTrigger, false),
		}},
		{"periodic refresh after job_interval", []step{
			add(T, 1, T, 100, false, nil),
			due(T, 100, false, NewHeight, true),
			due(T+19, 0, false, NoTrigger, false),
			due(T+20, 100, false, PeriodicRefresh, true),
			due(T+39, 0, false, NoTrigger, false),
			due(T+40, 100, false, PeriodicRefresh, true),
		}},
		{"new height at once", []step{
			add(T, 1, T, 100, false, nil),
			due(T, 100, false, NewHeight, true),
			add(T+3, 2, T+3, 101, true, nil),
			due(T+3, 101, true, NewHeight, true),
		}},
		{"empty to full at the same height at once", []step{
			add(T, 1, T, 101, true, nil),
			due(T, 101, true, NewHeight, true),
			add(T+1, 2, T+1, 101, false, nil),
			due(T+1, 101, false, EmptyToFull, true),
			// full to full at the same height waits for the interval
			add(T+5, 3, T+5, 101, false, nil),
			due(T+5, 0, false, NoTrigger, false),
			due(T+21, 101, false, PeriodicRefresh, true),
		}},
		{"non-empty beats a newer empty template at the same height", []step{
			add(T, 1, T, 101, false, nil),
			add(T+2, 2, T+2, 101, true, nil),
			due(T+2, 101, false, NewHeight, true),
		}},
		{"newest full template wins at the same height", []step{
			add(T, 1, T, 101, false, nil),
			add(T+2, 2, T+1, 101, false, nil),
			due(T+2, 101, false, NewHeight, true),
			due(T+22, 101, false, PeriodicRefresh, false), // the key with time T+1 is best
		}},
		{"higher height beats everything", []step{
			add(T, 1, T, 101, false, nil),
			add(T+1, 2, T+1, 102, true, nil),
			add(T+2, 3, T+2, 101, false, ErrHeightRegressed), // lower, 1 s after the best
			due(T+2, 102, true, NewHeight, true),
		}},
		{"duplicate gbthash", []step{
			add(T, 7, T, 100, false, nil),
			add(T+1, 7, T+1, 100, false, ErrDuplicateGbt),
		}},
		{"age limit is 60 s either way", []step{
			add(T, 1, T-59, 100, false, nil),
			add(T, 2, T-60, 100, false, ErrGbtTooOld),
			add(T, 3, T+59, 100, false, nil),
			add(T, 4, T+60, 100, false, ErrGbtTooOld),
		}},
		{"a refused template's hash is not remembered", []step{
			add(T, 1, T-61, 100, false, ErrGbtTooOld),
			add(T, 1, T, 100, false, nil),
		}},
		{"height regression guard is 2*job_interval", []step{
			add(T, 1, T, 100, false, nil),
			add(T+39, 2, T+39, 99, false, ErrHeightRegressed),
			add(T+40, 3, T+40, 99, false, nil),
			add(T+41, 4, T+41, 100, true, nil),                // same height is never a regression
			add(T+42, 5, T-10, 98, false, ErrHeightRegressed), // lower and older
		}},
		{"regression guard counts from the best template, not the newest", []step{
			add(T, 1, T, 100, false, nil),
			add(T+30, 2, T+30, 99, false, ErrHeightRegressed),
			add(T+45, 3, T+45, 99, false, nil),
			due(T+45, 100, false, NewHeight, true),
		}},
		{"lower height accepted after the window becomes best when the higher expires", []step{
			add(T, 1, T, 100, false, nil),
			due(T, 100, false, NewHeight, true),
			add(T+50, 2, T+50, 99, false, nil),
			due(T+50, 100, false, PeriodicRefresh, true),
			due(T+90, 99, false, PeriodicRefresh, true), // height 100 expired at T+90
		}},
		{"full templates live 90 s, empty ones 15 s", []step{
			add(T, 1, T, 100, false, nil),
			add(T+1, 2, T+1, 101, true, nil),
			due(T+1, 101, true, NewHeight, true),
			due(T+15, 101, true, NoTrigger, false),
			due(T+16, 100, false, NoTrigger, false), // empty expired; the full one is lower
			due(T+21, 100, false, PeriodicRefresh, true),
		}},
		{"the last template never expires", []step{
			add(T, 1, T, 100, true, nil),
			due(T, 100, true, NewHeight, true),
			due(T+1000, 100, true, PeriodicRefresh, true),
			due(T+100000, 100, true, PeriodicRefresh, true),
		}},
		{"empty to full needs the same height as the last job", []step{
			add(T, 1, T, 100, true, nil),
			due(T, 100, true, NewHeight, true),
			add(T+1, 2, T+1, 99, false, ErrHeightRegressed),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, testBook(), tc.steps)
		})
	}
}

func TestBookMergedMiningTrigger(t *testing.T) {
	const T = 1_763_000_000
	b := testBook()
	runSteps(t, b, []step{add(T, 1, T, 100, false, nil), due(T, 100, false, NewHeight, true)})
	b.mergedMining = true
	runSteps(t, b, []step{due(T+1, 100, false, MergedMining, true), due(T+2, 0, false, NoTrigger, false)})
}

func TestBookRecentHashesAreTheLast20(t *testing.T) {
	const T = 1_763_000_000
	b := testBook()
	for i := range 21 {
		if _, err := b.admit(hashN(i), T, T); err != nil {
			t.Fatalf("hash %d: %v", i, err)
		}
		if _, err := b.insert(hashN(i), T, tmpl(100, false)); err != nil {
			t.Fatalf("hash %d: %v", i, err)
		}
	}
	if _, err := b.admit(hashN(0), T, T); err != nil {
		t.Errorf("hash 0 was pushed out by 20 newer ones, still refused: %v", err)
	}
	for i := 1; i <= 20; i++ {
		if _, err := b.admit(hashN(i), T, T); !errors.Is(err, ErrDuplicateGbt) {
			t.Errorf("hash %d: %v, want ErrDuplicateGbt", i, err)
		}
	}
	// All 21 had the same key: the first stays, the rest were not added.
	if len(b.entries) != 1 || b.entries[0].tmpl.TxIDs[0] != [32]byte{100} {
		t.Errorf("book holds %d entries", len(b.entries))
	}
}

func TestBookDuplicateKeyKeepsTheFirst(t *testing.T) {
	b := testBook()
	first, second := tmpl(100, false), tmpl(100, false)
	if added, err := b.insert(hashN(1), 5, first); !added || err != nil {
		t.Fatal(added, err)
	}
	if added, err := b.insert(hashN(2), 5, second); added || err != nil {
		t.Fatal(added, err)
	}
	if b.entries[0].tmpl != first {
		t.Error("duplicate key replaced the first template")
	}
}

func TestBookIsBounded(t *testing.T) {
	b := testBook()
	for i := range maxBookEntries + 10 {
		if _, err := b.insert(hashN(i), uint32(1000+i), tmpl(int32(100+i), false)); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.entries) != maxBookEntries {
		t.Fatalf("book holds %d entries, bound %d", len(b.entries), maxBookEntries)
	}
	if got := keyHeight(b.entries[0].k); got != 110 {
		t.Errorf("lowest kept height %d, want 110", got)
	}
}

func TestBookKey(t *testing.T) {
	for _, tc := range []struct {
		height int32
		empty  bool
		time   uint32
		want   uint64
	}{
		{0, true, 0, 0},
		{1, true, 0, 1 << 33},
		{1, false, 0, 1<<33 | 1<<32},
		{840_000, false, 1_763_000_000, 840_000<<33 | 1<<32 | 1_763_000_000},
		{1<<31 - 1, false, 1<<32 - 1, 1<<64 - 1},
	} {
		k := bookKey(tc.height, tc.empty, tc.time)
		if k != tc.want {
			t.Errorf("bookKey(%d, %v, %d) = %#x, want %#x", tc.height, tc.empty, tc.time, k, tc.want)
		}
		if keyHeight(k) != tc.height || keyEmpty(k) != tc.empty || keyTime(k) != tc.time {
			t.Errorf("key %#x reads back as %d %v %d", k, keyHeight(k), keyEmpty(k), keyTime(k))
		}
	}
	// Order: height, then non-empty, then time.
	if !(bookKey(2, true, 0) > bookKey(1, false, 1<<32-1)) || !(bookKey(1, false, 0) > bookKey(1, true, 1<<32-1)) {
		t.Error("key order is not height, non-empty, time")
	}
}

func TestTriggerString(t *testing.T) {
	for tr, want := range map[Trigger]string{NoTrigger: "none", NewHeight: "new height", EmptyToFull: "empty to full",
		MergedMining: "merged mining", PeriodicRefresh: "periodic refresh", 9: "Trigger(9)"} {
		if got := tr.String(); got != want {
			t.Errorf("%d: %q, want %q", tr, got, want)
		}
	}
}

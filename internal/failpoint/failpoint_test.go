package failpoint

import "testing"

func TestHitKillsAtTheArmedHit(t *testing.T) {
	killed := 0
	saved := kill
	kill = func() { killed++ }
	defer func() { kill = saved; Arm("") }()

	Hit("engine.solved.after-fsync") // unarmed: nothing
	Arm("blkmaker.after-submit:3")
	for i := 1; i <= 5; i++ {
		Hit("blkmaker.after-submit")
		Hit("engine.solved.after-fsync")
		if want := map[bool]int{true: 1, false: 0}[i >= 3]; killed != want {
			t.Fatalf("after hit %d: killed %d times, want %d", i, killed, want)
		}
	}
	Arm("x")
	Hit("x")
	if killed != 2 {
		t.Fatalf("name without a count kills at the first hit: killed %d", killed)
	}
	Arm("y:2@10ms")
	Hit("y")
	Hit("y")
	if killed != 3 {
		t.Fatalf("count and delay: killed %d", killed)
	}
	Arm("z^gate")
	Hit("z")
	if killed != 3 {
		t.Fatalf("gated point hit before its gate: killed %d", killed)
	}
	Hit("gate")
	Hit("z")
	if killed != 4 {
		t.Fatalf("gated point not hit after its gate: killed %d", killed)
	}
	killed--
	Arm("x:bad")
	Hit("x:bad")
	if killed != 4 {
		t.Fatalf("unparsable count is taken as part of the name: killed %d", killed)
	}
}

func BenchmarkHitUnarmed(b *testing.B) {
	Arm("")
	for b.Loop() {
		Hit("engine.solved.after-fsync")
	}
}

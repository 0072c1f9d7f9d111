package engine

import (
	"math"
	"testing"
)

func TestDiffExp(t *testing.T) {
	for _, tc := range []struct {
		d    float64
		want int
	}{
		{1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {16384, 14}, {16385, 15},
		{0.5, -1}, {0.3, -1}, {0.25, -2}, {math.Ldexp(1, -31), -31}, {math.Ldexp(1.5, -31), -30},
		{0, MinDiffExp}, {-1, MinDiffExp}, {math.NaN(), MinDiffExp}, {1e-300, MinDiffExp},
		{math.Ldexp(1, 63), 63}, {math.Ldexp(1, 63) + 1e5, 63}, {1e300, MaxDiffExp}, {math.Inf(1), MaxDiffExp},
	} {
		if got := DiffExp(tc.d); got != tc.want {
			t.Errorf("DiffExp(%g) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func testVarDiffConfig() *VarDiffConfig {
	return &VarDiffConfig{MinExp: 6, MaxExp: 62, DefaultExp: 14, WindowSecs: 900, SlotSecs: 10}
}

func TestVarDiffScript(t *testing.T) {
	const t0 = 1_700_000_000
	type step struct {
		at     int64   // seconds after t0
		shares int     // shares added, one per second ending at `at`
		diff   float64 // credited diff of each share (0 → current)
		want   int     // exponent after Calc at `at`
	}
	for _, tc := range []struct {
		name  string
		cfg   *VarDiffConfig
		setup func(v *VarDiff)
		steps []step
	}{
		{"fast miner doubles until count fits", testVarDiffConfig(), nil, []step{
			{at: 0, want: 14},
			{at: 100, shares: 100, want: 14}, // 100 ≤ 90*1.4
			{at: 200, shares: 100, want: 16}, // 200 → 100 → 50
		}},
		{"slow start halves once per minute when idle", testVarDiffConfig(), nil, []step{
			{at: 0, want: 14}, {at: 59, want: 14}, {at: 60, want: 13}, {at: 61, want: 12}, // counts are 0 ≤ 1: halves on each call
		}},
		{"slow start stops at the minimum", testVarDiffConfig(), func(v *VarDiff) { v.Reset(7) }, []step{
			{at: 0, want: 7}, {at: 60, want: 6}, {at: 120, want: 6},
		}},
		{"full window with few shares lowers", testVarDiffConfig(), nil, []step{
			{at: 0, want: 14},
			{at: 50, shares: 30, want: 14},
			{at: 899, want: 14}, // window not full yet
			{at: 900, want: 13}, // full: 30 < 90*0.4 → halve once (counts 60)
		}},
		{"full window within band stays", testVarDiffConfig(), nil, []step{
			{at: 50, shares: 40, want: 14},
			{at: 900, want: 14}, // 40 ≥ 36
		}},
		{"hash-rate level raises the expected count", testVarDiffConfig(), nil, []step{
			// 65 shares of 2^40 in 900 s is millions of TH/s: top level, coefficient 6,
			// expected 540; 65 < 216 → 130 → 260: two halvings.
			{at: 0, want: 14},
			{at: 890, shares: 65, diff: 1 << 40, want: 14},
			{at: 900, want: 12},
		}},
		{"same count at a low hash rate stays", testVarDiffConfig(), nil, []step{
			{at: 0, want: 14},
			{at: 890, shares: 65, diff: 1, want: 14},
			{at: 900, want: 14}, // level 0: expected 90, 65 ≥ 36
		}},
		{"fractional minimum on test networks", &VarDiffConfig{MinExp: -31, MaxExp: 62, DefaultExp: -20, WindowSecs: 300, SlotSecs: 10}, nil, []step{
			{at: 0, want: -20}, {at: 60, want: -21},
		}},
		{"dev fixed difficulty", &VarDiffConfig{MinExp: 6, MaxExp: 62, DefaultExp: 14, WindowSecs: 900, SlotSecs: 10, Fixed: true, FixedExp: -3}, nil, []step{
			{at: 0, want: -3}, {at: 300, shares: 300, want: -3},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVarDiff(tc.cfg)
			if tc.setup != nil {
				tc.setup(&v)
			}
			for _, s := range tc.steps {
				for i := s.shares; i > 0; i-- {
					d := s.diff
					if d == 0 {
						d = ExpDiff(v.Exp())
					}
					v.AddShare(t0+s.at-int64(i)+1, d)
				}
				if got := v.Calc(t0 + s.at); got != s.want {
					t.Fatalf("at +%ds: exp %d, want %d", s.at, got, s.want)
				}
			}
		})
	}
}

func TestVarDiffLevelHysteresis(t *testing.T) {
	v := NewVarDiff(testVarDiffConfig())
	for _, tc := range []struct {
		ths  float64
		want int
	}{
		{5, 0},    // below 1.5×4
		{6, 1},    // ≥ 1.5×4
		{11.9, 1}, // below 1.5×8
		{12, 2},
		{24, 3},
		{20, 3},   // inside the band: no move
		{12.1, 3}, // 12.1 > 0.75×16
		{12, 2},   // ≤ 0.75×16
		{0, 0},
		{1e9, 8},
	} {
		v.updateLevel(tc.ths)
		if int(v.level) != tc.want {
			t.Fatalf("at %g TH/s level %d, want %d", tc.ths, v.level, tc.want)
		}
	}
}

func TestVarDiffMinAndReset(t *testing.T) {
	v := NewVarDiff(testVarDiffConfig())
	v.SetMin(16)
	if v.Exp() != 16 || v.MinExp() != 16 {
		t.Fatalf("SetMin(16): cur %d min %d", v.Exp(), v.MinExp())
	}
	v.SetMin(2) // below the server minimum
	if v.MinExp() != 6 || v.Exp() != 16 {
		t.Fatalf("SetMin(2): cur %d min %d", v.Exp(), v.MinExp())
	}
	v.Reset(70)
	if v.Exp() != 62 {
		t.Fatalf("Reset(70) = %d, want max 62", v.Exp())
	}
	v.Reset(0)
	if v.Exp() != 6 {
		t.Fatalf("Reset(0) = %d, want min 6", v.Exp())
	}
}

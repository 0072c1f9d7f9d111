package engine

import "math"

// Difficulties in the engine are always powers of two (spec §4.12): they are
// held as the exponent k of 2^k, so that the fractional minimums of test
// networks (2^-20, 2^-31 on regtest) are as exact as 2^62, and a share target
// is a table lookup.
const (
	// MinDiffExp is the smallest difficulty exponent the engine uses (2^-40).
	MinDiffExp = -40
	// MaxDiffExp is the largest (2^63, btcpool's formatDifficulty cap).
	MaxDiffExp = 63
)

// DiffExp rounds a difficulty up to the next power of two and returns its
// exponent, clamped to [MinDiffExp, MaxDiffExp] (btcpool's formatDifficulty).
// NaN and values <= 0 give MinDiffExp.
func DiffExp(d float64) int {
	if !(d > 0) {
		return MinDiffExp
	}
	if math.IsInf(d, 1) {
		return MaxDiffExp
	}
	frac, exp := math.Frexp(d) // d = frac * 2^exp, frac in [0.5, 1)
	if frac == 0.5 {
		exp-- // exact power of two
	}
	return clampExp(exp)
}

func clampExp(e int) int {
	if e < MinDiffExp {
		return MinDiffExp
	}
	if e > MaxDiffExp {
		return MaxDiffExp
	}
	return e
}

// ExpDiff returns 2^e as a float64 (exact).
func ExpDiff(e int) float64 { return math.Ldexp(1, e) }

// VarDiffConfig holds the server-wide vardiff parameters (sserver.cfg).
type VarDiffConfig struct {
	MinExp     int   // min_difficulty as an exponent
	MaxExp     int   // max_difficulty as an exponent (≤ 62)
	DefaultExp int   // default_difficulty as an exponent
	WindowSecs int64 // diff_adjust_period
	SlotSecs   int64 // share_avg_seconds
	FixedExp   int   // dev_fixed_difficulty as an exponent, used when Fixed
	Fixed      bool  // enable_dev_mode: never adjust
}

func (c *VarDiffConfig) slots() int {
	if c.SlotSecs <= 0 || c.WindowSecs < c.SlotSecs {
		return 1
	}
	return int(c.WindowSecs / c.SlotSecs)
}

// Hash-rate levels (TH/s) and their expected-share coefficients (spec §4.12).
var (
	hashRateLevels = [...]float64{0, 4, 8, 16, 32, 64, 128, 256, 512}
	levelCoeff     = [...]float64{1.0, 1.0, 1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 6.0}
)

// maxVarDiffSlots bounds a window so that a bad config cannot make every
// miner allocate a huge ring.
const maxVarDiffSlots = 4096

// VarDiff is one miner's difficulty controller (btcpool's DiffController).
// It is not safe for concurrent use; it lives on its session's event loop.
// Times are unix seconds passed in by the caller, so tests drive the clock.
//
// Every session holds one, so it is kept small: exponents are int8 and the
// two per-slot rings (share counts, and credited difficulty for the hash
// rate) are float32 halves of one allocation, made at the first share (an
// idle session has none: all its slots would be zero). Counts are integers scaled by
// powers of two, exact in a float32; the difficulty sums only estimate a
// hash rate.
type VarDiff struct {
	cfg   *VarDiffConfig
	start int64
	head  int64     // slot number (now / SlotSecs) of counts()[head % n]
	ring  []float32 // [0,n): share counts per slot; [n,2n): credited difficulty per slot; nil before the first share
	cur   int8      // current exponent
	min   int8      // miner minimum exponent (md=, minimum-difficulty)
	level int8
}

func (v *VarDiff) counts() []float32 { return v.ring[:len(v.ring)/2] }
func (v *VarDiff) diffs() []float32  { return v.ring[len(v.ring)/2:] }

// NewVarDiff returns a controller at the configured default difficulty.
func NewVarDiff(cfg *VarDiffConfig) VarDiff {
	v := VarDiff{cfg: cfg, cur: int8(clampExp(cfg.DefaultExp)), min: int8(clampExp(cfg.MinExp))}
	v.clamp()
	return v
}

// slots is the ring's slot count (the window over the slot length).
func (v *VarDiff) slots() int64 { return int64(min(v.cfg.slots(), maxVarDiffSlots)) }

// Exp returns the current difficulty exponent without recomputing it.
func (v *VarDiff) Exp() int { return int(v.cur) }

// MinExp returns the miner's minimum difficulty exponent.
func (v *VarDiff) MinExp() int { return int(v.min) }

// SetMin raises or lowers the miner's minimum (password md=, mining.configure
// minimum-difficulty, suggest on NiceHash). It never goes below the server
// minimum, and the current difficulty follows it up.
func (v *VarDiff) SetMin(e int) {
	if e < v.cfg.MinExp {
		e = v.cfg.MinExp
	}
	if e > v.cfg.MaxExp {
		e = v.cfg.MaxExp
	}
	v.min = int8(e)
	if v.cur < v.min {
		v.cur = v.min
	}
}

// Reset sets the current difficulty (password d=, suggest_target,
// suggest_difficulty) and clears the share counters.
func (v *VarDiff) Reset(e int) {
	v.cur = int8(clampExp(e))
	v.clamp()
	clear(v.ring)
	v.start = 0
}

func (v *VarDiff) clamp() {
	if v.cur < v.min {
		v.cur = v.min
	}
	if int(v.cur) > v.cfg.MaxExp {
		v.cur = int8(v.cfg.MaxExp)
	}
	if int(v.cur) < v.cfg.MinExp {
		v.cur = int8(v.cfg.MinExp)
	}
}

// advance moves the ring to slot k, clearing the slots that were skipped.
func (v *VarDiff) advance(now int64) {
	slot := int64(1)
	if v.cfg.SlotSecs > 0 {
		slot = v.cfg.SlotSecs
	}
	k := now / slot
	n := int64(len(v.ring) / 2)
	if k <= v.head {
		return
	}
	if n == 0 {
		v.head = k // no ring yet: every slot is zero
		return
	}
	if k-v.head >= n {
		clear(v.ring)
	} else {
		for i := v.head + 1; i <= k; i++ {
			v.ring[i%n] = 0
			v.ring[n+i%n] = 0
		}
	}
	v.head = k
}

// AddShare records one share answered at the given credited difficulty
// (0 for shares rejected before a job was found, spec §4.9 step 4).
func (v *VarDiff) AddShare(now int64, diff float64) {
	if v.start == 0 {
		v.start = now
	}
	v.advance(now)
	if v.ring == nil {
		v.ring = make([]float32, 2*v.slots())
	}
	n := int64(len(v.ring) / 2)
	i := v.head % n
	v.ring[i]++
	v.ring[n+i] += float32(diff)
}

func (v *VarDiff) sum(s []float32) float64 {
	var t float64
	for _, x := range s {
		t += float64(x)
	}
	return t
}

func (v *VarDiff) scale(f float32) {
	c := v.counts()
	for i := range c {
		c[i] *= f
	}
}

// updateLevel moves the hash-rate level with hysteresis: up only when the
// rate is at least 1.5× the level's upper bound, down only when it is at most
// 0.75× its lower bound.
func (v *VarDiff) updateLevel(ths float64) {
	last := int8(len(hashRateLevels) - 1)
	for i := 0; i < len(hashRateLevels); i++ {
		if v.level < last && ths >= 1.5*hashRateLevels[v.level+1] {
			v.level++
			continue
		}
		if v.level > 0 && ths <= 0.75*hashRateLevels[v.level] {
			v.level--
			continue
		}
		break
	}
}

// Calc recomputes the difficulty for the next notify and returns its
// exponent (btcpool's calcCurDiff). Loops are bounded by the exponent range.
func (v *VarDiff) Calc(now int64) int {
	if v.cfg.Fixed {
		v.cur = int8(clampExp(v.cfg.FixedExp))
		return int(v.cur)
	}
	if v.start == 0 {
		v.start = now
	}
	v.advance(now)
	window := v.cfg.WindowSecs
	if window <= 0 {
		window = 1
	}
	slot := v.cfg.SlotSecs
	if slot <= 0 {
		slot = 1
	}
	count := v.sum(v.counts())
	expected := math.Round(float64(window) / float64(slot))
	full := now >= v.start+window
	if full {
		ths := v.sum(v.diffs()) * (1 << 32) / float64(window) / 1e12
		v.updateLevel(ths)
		expected *= levelCoeff[v.level]
	}
	if expected > float64(window) {
		expected = float64(window)
	}
	if !full && now >= v.start+60 && count <= math.Floor(float64(now-v.start)/60) && v.cur >= v.min+1 {
		v.cur--
		v.scale(2)
		v.clamp()
		return int(v.cur)
	}
	if count > expected*1.40 {
		for count > expected && int(v.cur) < v.cfg.MaxExp {
			v.cur++
			v.scale(0.5)
			count = v.sum(v.counts())
		}
	} else if full && v.cur >= v.min+1 {
		for count < expected*0.40 && v.cur >= v.min+1 {
			v.cur--
			v.scale(2)
			count = v.sum(v.counts())
		}
	}
	v.clamp()
	return int(v.cur)
}

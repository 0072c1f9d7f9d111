package sha

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
)

func (t Target) big() *big.Int {
	b := t.Bytes()
	return new(big.Int).SetBytes(b[:])
}

var two256 = new(big.Int).Lsh(big.NewInt(1), 256)

func TestDiff1(t *testing.T) {
	if got := CompactToTarget(0x1d00ffff); got != Diff1 {
		t.Fatalf("CompactToTarget(0x1d00ffff) = %v, Diff1 = %v", got, Diff1)
	}
	if s := Diff1.String(); s != "00000000ffff0000000000000000000000000000000000000000000000000000" {
		t.Fatalf("Diff1 = %s", s)
	}
	if Diff1.Compact() != 0x1d00ffff {
		t.Fatalf("Diff1.Compact() = %08x", Diff1.Compact())
	}
}

func TestCompactTable(t *testing.T) {
	for _, tc := range []struct {
		bits uint32
		want string // big-endian hex
		ok   bool
	}{
		{0x1d00ffff, "00000000ffff0000000000000000000000000000000000000000000000000000", true},
		{0x1b04864c, "000000000004864c000000000000000000000000000000000000000000000000", true},
		{0x207fffff, "7fffff0000000000000000000000000000000000000000000000000000000000", true},
		{0x01003456, "0000000000000000000000000000000000000000000000000000000000000000", false},
		{0x01123456, "0000000000000000000000000000000000000000000000000000000000000012", true},
		{0x02123456, "0000000000000000000000000000000000000000000000000000000000001234", true},
		{0x03123456, "0000000000000000000000000000000000000000000000000000000000123456", true},
		{0x04123456, "0000000000000000000000000000000000000000000000000000000012345600", true},
		{0x04923456, "0000000000000000000000000000000000000000000000000000000000000000", false}, // negative
		{0x00000000, "0000000000000000000000000000000000000000000000000000000000000000", false},
		{0x22000001, "0100000000000000000000000000000000000000000000000000000000000000", true},
		{0x23000001, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", false}, // overflow
		{0x210000ff, "00ff000000000000000000000000000000000000000000000000000000000000", true},
		{0x22000100, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", false},
		{0xff123456, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", false},
	} {
		got, ok := ParseCompact(tc.bits)
		if got.String() != tc.want || ok != tc.ok {
			t.Errorf("ParseCompact(%08x) = %v, %v; want %s, %v", tc.bits, got, ok, tc.want, tc.ok)
		}
		if CompactToTarget(tc.bits) != got {
			t.Errorf("CompactToTarget(%08x) differs from ParseCompact", tc.bits)
		}
	}
}

// TestCompactMatchesBtcd checks CompactToTarget and Compact against btcd's
// CompactToBig and BigToCompact over random encodings of every size.
func TestCompactMatchesBtcd(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200000; i++ {
		bits := rng.Uint32()
		if i%2 == 0 {
			bits = bits&0x00ffffff | uint32(rng.IntN(36))<<24
		}
		got, ok := ParseCompact(bits)
		ref := blockchain.CompactToBig(bits)
		switch {
		case ref.Sign() < 0:
			if ok || !got.IsZero() {
				t.Fatalf("%08x negative: got %v, %v", bits, got, ok)
			}
		case ref.Cmp(two256) >= 0:
			if ok || got != maxTarget {
				t.Fatalf("%08x overflow: got %v, %v", bits, got, ok)
			}
		default:
			if got.big().Cmp(ref) != 0 || ok != (ref.Sign() > 0) {
				t.Fatalf("%08x: got %v, %v; btcd %x", bits, got, ok, ref)
			}
			if c, want := got.Compact(), blockchain.BigToCompact(ref); c != want {
				t.Fatalf("%08x: Compact() = %08x, btcd %08x", bits, c, want)
			}
		}
	}
}

func randTarget(rng *rand.Rand) Target {
	t := Target{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
	return t.rsh(uint(rng.IntN(257)))
}

func TestTargetCompactMatchesBtcd(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 100000; i++ {
		x := randTarget(rng)
		if got, want := x.Compact(), blockchain.BigToCompact(x.big()); got != want {
			t.Fatalf("%v: Compact() = %08x, btcd %08x", x, got, want)
		}
		var h [32]byte
		b := x.Bytes()
		for j := range b {
			h[j] = b[31-j]
		}
		if HashToTarget(&h) != x {
			t.Fatalf("HashToTarget round trip failed for %v", x)
		}
	}
}

func TestHashMeetsTargetMatchesBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 100000; i++ {
		var h [32]byte
		for j := range h {
			h[j] = byte(rng.Uint32())
		}
		// Make high limbs collide often so every limb comparison is exercised.
		tgt := HashToTarget(&h)
		switch rng.IntN(4) {
		case 0:
			tgt = randTarget(rng)
		case 1:
			tgt[rng.IntN(4)] += uint64(rng.IntN(3)) - 1
		case 2:
			tgt[0] = rng.Uint64()
		}
		want := HashToTarget(&h).big().Cmp(tgt.big()) <= 0
		if got := HashMeetsTarget(&h, &tgt); got != want {
			t.Fatalf("hash %x target %v: got %v want %v", h, tgt, got, want)
		}
		a, b := HashToTarget(&h), tgt
		if got, want := a.Cmp(&b), a.big().Cmp(b.big()); got != want {
			t.Fatalf("Cmp(%v, %v) = %d want %d", a, b, got, want)
		}
	}
	var zero [32]byte
	if !HashMeetsTarget(&zero, &Target{}) {
		t.Fatal("zero hash must meet the zero target")
	}
}

// refDiffToTarget is floor(Diff1 / diff) in exact rational arithmetic,
// clamped to 2^256-1.
func refDiffToTarget(diff float64) *big.Int {
	if diff <= 0 {
		return new(big.Int).Sub(two256, big.NewInt(1))
	}
	q := new(big.Rat).SetInt(Diff1.big())
	q.Quo(q, new(big.Rat).SetFloat64(diff))
	n := new(big.Int).Quo(q.Num(), q.Denom())
	if n.Cmp(two256) >= 0 {
		n.Sub(two256, big.NewInt(1))
	}
	return n
}

func TestDiffToTarget(t *testing.T) {
	check := func(diff float64) {
		t.Helper()
		got := DiffToTarget(diff)
		if want := refDiffToTarget(diff); got.big().Cmp(want) != 0 {
			t.Fatalf("DiffToTarget(%g) = %v, want %064x", diff, got, want)
		}
	}
	// btcpool's table: powers of two are Diff1 >> k; and the fractional
	// powers test networks use are Diff1 << k.
	for k := 0; k < 64; k++ {
		if got := DiffToTarget(math.Ldexp(1, k)); got != Diff1.rsh(uint(k)) {
			t.Fatalf("DiffToTarget(2^%d) = %v, want Diff1>>%d", k, got, k)
		}
		if k <= 32 {
			if got := DiffToTarget(math.Ldexp(1, -k)); got != Diff1.lsh(uint(k)) {
				t.Fatalf("DiffToTarget(2^-%d) = %v, want Diff1<<%d", k, got, k)
			}
		}
	}
	if got := DiffToTarget(math.Ldexp(1, -20)); got.String() != "000ffff000000000000000000000000000000000000000000000000000000000" {
		t.Fatalf("DiffToTarget(2^-20) = %v", got)
	}
	// btcpool's integer path: floor(T1 / diff) for uint64 difficulties.
	for _, d := range []uint64{1, 3, 7, 1000, 1 << 20, 65536, 16384 + 1, 1e9 + 7, 1 << 52, 1<<53 - 1} {
		want := new(big.Int).Quo(Diff1.big(), new(big.Int).SetUint64(d))
		if got := DiffToTarget(float64(d)); got.big().Cmp(want) != 0 {
			t.Fatalf("DiffToTarget(%d) = %v, want %064x", d, got, want)
		}
	}
	for _, d := range []float64{
		0, -1, math.Inf(-1), math.SmallestNonzeroFloat64, 1e-300, math.Ldexp(1, -32), math.Ldexp(1, -33),
		math.Ldexp(0xffff, -48), math.Ldexp(1, -85), math.Ldexp(1.5, -40), 0.1, 0.5, 0.75, 1.5, 3.3, 1e6, 1.2345678e15,
		1e20, 1e60, math.Ldexp(1, 223), math.Ldexp(1, 224), math.Ldexp(1, 300), math.MaxFloat64,
	} {
		check(d)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 20000; i++ {
		check(math.Ldexp(rng.Float64()+0.5, rng.IntN(300)-100))
	}
	if got := DiffToTarget(math.NaN()); !got.IsZero() {
		t.Fatalf("DiffToTarget(NaN) = %v, want 0", got)
	}
	if got := DiffToTarget(math.Inf(1)); !got.IsZero() {
		t.Fatalf("DiffToTarget(+Inf) = %v, want 0", got)
	}
}

func TestDifficulty(t *testing.T) {
	for _, tc := range []struct {
		bits uint32
		want float64
	}{
		{0x1d00ffff, 1},
		{0x1b04864c, 14484.162361225399},     // block 100000
		{0x207fffff, 4.6565423739069247e-10}, // regtest
	} {
		if got := BitsToDifficulty(tc.bits); math.Abs(got-tc.want) > 1e-12*tc.want {
			t.Errorf("BitsToDifficulty(%08x) = %.17g, want %.17g", tc.bits, got, tc.want)
		}
	}
	if d := (Target{}).Difficulty(); !math.IsInf(d, 1) {
		t.Errorf("zero target difficulty = %g", d)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < 20000; i++ {
		x := randTarget(rng)
		if x.IsZero() {
			continue
		}
		want, _ := new(big.Float).Quo(new(big.Float).SetInt(Diff1.big()), new(big.Float).SetInt(x.big())).Float64()
		got := x.Difficulty()
		if math.Abs(got-want) > 4e-16*want {
			t.Fatalf("%v.Difficulty() = %.17g, want %.17g", x, got, want)
		}
		fw, _ := new(big.Float).SetInt(x.big()).Float64()
		if f := x.Float64(); f != fw {
			t.Fatalf("%v.Float64() = %.17g, want %.17g", x, f, fw)
		}
	}
	// Difficulty and DiffToTarget invert each other to float precision.
	for _, d := range []float64{math.Ldexp(1, -20), 0.001, 1, 1024, 123456.789, 1e12} {
		if back := DiffToTarget(d).Difficulty(); math.Abs(back-d) > 1e-12*d {
			t.Errorf("DiffToTarget(%g).Difficulty() = %g", d, back)
		}
	}
}

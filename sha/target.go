package sha

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Target is an unsigned 256-bit number in four 64-bit limbs, limb 0 least
// significant. Share and block targets, and hashes read as numbers, are
// compared in this form without math/big.
type Target [4]uint64

// Diff1 is the difficulty-1 target, CompactToTarget(0x1d00ffff) =
// 0x00000000ffff0000...0000, as btcpool and Bitcoin Core define it.
var Diff1 = Target{0, 0, 0, 0x00000000ffff0000}

// maxTarget is 2^256-1, the target of difficulty 0 in btcpool.
var maxTarget = Target{math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64}

// CompactToTarget decodes Bitcoin's compact "bits" form (Bitcoin Core's
// arith_uint256::SetCompact). Encodings that Core calls negative give the
// zero target and encodings that overflow 256 bits give the all-ones target;
// ParseCompact reports both.
func CompactToTarget(bits uint32) Target {
	t, _ := ParseCompact(bits)
	return t
}

// ParseCompact is CompactToTarget that also reports whether bits is a valid
// proof-of-work target: ok is false when the encoding is negative, zero or
// overflows 256 bits (the cases Bitcoin Core's CheckProofOfWork rejects).
func ParseCompact(compact uint32) (t Target, ok bool) {
	size := uint(compact >> 24)
	word := uint64(compact & 0x007fffff)
	if word == 0 {
		return Target{}, false
	}
	if compact&0x00800000 != 0 {
		return Target{}, false
	}
	if size <= 3 {
		word >>= 8 * (3 - size)
		t[0] = word
		return t, word != 0
	}
	shift := 8 * (size - 3)
	// word has at most 23 significant bits; it overflows when any of them
	// lands at or above bit 256.
	if shift+uint(bits.Len64(word)) > 256 {
		return maxTarget, false
	}
	return Target{word}.lsh(shift), true
}

// Compact returns the compact "bits" encoding of t (Bitcoin Core's
// arith_uint256::GetCompact for a non-negative number). btcpool stores the
// compact form of a share's hash as "bitsReached".
func (t Target) Compact() uint32 {
	n := t.BitLen()
	size := uint32((n + 7) / 8)
	var word uint64
	if size <= 3 {
		word = t[0] << (8 * (3 - size))
	} else {
		word = t.rsh(uint(8 * (size - 3)))[0]
	}
	if word&0x00800000 != 0 {
		word >>= 8
		size++
	}
	return uint32(word&0x007fffff) | size<<24
}

// HashToTarget reads a hash's 32 internal-order bytes as a little-endian
// 256-bit number, the value Bitcoin compares against a target.
func HashToTarget(h *[32]byte) Target {
	return Target{
		binary.LittleEndian.Uint64(h[0:8]),
		binary.LittleEndian.Uint64(h[8:16]),
		binary.LittleEndian.Uint64(h[16:24]),
		binary.LittleEndian.Uint64(h[24:32]),
	}
}

// HashMeetsTarget reports whether the hash, read as a number, is <= t.
func HashMeetsTarget(h *[32]byte, t *Target) bool {
	for i := 3; i >= 0; i-- {
		v := binary.LittleEndian.Uint64(h[8*i:])
		if v != t[i] {
			return v < t[i]
		}
	}
	return true
}

// Cmp compares t and u and returns -1, 0 or +1.
func (t *Target) Cmp(u *Target) int {
	for i := 3; i >= 0; i-- {
		if t[i] != u[i] {
			if t[i] < u[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// IsZero reports whether t is zero.
func (t Target) IsZero() bool { return t[0]|t[1]|t[2]|t[3] == 0 }

// BitLen returns the number of significant bits of t (0 for zero).
func (t Target) BitLen() int {
	for i := 3; i >= 0; i-- {
		if t[i] != 0 {
			return 64*i + bits.Len64(t[i])
		}
	}
	return 0
}

// Bytes returns t as 32 big-endian bytes.
func (t Target) Bytes() [32]byte {
	var b [32]byte
	for i := 0; i < 4; i++ {
		binary.BigEndian.PutUint64(b[24-8*i:], t[i])
	}
	return b
}

// String returns t as 64 lower-case hex digits, most significant first.
func (t Target) String() string {
	const digits = "0123456789abcdef"
	b := t.Bytes()
	var out [64]byte
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out[:])
}

// lsh returns t << s; bits shifted past bit 255 are lost.
func (t Target) lsh(s uint) Target {
	if s >= 256 {
		return Target{}
	}
	var r Target
	limbs, s := int(s/64), s%64
	for i := 3; i >= limbs; i-- {
		v := t[i-limbs] << s
		if s != 0 && i-limbs-1 >= 0 {
			v |= t[i-limbs-1] >> (64 - s)
		}
		r[i] = v
	}
	return r
}

// rsh returns t >> s.
func (t Target) rsh(s uint) Target {
	if s >= 256 {
		return Target{}
	}
	var r Target
	limbs, s := int(s/64), s%64
	for i := 0; i+limbs < 4; i++ {
		v := t[i+limbs] >> s
		if s != 0 && i+limbs+1 < 4 {
			v |= t[i+limbs+1] << (64 - s)
		}
		r[i] = v
	}
	return r
}

// DiffToTarget returns the share target of a difficulty: floor(Diff1 / diff),
// computed exactly from the float64's binary value, so powers of two give
// Diff1 >> k (btcpool's table) and integer difficulties give btcpool's
// integer division. Fractional difficulties (test networks use 2^-20 and
// below) give targets above Diff1; a result above 2^256-1 is clamped to it.
// diff <= 0 gives the all-ones target (btcpool's difficulty 0); NaN and
// +Inf give the zero target, which only an all-zero hash meets.
func DiffToTarget(diff float64) Target {
	if diff <= 0 {
		return maxTarget
	}
	if math.IsNaN(diff) || math.IsInf(diff, 1) {
		return Target{}
	}
	frac, exp := math.Frexp(diff) // diff = frac * 2^exp, frac in [0.5, 1)
	mant := uint64(frac * (1 << 53))
	shift := exp - 53 // diff = mant * 2^shift exactly
	tz := bits.TrailingZeros64(mant)
	mant >>= uint(tz)
	shift += tz
	if shift >= 0 {
		return divSmall(Diff1.rsh(uint(shift)), mant)
	}
	// Diff1 has 224 bits and mant at most 53: with a left shift of 86 or
	// more the quotient has at least 256 bits.
	s := uint(-shift)
	if s >= 86 {
		return maxTarget
	}
	// Five limbs hold Diff1 << s (at most 310 bits).
	var num [5]uint64
	limbs, r := int(s/64), s%64
	for i := 0; i < 4; i++ {
		num[i+limbs] |= Diff1[i] << r
		if r != 0 && i+limbs+1 < 5 {
			num[i+limbs+1] |= Diff1[i] >> (64 - r)
		}
	}
	var q [5]uint64
	var rem uint64
	for i := 4; i >= 0; i-- {
		q[i], rem = bits.Div64(rem, num[i], mant)
	}
	if q[4] != 0 {
		return maxTarget
	}
	return Target{q[0], q[1], q[2], q[3]}
}

// divSmall returns floor(t / d) for d > 0.
func divSmall(t Target, d uint64) Target {
	var q Target
	var rem uint64
	for i := 3; i >= 0; i-- {
		q[i], rem = bits.Div64(rem, t[i], d)
	}
	return q
}

// Float64 returns t as the nearest float64 (within one unit in the last
// place).
func (t Target) Float64() float64 {
	n := t.BitLen()
	if n <= 64 {
		return float64(t[0])
	}
	top := t.rsh(uint(n - 64))[0]
	// Keep a sticky bit so the conversion rounds correctly in most cases.
	if !t.lsh(uint(256 - (n - 64))).IsZero() {
		top |= 1
	}
	return math.Ldexp(float64(top), n-64)
}

// Difficulty returns Diff1 / t as a float64; the zero target gives +Inf.
func (t Target) Difficulty() float64 {
	if t.IsZero() {
		return math.Inf(1)
	}
	return diff1Float / t.Float64()
}

// diff1Float is Diff1 exactly: 0xffff * 2^208.
var diff1Float = math.Ldexp(0xffff, 208)

// BitsToDifficulty returns the difficulty of a compact target,
// Diff1 / CompactToTarget(bits).
func BitsToDifficulty(bits uint32) float64 {
	return CompactToTarget(bits).Difficulty()
}

package auxpow

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashpool/hashpool/sha"
)

// Targets is the set of merged-mining targets of one job (every aux chain's, and RSK's),
// checked against each share's hash. It is a value type with a fixed array, so a job can
// embed it and the engine's per-share check touches no heap, no math/big and no map.
//
// The zero value holds no targets. Build it once per job with Add; it is then read-only and
// safe for concurrent use.
type Targets struct {
	n       int
	easiest sha.Target // the largest target, checked first: most shares meet none
	t       [MaxChains]sha.Target
}

// ErrTooManyTargets is returned by Add past MaxChains targets.
var ErrTooManyTargets = fmt.Errorf("auxpow: more than %d merged-mining targets", MaxChains)

// Add appends target and returns its index, the bit it sets in Check's result.
func (ts *Targets) Add(target sha.Target) (int, error) {
	if ts.n == MaxChains {
		return 0, ErrTooManyTargets
	}
	ts.t[ts.n] = target
	if ts.n == 0 || ts.easiest.Cmp(&target) < 0 {
		ts.easiest = target
	}
	ts.n++
	return ts.n - 1, nil
}

// Len returns the number of targets.
func (ts *Targets) Len() int { return ts.n }

// Target returns target i.
func (ts *Targets) Target(i int) sha.Target { return ts.t[i] }

// Check returns a bit mask of the targets h (a share hash in internal byte order, read as a
// little-endian number) is at or below: bit i for target i. A hash above the easiest target
// costs one 256-bit comparison whatever the number of targets. It never allocates.
func (ts *Targets) Check(h *[32]byte) uint32 {
	if ts.n == 0 {
		return 0
	}
	v := sha.Target{
		binary.LittleEndian.Uint64(h[0:8]),
		binary.LittleEndian.Uint64(h[8:16]),
		binary.LittleEndian.Uint64(h[16:24]),
		binary.LittleEndian.Uint64(h[24:32]),
	}
	if v.Cmp(&ts.easiest) > 0 {
		return 0
	}
	var mask uint32
	for i := 0; i < ts.n; i++ {
		if v.Cmp(&ts.t[i]) <= 0 {
			mask |= 1 << i
		}
	}
	return mask
}

// BitsTarget parses an aux block's "bits" (8 hex digits, compact form, as createauxblock
// and btcpool's AuxRawGw carry it) into its target. It fails on a negative, zero or
// overflowing encoding.
func BitsTarget(bits string) (sha.Target, error) {
	if len(bits) != 8 {
		return sha.Target{}, fmt.Errorf("auxpow: bits %q: want 8 hex digits", bits)
	}
	v, err := strconv.ParseUint(bits, 16, 32)
	if err != nil {
		return sha.Target{}, fmt.Errorf("auxpow: bits %q: want 8 hex digits", bits)
	}
	t, ok := sha.ParseCompact(uint32(v))
	if !ok {
		return sha.Target{}, fmt.Errorf("auxpow: bits %q is not a valid proof-of-work target", bits)
	}
	return t, nil
}

// ParseTargetLE parses 64 hex digits holding a 256-bit number least significant byte
// first: createauxblock's "_target".
func ParseTargetLE(s string) (sha.Target, error) {
	b, err := hex32(s)
	if err != nil {
		return sha.Target{}, fmt.Errorf("auxpow: target %q: %w", s, err)
	}
	return sha.HashToTarget(&b), nil
}

// ParseTargetBE parses a 256-bit number in big-endian hex with an optional 0x prefix and at
// most 64 digits: RSK's mnr_getWork "target" and btcpool's rskNetworkTarget.
func ParseTargetBE(s string) (sha.Target, error) {
	d := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if d == "" || len(d) > 64 {
		return sha.Target{}, fmt.Errorf("auxpow: target %q: want 1 to 64 hex digits", s)
	}
	b, err := hex32(strings.Repeat("0", 64-len(d)) + d)
	if err != nil {
		return sha.Target{}, fmt.Errorf("auxpow: target %q: not hex", s)
	}
	reverse(&b)
	return sha.HashToTarget(&b), nil
}

// ParseDisplayHash parses a hash in display hex (as createauxblock's "hash") into internal
// byte order.
func ParseDisplayHash(s string) ([32]byte, error) {
	b, err := hex32(s)
	if err != nil {
		return b, fmt.Errorf("auxpow: hash %q: %w", s, err)
	}
	reverse(&b)
	return b, nil
}

// reverse turns a 32-byte number between big-endian (display) and little-endian (internal)
// order.
func reverse(b *[32]byte) {
	for i := 0; i < 16; i++ {
		b[i], b[31-i] = b[31-i], b[i]
	}
}

var errHex32 = errors.New("want 64 hex digits")

func hex32(s string) ([32]byte, error) {
	var b [32]byte
	if len(s) != 64 {
		return b, errHex32
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return b, errHex32
	}
	return b, nil
}

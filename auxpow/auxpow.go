package auxpow

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashpool/hashpool/sha"
)

// Bounds applied by [DecodeAuxPow].
const (
	// MaxCoinbaseBranch is the longest parent coinbase merkle branch accepted: 2^32
	// transactions would need 32 steps, far beyond any block.
	MaxCoinbaseBranch = 32
	// MaxCoinbaseTxBytes bounds the parent coinbase transaction (a block's weight limit
	// bounds it in practice; btcpool's jobmaker keeps it under 500 bytes).
	MaxCoinbaseTxBytes = 1 << 20
	maxTxItems         = 10000
)

// AuxPow is the proof a merge-mined aux block carries (Namecoin Core's CAuxPow): the parent
// chain's coinbase, its merkle branch (index 0), the aux chain merkle branch and index, and
// the parent block header.
type AuxPow struct {
	// CoinbaseTx is the parent block's serialized coinbase transaction, the exact bytes that
	// were hashed for the parent merkle root (btcpool's coinbase carries no witness).
	CoinbaseTx []byte
	// CoinbaseBranch is the coinbase's merkle path in the parent block (as
	// sha.MerkleBranch gives it; internal byte order, lowest level first).
	CoinbaseBranch [][32]byte
	// ChainBranch is the aux chain's path in the aux chain merkle tree
	// ([Tree.AppendBranch]); empty for a single aux chain.
	ChainBranch [][32]byte
	// ChainIndex is the aux chain's slot in that tree (0 for a single chain).
	ChainIndex uint32
	// ParentHeader is the parent block's 80-byte header.
	ParentHeader [80]byte
}

// ParentHash returns the parent block's hash, dSHA-256 of ParentHeader (internal order).
func (a *AuxPow) ParentHash() [32]byte { return sha.DoubleSHA256(a.ParentHeader[:]) }

// Size returns the length of the serialized auxpow.
func (a *AuxPow) Size() int {
	return len(a.CoinbaseTx) + 32 + varIntSize(uint64(len(a.CoinbaseBranch))) + 32*len(a.CoinbaseBranch) + 4 +
		varIntSize(uint64(len(a.ChainBranch))) + 32*len(a.ChainBranch) + 4 + 80
}

// AppendAuxPow appends a's serialization, the bytes whose hex is submitauxblock's second
// argument (and getauxblock's, and btcpool's found_nmc_blocks.aux_pow):
//
//	coinbase tx ‖ parent block hash (32) ‖ varint n ‖ n coinbase branch hashes ‖ int32 0 (coinbase index)
//	‖ varint m ‖ m aux chain branch hashes ‖ int32 chain index ‖ 80-byte parent header
//
// The parent hash field is the merkle-tx hashBlock, which Namecoin Core reads and never
// checks (its own serializer writes zeros). btcpool writes the parent hash in display order
// (byte-reversed, from its hex) there; so does this function, so that aux_pow columns match
// btcpool's byte for byte.
func AppendAuxPow(dst []byte, a *AuxPow) []byte {
	dst = append(dst, a.CoinbaseTx...)
	h := a.ParentHash()
	for i := 31; i >= 0; i-- {
		dst = append(dst, h[i])
	}
	dst = AppendCompactSize(dst, uint64(len(a.CoinbaseBranch)))
	for i := range a.CoinbaseBranch {
		dst = append(dst, a.CoinbaseBranch[i][:]...)
	}
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = AppendCompactSize(dst, uint64(len(a.ChainBranch)))
	for i := range a.ChainBranch {
		dst = append(dst, a.ChainBranch[i][:]...)
	}
	dst = binary.LittleEndian.AppendUint32(dst, a.ChainIndex)
	return append(dst, a.ParentHeader[:]...)
}

// ErrMalformed is wrapped by every [DecodeAuxPow] error.
var ErrMalformed = errors.New("auxpow: malformed auxpow")

// DecodeAuxPow parses a serialized auxpow into a. a.CoinbaseTx aliases b; the branches are
// new slices. Every length is checked against the input before anything is allocated for
// it, the coinbase index must be 0 and the input must end with the header. The parent hash
// field is not checked (Namecoin Core ignores it).
func DecodeAuxPow(b []byte, a *AuxPow) error {
	r := reader{b: b}
	txLen, err := txSize(b)
	if err != nil {
		return err
	}
	a.CoinbaseTx = b[:txLen]
	r.off = txLen
	r.skip(32)
	a.CoinbaseBranch = r.hashes(MaxCoinbaseBranch, "coinbase branch")
	if idx := r.u32(); r.err == nil && idx != 0 {
		r.fail(fmt.Sprintf("coinbase index %d, want 0", idx))
	}
	a.ChainBranch = r.hashes(MaxTreeHeight, "aux chain branch")
	a.ChainIndex = r.u32()
	if r.err == nil && len(b)-r.off != 80 {
		r.fail(fmt.Sprintf("%d bytes after the aux chain index, want the 80-byte parent header", len(b)-r.off))
	}
	if r.err != nil {
		return r.err
	}
	copy(a.ParentHeader[:], b[r.off:])
	return nil
}

// txSize returns the length of the transaction at the start of b (legacy or BIP144
// witness serialization), checking every count against the input.
func txSize(b []byte) (int, error) {
	r := reader{b: b}
	r.skip(4) // version
	witness := false
	if r.err == nil && r.off+2 <= len(b) && b[r.off] == 0 && b[r.off+1] == 1 {
		witness = true
		r.off += 2
	}
	nIn := r.count("inputs")
	if r.err == nil && nIn == 0 {
		r.fail("coinbase tx has no inputs")
	}
	for i := uint64(0); i < nIn && r.err == nil; i++ {
		r.skip(36)
		r.skip(int(r.count("scriptSig bytes")))
		r.skip(4)
	}
	nOut := r.count("outputs")
	for i := uint64(0); i < nOut && r.err == nil; i++ {
		r.skip(8)
		r.skip(int(r.count("scriptPubKey bytes")))
	}
	if witness {
		for i := uint64(0); i < nIn && r.err == nil; i++ {
			items := r.count("witness items")
			for j := uint64(0); j < items && r.err == nil; j++ {
				r.skip(int(r.count("witness item bytes")))
			}
		}
	}
	r.skip(4) // lock time
	if r.err == nil && r.off > MaxCoinbaseTxBytes {
		r.fail(fmt.Sprintf("coinbase tx of %d bytes exceeds %d", r.off, MaxCoinbaseTxBytes))
	}
	return r.off, r.err
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s (at byte %d of %d)", ErrMalformed, what, r.off, len(r.b))
	}
}

func (r *reader) skip(n int) {
	if r.err != nil {
		return
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("truncated")
		return
	}
	r.off += n
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 4 {
		r.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// varInt reads a Bitcoin CompactSize, requiring the minimal encoding as Core does.
func (r *reader) varInt() uint64 {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.off]
	r.off++
	var n int
	var min uint64
	switch c {
	case 0xfd:
		n, min = 2, 0xfd
	case 0xfe:
		n, min = 4, 0x10000
	case 0xff:
		n, min = 8, 0x100000000
	default:
		return uint64(c)
	}
	if len(r.b)-r.off < n {
		r.fail("truncated")
		return 0
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(r.b[r.off+i])
	}
	r.off += n
	if v < min {
		r.fail("non-canonical compact size")
		return 0
	}
	return v
}

// count reads a CompactSize that counts items of at least one byte each, so it can never
// exceed what is left of the input.
func (r *reader) count(what string) uint64 {
	v := r.varInt()
	if r.err == nil && (v > uint64(len(r.b)-r.off) || v > MaxCoinbaseTxBytes) {
		r.fail(fmt.Sprintf("%s count %d exceeds the input", what, v))
		return 0
	}
	return v
}

func (r *reader) hashes(max int, what string) [][32]byte {
	n := r.varInt()
	if r.err != nil {
		return nil
	}
	if n > uint64(max) {
		r.fail(fmt.Sprintf("%s of %d hashes exceeds %d", what, n, max))
		return nil
	}
	if uint64(len(r.b)-r.off) < 32*n {
		r.fail("truncated " + what)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([][32]byte, n)
	for i := range out {
		copy(out[i][:], r.b[r.off:])
		r.off += 32
	}
	return out
}

func varIntSize(n uint64) int {
	switch {
	case n < 0xfd:
		return 1
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// AppendCompactSize appends Bitcoin's CompactSize encoding of n (1, 3, 5 or 9 bytes), as the
// auxpow's branch lengths and a transaction's counts and script lengths are written.
func AppendCompactSize(dst []byte, n uint64) []byte {
	switch {
	case n < 0xfd:
		return append(dst, byte(n))
	case n <= 0xffff:
		return binary.LittleEndian.AppendUint16(append(dst, 0xfd), uint16(n))
	case n <= 0xffffffff:
		return binary.LittleEndian.AppendUint32(append(dst, 0xfe), uint32(n))
	}
	return binary.LittleEndian.AppendUint64(append(dst, 0xff), n)
}

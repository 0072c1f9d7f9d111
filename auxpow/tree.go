package auxpow

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashpool/hashpool/sha"
)

// Limits of the aux chain merkle tree.
const (
	// MaxTreeHeight is the longest aux chain branch Namecoin Core accepts ("Aux POW chain
	// merkle branch too long" past 30).
	MaxTreeHeight = 30
	// MaxChains bounds how many aux chains one tree holds (and [Targets] checks per share).
	MaxChains = 16
	// DefaultMaxHeight is the tallest tree [BuildTree] tries: 2^10 slots, far more than
	// MaxChains chains with distinct chain ids ever need (see [BuildTree]).
	DefaultMaxHeight = 10
)

// ExpectedIndex is the slot a chain with chainID must occupy in an aux chain merkle tree of
// the given height (2^height slots) with merkle nonce nonce: Namecoin Core's getExpectedIndex,
// a linear congruential step computed in uint32 arithmetic.
//
// Consequence of the arithmetic: two chains' slots differ by (id1-id2)·1103515245 mod
// 2^height, which does not depend on the nonce (1103515245 is odd, so the difference is zero
// exactly when id1 ≡ id2 mod 2^height). A nonce therefore moves every chain by the same
// amount and can never separate two colliding chains; only a taller tree can.
func ExpectedIndex(nonce uint32, chainID int32, height uint) uint32 {
	if height > 31 {
		height = 31
	}
	r := nonce*1103515245 + 12345
	r += uint32(chainID)
	r = r*1103515245 + 12345
	return r % (1 << height)
}

// Chain is one aux chain's work in a tree: its chain id (createauxblock's "chainid") and the
// hash of its block in internal byte order (the reverse of createauxblock's "hash").
type Chain struct {
	ID   int32
	Hash [32]byte
}

// TreeOptions tune [BuildTree]. The zero value chooses nonce 0 and the smallest tree.
type TreeOptions struct {
	// Nonce is the merkle nonce written into the commitment (btcpool: 0).
	Nonce uint32
	// MinHeight forces a tree of at least 2^MinHeight slots.
	MinHeight uint
	// MaxHeight is the tallest tree tried (default DefaultMaxHeight, at most MaxTreeHeight).
	MaxHeight uint
}

// ErrSlotCollision is wrapped by BuildTree's error when no tree up to MaxHeight gives every
// chain its own slot (two chain ids equal modulo 2^MaxHeight).
var ErrSlotCollision = errors.New("auxpow: aux chains collide in every tree up to the maximum height")

// Tree is an aux chain merkle tree with its root. It is immutable after BuildTree and safe
// for concurrent use.
type Tree struct {
	height uint
	nonce  uint32
	chains []Chain    // in the order given to BuildTree
	slots  []uint32   // slots[i] is chains[i]'s slot
	nodes  [][32]byte // level 0 (the leaves) first, then each level up; the root last
}

// BuildTree places chains in the smallest tree (2^h slots, h from opts.MinHeight and at
// least ceil(log2(len(chains)))) in which every chain's [ExpectedIndex] is distinct, fills
// free slots with zero hashes and computes the root. The nonce is opts.Nonce: a different
// nonce cannot resolve a collision (see ExpectedIndex), so collisions are resolved by
// height alone. Chain ids must be distinct. One chain gives a tree of height 0 whose root is
// that chain's hash, the layout btcpool and every single-chain pool use.
func BuildTree(chains []Chain, opts TreeOptions) (*Tree, error) {
	if len(chains) == 0 {
		return nil, errors.New("auxpow: no aux chains")
	}
	if len(chains) > MaxChains {
		return nil, fmt.Errorf("auxpow: %d aux chains, at most %d", len(chains), MaxChains)
	}
	maxH := opts.MaxHeight
	if maxH == 0 {
		maxH = DefaultMaxHeight
	}
	if maxH > MaxTreeHeight {
		return nil, fmt.Errorf("auxpow: max tree height %d exceeds %d", maxH, MaxTreeHeight)
	}
	for i := range chains {
		for j := 0; j < i; j++ {
			if chains[i].ID == chains[j].ID {
				return nil, fmt.Errorf("auxpow: two aux chains have chain id %d", chains[i].ID)
			}
		}
	}
	h := opts.MinHeight
	for (1 << h) < len(chains) {
		h++
	}
	slots := make([]uint32, len(chains))
	for ; h <= maxH; h++ {
		if placeChains(chains, opts.Nonce, h, slots) {
			return newTree(chains, slots, opts.Nonce, h), nil
		}
	}
	return nil, fmt.Errorf("%w (%d chains, max height %d)", ErrSlotCollision, len(chains), maxH)
}

// placeChains fills slots for height h and reports whether they are all distinct.
func placeChains(chains []Chain, nonce uint32, h uint, slots []uint32) bool {
	for i := range chains {
		slots[i] = ExpectedIndex(nonce, chains[i].ID, h)
		for j := 0; j < i; j++ {
			if slots[j] == slots[i] {
				return false
			}
		}
	}
	return true
}

func newTree(chains []Chain, slots []uint32, nonce uint32, h uint) *Tree {
	size := 1 << h
	t := &Tree{
		height: h,
		nonce:  nonce,
		chains: append([]Chain(nil), chains...),
		slots:  append([]uint32(nil), slots...),
		nodes:  make([][32]byte, 2*size-1),
	}
	for i, c := range chains {
		t.nodes[slots[i]] = c.Hash
	}
	var buf [64]byte
	off, width := 0, size
	for width > 1 {
		next := off + width
		for i := 0; i < width/2; i++ {
			copy(buf[:32], t.nodes[off+2*i][:])
			copy(buf[32:], t.nodes[off+2*i+1][:])
			t.nodes[next+i] = sha.DoubleSHA256(buf[:])
		}
		off, width = next, width/2
	}
	return t
}

// Height returns the tree's height (the length of every chain's branch).
func (t *Tree) Height() uint { return t.height }

// Size returns the number of slots, 2^Height: the merkle size written in the commitment.
func (t *Tree) Size() uint32 { return 1 << t.height }

// Nonce returns the merkle nonce written in the commitment.
func (t *Tree) Nonce() uint32 { return t.nonce }

// Root returns the tree's root in internal byte order.
func (t *Tree) Root() [32]byte { return t.nodes[len(t.nodes)-1] }

// Chains returns the chains in the order given to BuildTree (shared; do not modify).
func (t *Tree) Chains() []Chain { return t.chains }

// Slot returns the slot of the chain with chainID and whether the tree holds that chain.
func (t *Tree) Slot(chainID int32) (uint32, bool) {
	for i := range t.chains {
		if t.chains[i].ID == chainID {
			return t.slots[i], true
		}
	}
	return 0, false
}

// AppendBranch appends the merkle branch of slot (its sibling at each level, lowest first),
// the vChainMerkleBranch of that chain's auxpow. A slot outside the tree appends nothing.
func (t *Tree) AppendBranch(dst [][32]byte, slot uint32) [][32]byte {
	if slot >= t.Size() {
		return dst
	}
	off, width, i := 0, int(t.Size()), int(slot)
	for width > 1 {
		dst = append(dst, t.nodes[off+(i^1)])
		off, width, i = off+width, width/2, i/2
	}
	return dst
}

// AppendCommitment appends the tree's 44-byte coinbase commitment (see [AppendCommitment]).
func (t *Tree) AppendCommitment(dst []byte) []byte {
	root := t.Root()
	return AppendCommitment(dst, &root, t.Size(), t.nonce)
}

// MergedMiningMagic starts the commitment in the parent coinbase's scriptSig
// (Namecoin Core's pchMergedMiningHeader).
const MergedMiningMagic = "\xfa\xbe\x6d\x6d"

// CommitmentSize is the length of a commitment: magic, root, size, nonce.
const CommitmentSize = 4 + 32 + 4 + 4

// AppendCommitment appends fabe6d6d ‖ root in display (reversed) order ‖ size (int32 LE) ‖
// nonce (int32 LE), which jobmaker puts raw into the coinbase scriptSig (spec §3.6 item 4).
// root is in internal order; for a single chain it is that chain's block hash, so the bytes
// equal the hex createauxblock returned, as btcpool writes them.
func AppendCommitment(dst []byte, root *[32]byte, size, nonce uint32) []byte {
	dst = append(dst, MergedMiningMagic...)
	for i := 31; i >= 0; i-- {
		dst = append(dst, root[i])
	}
	dst = binary.LittleEndian.AppendUint32(dst, size)
	return binary.LittleEndian.AppendUint32(dst, nonce)
}

// BranchRoot folds hash with a merkle branch at index the way Namecoin Core's
// CheckMerkleBranch does (the sibling goes left when the index bit is set). It is the
// inverse of what AppendBranch gives and is used to check branches in tests and tools.
func BranchRoot(hash [32]byte, branch [][32]byte, index uint32) [32]byte {
	var buf [64]byte
	for i := range branch {
		if index&1 != 0 {
			copy(buf[:32], branch[i][:])
			copy(buf[32:], hash[:])
		} else {
			copy(buf[:32], hash[:])
			copy(buf[32:], branch[i][:])
		}
		hash = sha.DoubleSHA256(buf[:])
		index >>= 1
	}
	return hash
}

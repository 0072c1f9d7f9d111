package auxpow

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/hashpool/hashpool/sha"
)

// Work is one aux chain's current work as jobmaker holds it (from its latest AuxRawGw).
type Work struct {
	// Name is the aux chain's name (the AuxRawGw bus key; found_nmc_blocks.chain_name).
	Name string
	// ChainID fixes the chain's slot in the aux tree.
	ChainID int32
	// Hash is the aux block hash in internal order (see ParseDisplayHash).
	Hash [32]byte
	// Bits is the aux block's compact target; Target is its expansion.
	Bits   uint32
	Target sha.Target
	// Height is the aux block's height.
	Height int32
}

// NewWork builds a Work from an AuxRawGw's fields: hash in display hex, bits as 8 hex digits.
func NewWork(name string, chainID int32, hashHex, bitsHex string, height int32) (Work, error) {
	h, err := ParseDisplayHash(hashHex)
	if err != nil {
		return Work{}, err
	}
	t, err := BitsTarget(bitsHex)
	if err != nil {
		return Work{}, err
	}
	b, _ := strconv.ParseUint(bitsHex, 16, 32) // checked by BitsTarget
	return Work{Name: name, ChainID: chainID, Hash: h, Bits: uint32(b), Target: t, Height: height}, nil
}

// Merged is the merged-mining part of one job: the aux tree over every chain's work, the
// commitment for the coinbase, and the targets the engine checks per share. Target i of
// Targets, bit i of Targets.Check, Works[i] and Slot(i) are the same chain. Immutable after
// Merge and safe for concurrent use.
type Merged struct {
	Tree    *Tree
	Works   []Work
	Targets Targets
	slots   []uint32
}

// Merge builds the tree over works (at most MaxChains, distinct chain ids) and their targets.
func Merge(works []Work, opts TreeOptions) (*Merged, error) {
	if len(works) == 0 {
		return nil, errors.New("auxpow: no aux work to merge")
	}
	chains := make([]Chain, len(works))
	for i, w := range works {
		if w.Target.IsZero() {
			return nil, fmt.Errorf("auxpow: aux chain %q has a zero target", w.Name)
		}
		chains[i] = Chain{ID: w.ChainID, Hash: w.Hash}
	}
	tree, err := BuildTree(chains, opts)
	if err != nil {
		return nil, err
	}
	m := &Merged{Tree: tree, Works: append([]Work(nil), works...), slots: make([]uint32, len(works))}
	for i, w := range works {
		m.slots[i], _ = tree.Slot(w.ChainID)
		if _, err := m.Targets.Add(w.Target); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Slot returns chain i's slot in the tree (its auxpow's chain index).
func (m *Merged) Slot(i int) uint32 { return m.slots[i] }

// Branch returns chain i's aux tree branch (a new slice; empty for a single chain).
func (m *Merged) Branch(i int) [][32]byte { return m.Tree.AppendBranch(nil, m.slots[i]) }

// AppendCommitment appends the 44-byte commitment jobmaker writes into the coinbase scriptSig.
func (m *Merged) AppendCommitment(dst []byte) []byte { return m.Tree.AppendCommitment(dst) }

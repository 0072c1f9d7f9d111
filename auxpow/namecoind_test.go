package auxpow_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
)

// parentVersion is the parent block's version: BIP9 bits, no auxpow flag (0x100) and a chain
// id (the high half) that is not Namecoin's, as Namecoin Core requires of a parent.
const parentVersion = 0x20000000

// parentCoinbase builds a parent chain coinbase the way jobmaker does (spec §3.6): BIP34
// height, a tag, the merged-mining commitment, 12 bytes where the extranonces go; one
// output. It returns the serialized transaction (no witness).
func parentCoinbase(commitment []byte, extranonce []byte) []byte {
	script := []byte{0x03, 0x39, 0x30, 0x00} // height 12345
	script = append(script, "/hashpool/"...)
	script = append(script, commitment...)
	script = append(script, extranonce...)
	tx := binary.LittleEndian.AppendUint32(nil, 2) // version
	tx = append(tx, 1)                             // one input
	tx = append(tx, make([]byte, 32)...)           // null prevout
	tx = append(tx, 0xff, 0xff, 0xff, 0xff)
	tx = append(tx, byte(len(script)))
	tx = append(tx, script...)
	tx = append(tx, 0xff, 0xff, 0xff, 0xff) // sequence
	tx = append(tx, 1)                      // one output
	tx = binary.LittleEndian.AppendUint64(tx, 50_0000_0000)
	pk := append([]byte{0x00, 0x14}, make([]byte, 20)...) // P2WPKH to a zero key hash
	tx = append(tx, byte(len(pk)))
	tx = append(tx, pk...)
	return binary.LittleEndian.AppendUint32(tx, 0) // lock time
}

func randHash(t *testing.T) [32]byte {
	var h [32]byte
	if _, err := rand.Read(h[:]); err != nil {
		t.Fatal(err)
	}
	return h
}

// solveParent builds a parent block around coinbase (with two more fake transactions, so
// the coinbase branch is not empty) and grinds the header nonce until its hash meets target.
func solveParent(t *testing.T, coinbase []byte, target sha.Target) (header [80]byte, branch [][32]byte) {
	t.Helper()
	branch = sha.MerkleBranch([][32]byte{randHash(t), randHash(t)})
	root := sha.MerkleRoot(sha.DoubleSHA256(coinbase), branch)
	prev := randHash(t)
	ntime := uint32(time.Now().Unix())
	for nonce := uint32(0); nonce < 100000; nonce++ {
		sha.AppendHeader(header[:0], parentVersion, &prev, &root, ntime, 0x1d00ffff, nonce)
		h := sha.DoubleSHA256(header[:])
		if sha.HashMeetsTarget(&h, &target) {
			return header, branch
		}
	}
	t.Fatalf("no parent header met the aux target %s in 100000 nonces", target)
	return
}

// TestNamecoindAcceptsAuxPowTrees is the proof of the merged-mining layouts: for aux merkle
// trees of 1, 2, 4 and 8 slots (Namecoin at the slot its chain id and the nonce give, the
// other slots holding other chains' hashes) a real namecoind regtest accepts the auxpow
// built here, and its block count rises each time. A wrong chain index is refused first, so
// the test can fail.
func TestNamecoindAcceptsAuxPowTrees(t *testing.T) {
	n := namecoindtest.Start(t, namecoindtest.Options{})
	c := n.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	m, err := c.GetAuxMethods(ctx)
	if err != nil || !m.UseCreate() {
		t.Fatalf("GetAuxMethods = %+v, %v; want createauxblock and submitauxblock", m, err)
	}
	// getauxblock is a wallet RPC: the shared build (wallet off) does not register it, so
	// only createauxblock / submitauxblock can be proven here.
	if m.GetAuxBlock {
		t.Logf("this namecoind also offers getauxblock")
	}
	cases := []struct {
		size  uint32
		nonce uint32
	}{
		{size: 1, nonce: 0},
		{size: 2, nonce: 3},
		{size: 4, nonce: 7},
		{size: 8, nonce: 0x9e3779b9},
	}
	for _, tc := range cases {
		before, err := c.GetBlockCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := c.CreateAuxBlock(ctx, n.Address)
		if err != nil {
			t.Fatalf("createauxblock: %v", err)
		}
		if blk.ChainID != namecoindtest.ChainID || blk.Height != before+1 {
			t.Fatalf("createauxblock = %+v; want chain id %d at height %d", blk, namecoindtest.ChainID, before+1)
		}
		auxHash, err := auxpow.ParseDisplayHash(blk.Hash)
		if err != nil {
			t.Fatal(err)
		}
		target, err := auxpow.BitsTarget(blk.Bits)
		if err != nil {
			t.Fatal(err)
		}
		if lt, err := auxpow.ParseTargetLE(blk.Target); err != nil || lt != target {
			t.Fatalf("_target %s = %v, %v; want the bits' target %v", blk.Target, lt, err, target)
		}

		chains := []auxpow.Chain{{ID: blk.ChainID, Hash: auxHash}}
		for id := int32(2); len(chains) < int(tc.size); id++ {
			chains = append(chains, auxpow.Chain{ID: id, Hash: randHash(t)})
		}
		tree, err := auxpow.BuildTree(chains, auxpow.TreeOptions{Nonce: tc.nonce})
		if err != nil {
			t.Fatal(err)
		}
		if tree.Size() != tc.size {
			t.Fatalf("tree of %d chains has %d slots, want %d", len(chains), tree.Size(), tc.size)
		}
		slot, _ := tree.Slot(blk.ChainID)
		if want := auxpow.ExpectedIndex(tc.nonce, blk.ChainID, tree.Height()); slot != want {
			t.Fatalf("slot %d, want %d", slot, want)
		}
		commitment := tree.AppendCommitment(nil)
		if tc.size == 1 {
			// btcpool's layout: the aux hash exactly as createauxblock printed it.
			want := "fabe6d6d" + blk.Hash + "01000000" + "00000000"
			if got := hex.EncodeToString(commitment); got != want {
				t.Fatalf("commitment %s, want %s", got, want)
			}
		}
		coinbase := parentCoinbase(commitment, make([]byte, 12))
		header, branch := solveParent(t, coinbase, target)
		ap := auxpow.AuxPow{
			CoinbaseTx:     coinbase,
			CoinbaseBranch: branch,
			ChainBranch:    tree.AppendBranch(nil, slot),
			ChainIndex:     slot,
			ParentHeader:   header,
		}
		submit := c.SubmitAuxBlock
		if tc.size > 1 {
			// The same proof at the wrong slot must be refused: namecoind really checks.
			bad := ap
			bad.ChainIndex = slot ^ 1
			bad.ChainBranch = tree.AppendBranch(nil, slot^1)
			ok, err := submit(ctx, blk.Hash, hex.EncodeToString(auxpow.AppendAuxPow(nil, &bad)))
			if ok {
				t.Fatalf("size %d: namecoind accepted the auxpow at the wrong slot %d (err %v)", tc.size, slot^1, err)
			}
		}
		raw := auxpow.AppendAuxPow(nil, &ap)
		var back auxpow.AuxPow
		if err := auxpow.DecodeAuxPow(raw, &back); err != nil {
			t.Fatalf("DecodeAuxPow of our own auxpow: %v", err)
		}
		ok, err := submit(ctx, blk.Hash, hex.EncodeToString(raw))
		if err != nil || !ok {
			t.Fatalf("size %d nonce %d: submit = %v, %v\n%s", tc.size, tc.nonce, ok, err, n.LogTail())
		}
		after, err := c.GetBlockCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after != before+1 {
			t.Fatalf("size %d: block count %d after submitauxblock, want %d", tc.size, after, before+1)
		}
		best, err := c.GetBestBlockHash(ctx)
		if err != nil || best != blk.Hash {
			t.Fatalf("best block %s, %v; want the aux block %s", best, err, blk.Hash)
		}
		t.Logf("tree of %d slots, nonce %#x: namecoind slot %d, height %d accepted", tc.size, tc.nonce, slot, after)
	}
}

// TestNamecoindGetAuxBlockWithoutWallet: getauxblock is a wallet RPC, and the shared build has
// no wallet, so the node answers "method not found" (and createauxblock is the way).
func TestNamecoindGetAuxBlockWithoutWallet(t *testing.T) {
	n := namecoindtest.Start(t, namecoindtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := n.Client().GetAuxBlock(ctx)
	var re *node.RPCError
	if !errors.As(err, &re) || re.Code != node.CodeMethodNotFound {
		t.Fatalf("getauxblock without a wallet: %v; want RPC error %d", err, node.CodeMethodNotFound)
	}
}

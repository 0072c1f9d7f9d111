package auxpow_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/sha"
)

// splitCoinbase builds a coinbase around the 12-byte extranonce slot the way jobmaker does
// (spec §3.6): coinbase1 ends with the scriptSig up to and including the commitment,
// coinbase2 starts after the extranonces.
func splitCoinbase(commitment []byte) (cb1, cb2 []byte) {
	prefix := append([]byte{0x03, 0x39, 0x30, 0x00}, "/hashpool/"...)
	prefix = append(prefix, commitment...)
	scriptLen := len(prefix) + 12
	cb1 = binary.LittleEndian.AppendUint32(nil, 2)
	cb1 = append(cb1, 1)
	cb1 = append(cb1, make([]byte, 32)...)
	cb1 = append(cb1, 0xff, 0xff, 0xff, 0xff, byte(scriptLen))
	cb1 = append(cb1, prefix...)
	cb2 = []byte{0xff, 0xff, 0xff, 0xff, 1}
	cb2 = binary.LittleEndian.AppendUint64(cb2, 50_0000_0000)
	cb2 = append(cb2, 22, 0x00, 0x14)
	cb2 = append(cb2, make([]byte, 20)...)
	cb2 = binary.LittleEndian.AppendUint32(cb2, 0)
	return cb1, cb2
}

// TestMergedMiningPipeline walks the whole merged-mining path with the pieces each
// component will use, on a real namecoind among two other (fake) aux chains: jobmaker's
// Merge and commitment in coinbase1, the engine's ShareHash and Targets.Check on the hash
// it computed, the AuxSolvedShare it publishes, blkmaker's decode, auxpow and submitauxblock.
func TestMergedMiningPipeline(t *testing.T) {
	n := namecoindtest.Start(t, namecoindtest.Options{})
	c := n.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	blk, err := c.CreateAuxBlock(ctx, n.Address)
	if err != nil {
		t.Fatal(err)
	}
	// jobmaker: the latest work of each chain, merged.
	nmc, err := auxpow.NewWork("nmc", blk.ChainID, blk.Hash, blk.Bits, int32(blk.Height))
	if err != nil {
		t.Fatal(err)
	}
	fake3, _ := auxpow.NewWork("fake3", 3, sha.DisplayHex(randHash(t)), "1d00ffff", 10)
	doge, _ := auxpow.NewWork("doge", 98, sha.DisplayHex(randHash(t)), "1b0404cb", 20)
	merged, err := auxpow.Merge([]auxpow.Work{nmc, fake3, doge}, auxpow.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if merged.Tree.Size() != 4 {
		t.Fatalf("ids 1, 3, 98 want a tree of 4 slots, got %d", merged.Tree.Size())
	}
	cb1, cb2 := splitCoinbase(merged.AppendCommitment(nil))
	branch := sha.MerkleBranch([][32]byte{randHash(t), randHash(t), randHash(t)})
	job := sha.NewJob(cb1, cb2, branch, parentVersion, randHash(t), 0x1d00ffff)

	// engine: shares until one meets namecoind's target (bit 0).
	var h sha.Hasher
	en1 := []byte{0, 0, 0, 1}
	en2 := make([]byte, 8)
	ntime := uint32(time.Now().Unix())
	var nonce uint32
	var mask uint32
	for ; nonce < 100000; nonce++ {
		hash := h.ShareHash(job, en1, en2, ntime, nonce, 0)
		if mask = merged.Targets.Check(&hash); mask&1 != 0 {
			break
		}
	}
	if mask&1 == 0 {
		t.Fatal("no share met namecoind's regtest target")
	}
	if mask&(1<<2) != 0 {
		t.Fatal("a regtest-easy share cannot meet the doge-like target")
	}
	solved := btcpool.AuxSolvedShare{
		JobID:          1,
		AuxBlockHash:   blk.Hash,
		BlockHeader:    h.ShareHeader(job, en1, en2, ntime, nonce, 0),
		CoinbaseTx:     job.AppendCoinbase(nil, en1, en2),
		RPCAddr:        n.RPCURL,
		RPCUserPass:    n.RPCUser + ":" + n.RPCPass,
		ChainName:      merged.Works[0].Name,
		ChainID:        merged.Works[0].ChainID,
		AuxBranch:      merged.Branch(0),
		AuxIndex:       merged.Slot(0),
		CoinbaseBranch: job.Branch(), HasCoinbaseBranch: true,
	}
	value := btcpool.AppendAuxSolvedShare(nil, &solved)

	// blkmaker: decode, build the auxpow, submit.
	var got btcpool.AuxSolvedShare
	if err := btcpool.DecodeAuxSolvedShare(value, &got); err != nil {
		t.Fatal(err)
	}
	ap := auxpow.AuxPow{
		CoinbaseTx:     got.CoinbaseTx,
		CoinbaseBranch: got.CoinbaseBranch,
		ChainBranch:    got.AuxBranch,
		ChainIndex:     got.AuxIndex,
		ParentHeader:   got.BlockHeader,
	}
	before, _ := c.GetBlockCount(ctx)
	ok, err := c.SubmitAuxBlock(ctx, got.AuxBlockHash, hex.EncodeToString(auxpow.AppendAuxPow(nil, &ap)))
	if err != nil || !ok {
		t.Fatalf("submitauxblock = %v, %v\n%s", ok, err, n.LogTail())
	}
	if after, _ := c.GetBlockCount(ctx); after != before+1 {
		t.Fatalf("block count %d, want %d", after, before+1)
	}
}

// BenchmarkSharePathAux is the share path with merged mining as the engine will run it:
// ShareHash of a 12-step job, then Targets.Check of that hash against 0, 1 or 3 aux
// targets (no second hash, no allocation).
func BenchmarkSharePathAux(b *testing.B) {
	steps := make([][32]byte, 12)
	for i := range steps {
		steps[i][0] = byte(i + 1)
	}
	for _, chains := range []int{0, 1, 3} {
		var works []auxpow.Work
		for i := 0; i < chains; i++ {
			w, _ := auxpow.NewWork("c", int32(i+1), sha.DisplayHex([32]byte{byte(i)}), []string{"1b0404cb", "1c0ffff0", "1a05db8b"}[i], 1)
			works = append(works, w)
		}
		var ts auxpow.Targets
		var commitment []byte
		if chains > 0 {
			m, err := auxpow.Merge(works, auxpow.TreeOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ts, commitment = m.Targets, m.AppendCommitment(nil)
		}
		cb1, cb2 := splitCoinbase(commitment)
		job := sha.NewJob(cb1, cb2, steps, parentVersion, [32]byte{1}, 0x1d00ffff)
		b.Run(map[int]string{0: "0chains", 1: "1chain", 3: "3chains"}[chains], func(b *testing.B) {
			var h sha.Hasher
			en1, en2 := []byte{0, 0, 0, 1}, make([]byte, 8)
			b.ReportAllocs()
			var nonce, sink uint32
			for b.Loop() {
				hash := h.ShareHash(job, en1, en2, 0x5f5e1000, nonce, 0)
				sink += ts.Check(&hash)
				nonce++
			}
			_ = sink
		})
	}
}

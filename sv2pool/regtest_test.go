package sv2pool

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
)

// regtestJob turns a btcd template with no transactions into a JobTemplate:
// a coinbase paying the node's mining script, split around 12 extranonce
// bytes in its scriptSig (after the BIP34 height).
func regtestJob(t *testing.T, n *btcdtest.Node) JobTemplate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tmpl, err := n.Client().GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.Transactions) != 0 {
		t.Fatalf("template has %d transactions; this test builds empty blocks", len(tmpl.Transactions))
	}
	prev, err := sha.ParseDisplayHex(tmpl.PreviousBlockHash)
	if err != nil {
		t.Fatal(err)
	}
	bits, err := strconv.ParseUint(tmpl.Bits, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	cb1 := []byte{1, 0, 0, 0, 1}
	cb1 = append(cb1, make([]byte, 32)...)
	cb1 = append(cb1, 0xff, 0xff, 0xff, 0xff)
	height := heightPush(tmpl.Height)
	cb1 = append(cb1, byte(len(height)+12)) // scriptSig: BIP34 height, then the extranonce
	cb1 = append(cb1, height...)
	script := n.MiningScript()
	cb2 := []byte{0xff, 0xff, 0xff, 0xff, 1}
	cb2 = binary.LittleEndian.AppendUint64(cb2, uint64(tmpl.CoinbaseValue))
	cb2 = append(cb2, byte(len(script)))
	cb2 = append(cb2, script...)
	cb2 = append(cb2, 0, 0, 0, 0)
	return JobTemplate{PrevHash: prev, Coinbase1: cb1, Coinbase2: cb2, Version: uint32(tmpl.Version),
		NBits: uint32(bits), NTime: uint32(tmpl.CurTime)}
}

// heightPush is BIP34's height as Bitcoin Core's `CScript() << height`
// writes it: OP_1..OP_16 for small heights, else a minimal push.
func heightPush(h int64) []byte {
	if h >= 1 && h <= 16 {
		return []byte{byte(0x50 + h)}
	}
	var num []byte
	for v := uint64(h); v > 0; v >>= 8 {
		num = append(num, byte(v))
	}
	if num[len(num)-1]&0x80 != 0 {
		num = append(num, 0)
	}
	return append([]byte{byte(len(num))}, num...)
}

// submitBlock sends the pool's block to the node and checks it became the tip.
func submitBlock(t *testing.T, n *btcdtest.Node, b Block) {
	t.Helper()
	raw := append(b.Header[:], 1) // one transaction
	raw = append(raw, b.Coinbase...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := n.Client().SubmitBlock(ctx, hex.EncodeToString(raw))
	if err != nil || res.Status != node.SubmitAccepted {
		t.Fatalf("submitblock: %+v %v", res, err)
	}
	best, err := n.Client().GetBestBlockHash(ctx)
	if err != nil || best != sha.DisplayHex(sha.DoubleSHA256(b.Header[:])) {
		t.Fatalf("best block %s, want the pool's block (%v)", best, err)
	}
}

// TestRegtestBlocks mines real regtest blocks through an extended and a
// standard channel over Noise: the node accepts both.
func TestRegtestBlocks(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	n.MineBlocks(t, 1)
	p := startPool(t, 1e-9) // every share meets regtest's target (0x207fffff) too
	if _, err := p.srv.SetJob(regtestJob(t, n)); err != nil {
		t.Fatal(err)
	}
	waitBlock := func(want int) Block {
		t.Helper()
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.blocks) != want {
			t.Fatalf("%d blocks, want %d", len(p.blocks), want)
		}
		return p.blocks[want-1]
	}

	// Extended channel: the miner builds the coinbase and merkle root.
	ext, err := dialPool(t, p, p.authority)
	if err != nil {
		t.Fatal(err)
	}
	ext.setup(0)
	ext.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 1, UserIdentity: []byte("regtest.ext"), MaxTarget: maxU256(), MinExtranonceSize: 8}))
	var open sv2.OpenExtendedMiningChannelSuccess
	sv2.DecodeOpenExtendedMiningChannelSuccess(ext.expect(sv2.MsgOpenExtendedMiningChannelSuccess), &open)
	var job sv2.NewExtendedMiningJob
	sv2.DecodeNewExtendedMiningJob(ext.expect(sv2.MsgNewExtendedMiningJob), &job)
	var prev sv2.SetNewPrevHash
	sv2.DecodeSetNewPrevHash(ext.expect(sv2.MsgSetNewPrevHash), &prev)
	en := []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1}
	cb := append(append(append(append([]byte(nil), job.CoinbaseTxPrefix...), open.ExtranoncePrefix...), en...), job.CoinbaseTxSuffix...)
	root := merkleRoot(cb, job.MerklePath)
	nonce, _ := grind(t, 0, func(x uint32) [32]byte {
		return headerHash(job.Version, prev.PrevHash, root, prev.MinNTime, prev.NBits, x)
	},
		func(h [32]byte) bool { return meets(h, open.Target) })
	ext.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: open.ChannelID, SequenceNumber: 1, JobID: job.JobID,
		Nonce: nonce, NTime: prev.MinNTime, Version: job.Version, Extranonce: en}))
	ext.expect(sv2.MsgSubmitSharesSuccess)
	submitBlock(t, n, waitBlock(1))

	// The next block, through a standard channel: the pool computes the root.
	p.srv.SetJob(regtestJob(t, n))
	ext.expect(sv2.MsgNewExtendedMiningJob)
	ext.expect(sv2.MsgSetNewPrevHash)
	std, err := dialPool(t, p, p.authority)
	if err != nil {
		t.Fatal(err)
	}
	std.setup(FlagRequiresStandardJobs)
	std.send(sv2.AppendOpenStandardMiningChannel(nil, &sv2.OpenStandardMiningChannel{RequestID: 2, UserIdentity: []byte("regtest.std"), MaxTarget: maxU256()}))
	var sopen sv2.OpenStandardMiningChannelSuccess
	sv2.DecodeOpenStandardMiningChannelSuccess(std.expect(sv2.MsgOpenStandardMiningChannelSuccess), &sopen)
	var sjob sv2.NewMiningJob
	sv2.DecodeNewMiningJob(std.expect(sv2.MsgNewMiningJob), &sjob)
	var sprev sv2.SetNewPrevHash
	sv2.DecodeSetNewPrevHash(std.expect(sv2.MsgSetNewPrevHash), &sprev)
	nonce, _ = grind(t, 0, func(x uint32) [32]byte {
		return headerHash(sjob.Version, sprev.PrevHash, sjob.MerkleRoot, sprev.MinNTime, sprev.NBits, x)
	}, func(h [32]byte) bool { return meets(h, sopen.Target) })
	std.send(sv2.AppendSubmitSharesStandard(nil, &sv2.SubmitSharesStandard{ChannelID: sopen.ChannelID, SequenceNumber: 1, JobID: sjob.JobID,
		Nonce: nonce, NTime: sprev.MinNTime, Version: sjob.Version}))
	std.expect(sv2.MsgSubmitSharesSuccess)
	submitBlock(t, n, waitBlock(2))
}

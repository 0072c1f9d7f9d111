package node_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/node"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestBtcdQueries(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	c := n.Client()
	ctx := ctxT(t)

	hashes := n.MineBlocks(t, 2)
	if h, err := c.GetBlockCount(ctx); err != nil || h != 2 {
		t.Fatalf("GetBlockCount = %d, %v", h, err)
	}
	if h, err := c.GetBestBlockHash(ctx); err != nil || h != hashes[1] {
		t.Fatalf("GetBestBlockHash = %s, %v; want %s", h, err, hashes[1])
	}
	// btcd has no getnetworkinfo: the client falls back to getinfo.
	ni, err := c.GetNetworkInfo(ctx)
	if err != nil || ni.Connections != 0 || ni.Version == 0 {
		t.Fatalf("GetNetworkInfo = %+v, %v", ni, err)
	}
	// btcd has no generatetoaddress: the RPC error comes through typed.
	_, err = c.GenerateToAddress(ctx, 1, n.MiningAddress())
	var re *node.RPCError
	if !errors.As(err, &re) || re.Method != "generatetoaddress" {
		t.Fatalf("GenerateToAddress on btcd: %v", err)
	}
	// A wrong password is an HTTP 401 that says what to check.
	o := n.ClientOptions()
	o.Password = "wrong"
	bad, err := node.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	var he *node.HTTPError
	if _, err := bad.GetBlockCount(ctx); !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestBtcdTemplateAndLongPoll(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	c := n.Client()
	ctx := ctxT(t)
	n.MineBlocks(t, 1)

	tm, err := c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if tm.Height != 2 || tm.Bits != "207fffff" || tm.CoinbaseValue != 50*1e8 || tm.LongPollID == "" {
		t.Fatalf("template %+v", tm)
	}
	// btcd answers {"jsonrpc":"1.0","result":{...},"error":null,"id":"1"}; Core has no "jsonrpc".
	if !bytes.Contains(tm.Raw, []byte(`"result":{"bits":"207fffff"`)) || !bytes.HasSuffix(bytes.TrimSpace(tm.Raw), []byte(`"error":null,"id":"1"}`)) {
		t.Fatalf("raw text %.80s...%s", tm.Raw, tm.Raw[max(0, len(tm.Raw)-40):])
	}

	type result struct {
		tm  *node.Template
		err error
	}
	done := make(chan result, 1)
	go func() {
		lp, err := c.GetBlockTemplate(ctx, tm.LongPollID)
		done <- result{lp, err}
	}()
	// The long poll must still be waiting: nothing changed yet. (A block mined below ends it.)
	select {
	case r := <-done:
		t.Fatalf("long poll returned before any change: %+v, %v", r.tm, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	mined := n.MineBlocks(t, 1)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.tm.Height != 3 || r.tm.PreviousBlockHash != mined[0] {
		t.Fatalf("long poll template height %d prev %s, want 3 on %s", r.tm.Height, r.tm.PreviousBlockHash, mined[0])
	}
}

// TestBtcdSubmitBlock builds blocks from templates (with and without a witness transaction),
// submits them and checks every answer the client interprets: accepted, duplicate, invalid
// proof of work, undecodable.
func TestBtcdSubmitBlock(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	c := n.Client()
	ctx := ctxT(t)
	n.MineBlocks(t, 1)

	tm, err := c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	blk := blockFromTemplate(t, tm, n.MiningScript(), true)
	res, err := c.SubmitBlock(ctx, blockHex(t, blk))
	if err != nil || res.Status != node.SubmitAccepted {
		t.Fatalf("SubmitBlock = %+v, %v", res, err)
	}
	if best, _ := c.GetBestBlockHash(ctx); best != blk.BlockHash().String() {
		t.Fatalf("best block %s, want the submitted %s", best, blk.BlockHash())
	}
	res, err = c.SubmitBlock(ctx, blockHex(t, blk))
	if err != nil || res.Status != node.SubmitDuplicate || !strings.Contains(res.Reason, "already have block") {
		t.Fatalf("resubmit = %+v, %v", res, err)
	}

	// A template with a witness transaction: btcd's bare commitment hash becomes the script.
	wtx := n.AddWitnessTx(t)
	tm, err = c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Transactions) != 1 || tm.Transactions[0].TxID != wtx.TxID || len(tm.DefaultWitnessCommitment) != 64 {
		t.Fatalf("witness template: %d txs, commitment %q", len(tm.Transactions), tm.DefaultWitnessCommitment)
	}
	high := blockFromTemplate(t, tm, n.MiningScript(), false)
	res, err = c.SubmitBlock(ctx, blockHex(t, high))
	if err != nil || res.Status != node.SubmitRejected || !strings.Contains(res.Reason, "higher than expected") {
		t.Fatalf("high-hash block = %+v, %v", res, err)
	}
	blk = blockFromTemplate(t, tm, n.MiningScript(), true)
	res, err = c.SubmitBlock(ctx, blockHex(t, blk))
	if err != nil || res.Status != node.SubmitAccepted {
		t.Fatalf("witness block = %+v, %v", res, err)
	}
	if h, _ := c.GetBlockCount(ctx); h != tm.Height {
		t.Fatalf("block count %d after witness block at %d", h, tm.Height)
	}

	for _, bad := range []string{"zz", "00", ""} {
		res, err = c.SubmitBlock(ctx, bad)
		if err != nil || res.Status != node.SubmitRejected || res.Code != node.CodeDeserialization {
			t.Fatalf("SubmitBlock(%q) = %+v, %v; want rejected with -22", bad, res, err)
		}
	}
}

// blockFromTemplate assembles a block paying script; with solve it grinds the nonce until the
// header meets the target, otherwise until it misses it.
func blockFromTemplate(t *testing.T, tm *node.Template, script []byte, solve bool) *wire.MsgBlock {
	t.Helper()
	sig, err := txscript.NewScriptBuilder().AddInt64(tm.Height).AddData([]byte("hashpool test")).Script()
	if err != nil {
		t.Fatal(err)
	}
	cb := wire.NewMsgTx(2)
	cb.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, 0xffffffff), sig, nil))
	cb.AddTxOut(wire.NewTxOut(tm.CoinbaseValue, script))
	if s := tm.WitnessCommitmentScript(); s != "" {
		commit, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		cb.AddTxOut(wire.NewTxOut(0, commit))
		cb.TxIn[0].Witness = wire.TxWitness{make([]byte, 32)} // the witness reserved value
	}
	txs := []*wire.MsgTx{cb}
	for _, tt := range tm.Transactions {
		raw, err := hex.DecodeString(tt.Data)
		if err != nil {
			t.Fatal(err)
		}
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
		txs = append(txs, &tx)
	}
	ids := make([]chainhash.Hash, len(txs))
	for i, tx := range txs {
		ids[i] = tx.TxHash()
	}
	prev, err := chainhash.NewHashFromStr(tm.PreviousBlockHash)
	if err != nil {
		t.Fatal(err)
	}
	bits, err := strconv.ParseUint(tm.Bits, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	root := merkleRoot(ids)
	hdr := wire.NewBlockHeader(int32(tm.Version), prev, &root, uint32(bits), 0)
	hdr.Timestamp = time.Unix(tm.CurTime, 0)
	target := compactToBig(uint32(bits))
	for nonce := uint32(0); ; nonce++ {
		if nonce == 1000 {
			t.Fatal("no nonce found in 1000 tries on regtest")
		}
		hdr.Nonce = nonce
		h := hdr.BlockHash()
		if (hashToBig(h).Cmp(target) <= 0) == solve {
			break
		}
	}
	blk := wire.NewMsgBlock(hdr)
	for _, tx := range txs {
		if err := blk.AddTransaction(tx); err != nil {
			t.Fatal(err)
		}
	}
	return blk
}

func blockHex(t *testing.T, b *wire.MsgBlock) string {
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf.Bytes())
}

func merkleRoot(h []chainhash.Hash) chainhash.Hash {
	for len(h) > 1 {
		if len(h)%2 == 1 {
			h = append(h, h[len(h)-1])
		}
		next := make([]chainhash.Hash, len(h)/2)
		for i := range next {
			next[i] = chainhash.DoubleHashH(append(h[2*i][:], h[2*i+1][:]...))
		}
		h = next
	}
	return h[0]
}

func compactToBig(bits uint32) *big.Int {
	m := big.NewInt(int64(bits & 0x007fffff))
	e := int(bits >> 24)
	if e <= 3 {
		return m.Rsh(m, uint(8*(3-e)))
	}
	return m.Lsh(m, uint(8*(e-3)))
}

func hashToBig(h chainhash.Hash) *big.Int {
	var be [32]byte
	for i := range h {
		be[31-i] = h[i]
	}
	return new(big.Int).SetBytes(be[:])
}

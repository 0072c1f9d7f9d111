package btcdtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// coinbaseMaturity is how many blocks a coinbase output waits before it can be spent.
const coinbaseMaturity = 100

// WitnessFee is the fee AddWitnessTx pays, in satoshis.
const WitnessFee = 10_000

// WitnessTx is a transaction AddWitnessTx put into the mempool.
type WitnessTx struct {
	TxID  string // display hex
	WTxID string // display hex; differs from TxID because the input carries a witness
	Hex   string // full serialization, witness included
	Fee   int64  // satoshis
	Tx    *wire.MsgTx
}

// AddWitnessTx spends the oldest unspent mature coinbase paid to MiningAddress to a new
// P2WPKH output of the same key, signs it (BIP143, txscript.WitnessSignature) and sends it to
// the mempool, so the next block template carries a witness transaction and btcd adds
// default_witness_commitment. When no coinbase is mature yet it first mines enough blocks
// (up to 100 on a fresh chain). It fails the test on error.
func (n *Node) AddWitnessTx(t testing.TB) WitnessTx {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	height := n.nextCoinbase
	tip, err := n.client.GetBlockCount(ctx)
	if err != nil {
		t.Fatalf("btcdtest: getblockcount: %v", err)
	}
	// A coinbase at height h can be spent in block h+100, i.e. once the tip is h+99.
	if need := height + coinbaseMaturity - 1 - tip; need > 0 {
		n.MineBlocks(t, int(need))
	}
	var hash string
	if err := n.client.Call(ctx, "getblockhash", []any{height}, &hash); err != nil {
		t.Fatalf("btcdtest: getblockhash %d: %v", height, err)
	}
	var blockHex string
	if err := n.client.Call(ctx, "getblock", []any{hash, 0}, &blockHex); err != nil {
		t.Fatalf("btcdtest: getblock %s: %v", hash, err)
	}
	raw, err := hex.DecodeString(blockHex)
	if err != nil {
		t.Fatalf("btcdtest: getblock %s: %v", hash, err)
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatalf("btcdtest: decode block %s: %v", hash, err)
	}
	cb := blk.Transactions[0]
	outIdx := -1
	for i, out := range cb.TxOut {
		if bytes.Equal(out.PkScript, n.pkScript) {
			outIdx = i
			break
		}
	}
	if outIdx < 0 {
		t.Fatalf("btcdtest: coinbase of block %d does not pay the mining address", height)
	}
	n.nextCoinbase++
	amount := cb.TxOut[outIdx].Value

	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(cb.TxHash()), uint32(outIdx)), nil, nil))
	tx.AddTxOut(wire.NewTxOut(amount-WitnessFee, n.pkScript))
	fetcher := txscript.NewCannedPrevOutputFetcher(n.pkScript, amount)
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)
	wit, err := txscript.WitnessSignature(tx, sigHashes, 0, amount, n.pkScript, txscript.SigHashAll, n.key, true)
	if err != nil {
		t.Fatalf("btcdtest: sign: %v", err)
	}
	tx.TxIn[0].Witness = wit

	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatalf("btcdtest: serialize: %v", err)
	}
	txHex := hex.EncodeToString(buf.Bytes())
	txid, err := n.client.SendRawTransaction(ctx, txHex)
	if err != nil {
		t.Fatalf("btcdtest: sendrawtransaction: %v", err)
	}
	if want := tx.TxHash().String(); txid != want {
		t.Fatalf("btcdtest: sendrawtransaction returned txid %s, want %s", txid, want)
	}
	return WitnessTx{TxID: txid, WTxID: tx.WitnessHash().String(), Hex: txHex, Fee: WitnessFee, Tx: tx}
}

func ptr[T any](v T) *T { return &v }

// String describes the transaction for test logs.
func (w WitnessTx) String() string { return fmt.Sprintf("witness tx %s (wtxid %s)", w.TxID, w.WTxID) }

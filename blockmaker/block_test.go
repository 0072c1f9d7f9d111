package blockmaker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/sha"
)

// spendTx returns a transaction with a witness, so the block needs a witness commitment.
func spendTx(seed byte) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	prev := wire.OutPoint{Hash: chainhash.Hash{seed}, Index: 1}
	in := wire.NewTxIn(&prev, nil, wire.TxWitness{{0x30, seed}, {0x02, seed}})
	tx.AddTxIn(in)
	tx.AddTxOut(wire.NewTxOut(1000+int64(seed), []byte{0x00, 0x14, seed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}))
	return tx
}

func serialize(t *testing.T, tx *wire.MsgTx, witness bool) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	if witness {
		err = tx.Serialize(&b)
	} else {
		err = tx.SerializeNoWitness(&b)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// templateResponse renders txs as a getblocktemplate response text.
func templateResponse(t *testing.T, txs []*wire.MsgTx) []byte {
	t.Helper()
	type txj struct {
		Data string `json:"data"`
	}
	var list []txj
	for _, tx := range txs {
		list = append(list, txj{Data: hex.EncodeToString(serialize(t, tx, true))})
	}
	b, err := json.Marshal(map[string]any{
		"result": map[string]any{"height": 7, "previousblockhash": strings.Repeat("00", 32), "transactions": list},
		"error":  nil, "id": "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAssembleWitnessBlockMatchesBtcd(t *testing.T) {
	txs := []*wire.MsgTx{spendTx(1), spendTx(2), spendTx(3)}
	tmpl, err := ParseTemplate("gbt", templateResponse(t, txs))
	if err != nil {
		t.Fatal(err)
	}

	// The witness commitment as a node computes it: wtxid merkle root (coinbase wtxid = 0)
	// hashed with the 32-byte reserved value.
	cbForWitness := wire.NewMsgTx(2)
	cbForWitness.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 0xffffffff}, []byte{0x01, 0x07}, nil))
	blockTxs := []*btcutil.Tx{btcutil.NewTx(cbForWitness)}
	for _, tx := range txs {
		blockTxs = append(blockTxs, btcutil.NewTx(tx))
	}
	witnessRoot := blockchain.CalcMerkleRoot(blockTxs, true)
	commitment := chainhash.DoubleHashH(append(witnessRoot[:], make([]byte, 32)...))

	cb := wire.NewMsgTx(2)
	cb.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 0xffffffff}, []byte{0x01, 0x07, 0xee, 0xee}, nil))
	cb.AddTxOut(wire.NewTxOut(5000000000, []byte{0x51}))
	cb.AddTxOut(wire.NewTxOut(0, append(append([]byte{}, witnessMagic...), commitment[:]...)))
	coinbase := serialize(t, cb, false)

	root := sha.MerkleRoot(sha.DoubleSHA256(coinbase), sha.MerkleBranch(tmpl.TxIDs))
	prev := [32]byte{9}
	var header [80]byte
	copy(header[:], sha.AppendHeader(nil, 0x20000000, &prev, &root, 1700000000, 0x207fffff, 42))

	blk, err := Assemble(header, coinbase, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var msg wire.MsgBlock
	if err := msg.Deserialize(bytes.NewReader(blk.Bytes)); err != nil {
		t.Fatalf("btcd cannot decode the block: %v", err)
	}
	if len(msg.Transactions) != 4 {
		t.Fatalf("%d transactions, want 4", len(msg.Transactions))
	}
	if got := msg.BlockHash(); !bytes.Equal(got[:], blk.Hash[:]) {
		t.Fatalf("hash %x, btcd says %x", blk.Hash, got)
	}
	ub := btcutil.NewBlock(&msg)
	if got := blockchain.CalcMerkleRoot(ub.Transactions(), false); got != msg.Header.MerkleRoot {
		t.Fatalf("merkle root %v, header %v", got, msg.Header.MerkleRoot)
	}
	if err := blockchain.ValidateWitnessCommitment(ub); err != nil {
		t.Fatalf("witness commitment: %v", err)
	}
	if blk.Rewards != 5000000000 {
		t.Fatalf("rewards %d", blk.Rewards)
	}
}

func TestAssembleRejectsForeignHeader(t *testing.T) {
	tmpl, err := ParseTemplate("gbt", templateResponse(t, []*wire.MsgTx{spendTx(1)}))
	if err != nil {
		t.Fatal(err)
	}
	cb := wire.NewMsgTx(2)
	cb.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 0xffffffff}, []byte{0x01, 0x07}, nil))
	cb.AddTxOut(wire.NewTxOut(1, []byte{0x51}))
	var header [80]byte // merkle root of zeros: matches nothing
	if _, err := Assemble(header, serialize(t, cb, false), tmpl); !errors.Is(err, ErrMerkleMismatch) {
		t.Fatalf("err = %v, want ErrMerkleMismatch", err)
	}
	if _, err := Assemble(header, []byte{1, 2, 3}, tmpl); err == nil {
		t.Fatal("garbage coinbase accepted")
	}
}

func TestParseTemplateRejectsBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"not json":  `{`,
		"no result": `{"result":null,"error":null,"id":"1"}`,
		"bad hex":   `{"result":{"height":1,"transactions":[{"data":"zz"}]}}`,
		"bad tx":    `{"result":{"height":1,"transactions":[{"data":"0100"}]}}`,
		// a valid one-input, one-output transaction followed by a stray byte
		"trailing bytes": `{"result":{"height":1,"transactions":[{"data":"01000000010000000000000000000000000000000000000000000000000000000000000000030000000151ffffffff01050000000000000001510000000000"}]}}`,
		// the same transaction with a segwit marker and flag but an empty witness
		"superfluous witness": `{"result":{"height":1,"transactions":[{"data":"010000000001010000000000000000000000000000000000000000000000000000000000000000030000000151ffffffff0105000000000000000151000000000000"}]}}`,
	} {
		if _, err := ParseTemplate("x", []byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The transaction of the last two cases, as it should be, is accepted.
	ok := `{"result":{"height":1,"transactions":[{"data":"01000000010000000000000000000000000000000000000000000000000000000000000000030000000151ffffffff010500000000000000015100000000"}]}}`
	if tmpl, err := ParseTemplate("x", []byte(ok)); err != nil || len(tmpl.Txs) != 1 {
		t.Errorf("valid transaction: %v", err)
	}
}

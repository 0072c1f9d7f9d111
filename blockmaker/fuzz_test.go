package blockmaker

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/wire/v2"
)

// FuzzParseTemplate feeds arbitrary getblocktemplate response text (what arrives over the bus)
// to ParseTemplate: it must never panic, and a template it accepts must hold only transactions
// that serialize back to exactly the bytes the node sent, with their txids.
func FuzzParseTemplate(f *testing.F) {
	legacy := wire.NewMsgTx(1)
	legacy.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 3}, []byte{0x51}, nil))
	legacy.AddTxOut(wire.NewTxOut(5, []byte{0x51}))
	for _, txs := range [][]*wire.MsgTx{{spendTx(1), spendTx(2)}, {legacy}} {
		var list []string
		for _, tx := range txs {
			var b bytes.Buffer
			if err := tx.Serialize(&b); err != nil {
				f.Fatal(err)
			}
			list = append(list, `{"data":"`+hex.EncodeToString(b.Bytes())+`"}`)
		}
		f.Add([]byte(`{"result":{"height":7,"previousblockhash":"0000000000000000000000000000000000000000000000000000000000000000","transactions":[` + strings.Join(list, ",") + `]},"error":null,"id":"1"}`))
	}
	for _, s := range []string{
		`{`, `{"result":null,"error":null,"id":"1"}`, `{"result":{"height":1,"transactions":[]}}`,
		`{"result":{"height":1,"transactions":[{"data":"zz"}]}}`, `{"result":{"height":1,"transactions":[{"data":"0100"}]}}`,
		`{"result":{"height":-1,"previousblockhash":7}}`, `{"result":{"transactions":[{"data":null},{}]}}`,
		`[1,2]`, `{"result":[]}`, `{"result":{"transactions":{"data":"00"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tmpl, err := ParseTemplate("gbt", b)
		if err != nil {
			return
		}
		if len(tmpl.Txs) != len(tmpl.TxIDs) {
			t.Fatalf("%d txs, %d txids", len(tmpl.Txs), len(tmpl.TxIDs))
		}
		total := 0
		for i, raw := range tmpl.Txs {
			total += len(raw)
			var msg wire.MsgTx
			if err := msg.Deserialize(bytes.NewReader(raw)); err != nil {
				t.Fatalf("tx %d accepted, now %v", i, err)
			}
			var again bytes.Buffer
			if err := msg.Serialize(&again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), raw) {
				t.Fatalf("tx %d: %x accepted, but it serializes to %x", i, raw, again.Bytes())
			}
			if msg.TxHash() != tmpl.TxIDs[i] {
				t.Fatalf("tx %d: txid mismatch", i)
			}
		}
		if total > maxBlockBytes {
			t.Fatalf("%d bytes of transactions accepted", total)
		}
	})
}

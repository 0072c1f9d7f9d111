package jobmaker

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// jobBranch decodes a job's merkle branch.
func jobBranch(t testing.TB, j *btcpool.StratumJob) [][32]byte {
	t.Helper()
	b, err := j.Branch()
	if err != nil {
		t.Fatalf("job merkleBranch %q: %v", j.MerkleBranch, err)
	}
	return b
}

// testTx returns a distinct transaction; odd n carry a witness, so that a
// txid computed over the witness serialization would show up as a wrong
// merkle root.
func testTx(n int) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	prev := chainhash.Hash{byte(n), byte(n >> 8), 0xab}
	in := wire.NewTxIn(wire.NewOutPoint(&prev, uint32(n)), nil, nil)
	if n%2 == 1 {
		in.Witness = wire.TxWitness{bytes.Repeat([]byte{byte(n)}, 71), bytes.Repeat([]byte{2}, 33)}
	} else {
		in.SignatureScript = []byte{0x51}
	}
	tx.AddTxIn(in)
	tx.AddTxOut(wire.NewTxOut(int64(1000+n), []byte{0x00, 0x14, byte(n), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}))
	return tx
}

func txHex(t testing.TB, tx *wire.MsgTx) string {
	t.Helper()
	var b bytes.Buffer
	if err := tx.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b.Bytes())
}

// testPrev is the previous block hash of test templates that name none.
const testPrev = "000000000000000000021d1c6e0a5a6bd1b1eb4a4bc7a0e7d1bd00000000beef"

// gbt describes a getblocktemplate response for tests.
type gbt struct {
	height     int32
	prev       string // display hex
	txs        []*wire.MsgTx
	commitment string // default_witness_commitment as the node prints it
	curtime    uint32
	bits       string
}

// text renders the response the way Bitcoin Core and btcd shape it.
func (g gbt) text(t testing.TB) []byte {
	t.Helper()
	if g.prev == "" {
		g.prev = testPrev
	}
	if g.bits == "" {
		g.bits = "207fffff"
	}
	var txs []string
	for _, tx := range g.txs {
		txs = append(txs, fmt.Sprintf(`{"data":"%s","txid":"%s","hash":"%s","depends":[],"fee":100,"sigops":1,"weight":500}`,
			txHex(t, tx), tx.TxHash(), tx.WitnessHash()))
	}
	commitment := ""
	if g.commitment != "" {
		commitment = fmt.Sprintf(`,"default_witness_commitment":"%s"`, g.commitment)
	}
	return fmt.Appendf(nil, `{"result":{"capabilities":["proposal"],"version":536870912,"rules":["csv","!segwit"],`+
		`"vbavailable":{},"vbrequired":0,"previousblockhash":"%s","transactions":[%s],"coinbaseaux":{},`+
		`"coinbasevalue":5000000000,"longpollid":"%s-1","target":"7fffff0000000000000000000000000000000000000000000000000000000000",`+
		`"mintime":%d,"mutable":["time","transactions","prevblock"],"noncerange":"00000000ffffffff","sigoplimit":80000,`+
		`"sizelimit":4000000,"weightlimit":4000000,"curtime":%d,"bits":"%s","height":%d%s},"error":null,"id":"1"}`,
		g.prev, strings.Join(txs, ","), g.prev, g.curtime-600, g.curtime, g.bits, g.height, commitment)
}

func TestParseTemplate(t *testing.T) {
	txs := []*wire.MsgTx{testTx(1), testTx(2), testTx(3)}
	core := gbt{height: 840_000, txs: txs, curtime: 1_763_000_000,
		commitment: strings.ReplaceAll(emptyCommitment, " ", "")}
	text := core.text(t)
	tp, err := ParseTemplate(text)
	if err != nil {
		t.Fatal(err)
	}
	if tp.GbtHash != sha.DoubleSHA256(text) {
		t.Error("gbt hash is not dSHA of the text")
	}
	if tp.Height != 840_000 || tp.CoinbaseValue != 5_000_000_000 || tp.Bits != 0x207fffff ||
		tp.CurTime != 1_763_000_000 || tp.MinTime != 1_763_000_000-600 || tp.Version != 536870912 {
		t.Errorf("fields: %+v", tp)
	}
	if sha.DisplayHex(tp.PrevHash) != testPrev {
		t.Errorf("prev hash %s", sha.DisplayHex(tp.PrevHash))
	}
	if !bytes.Equal(tp.Commitment, mustHex(t, emptyCommitment)) {
		t.Errorf("commitment %x", tp.Commitment)
	}
	if len(tp.TxIDs) != 3 || tp.Empty() {
		t.Fatalf("%d txids", len(tp.TxIDs))
	}
	for i, tx := range txs {
		if tp.TxIDs[i] != [32]byte(tx.TxHash()) {
			t.Errorf("txid %d is not the non-witness hash", i)
		}
	}

	// btcd's bare commitment hash gets the script header.
	btcd := core
	btcd.commitment = strings.ReplaceAll(emptyCommitment, " ", "")[12:]
	tp, err = ParseTemplate(btcd.text(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tp.Commitment, mustHex(t, emptyCommitment)) {
		t.Errorf("btcd commitment %x", tp.Commitment)
	}

	// An empty template; no mintime means curtime.
	empty := []byte(`{"result":{"previousblockhash":"` + testPrev + `","height":1,"coinbasevalue":5000000000,` +
		`"bits":"1d00ffff","curtime":1231006505,"version":1,"transactions":[]},"error":null,"id":"1"}`)
	tp, err = ParseTemplate(empty)
	if err != nil {
		t.Fatal(err)
	}
	if !tp.Empty() || tp.MinTime != 1231006505 || tp.Commitment != nil || tp.Bits != 0x1d00ffff {
		t.Errorf("empty template: %+v", tp)
	}
}

func TestParseTemplateErrors(t *testing.T) {
	prev := `"previousblockhash":"000000000000000000021d1c6e0a5a6bd1b1eb4a4bc7a0e7d1bd00000000beef"`
	base := map[string]string{
		"previousblockhash": prev, "height": `"height":2`, "coinbasevalue": `"coinbasevalue":1`,
		"bits": `"bits":"207fffff"`, "curtime": `"curtime":5`, "version": `"version":4`,
		"transactions": `"transactions":[]`,
	}
	with := func(over map[string]string) []byte {
		var parts []string
		for _, k := range []string{"previousblockhash", "height", "coinbasevalue", "bits", "curtime", "version", "transactions", "extra"} {
			v, ok := over[k]
			if !ok {
				v = base[k]
			}
			if v != "" {
				parts = append(parts, v)
			}
		}
		return []byte(`{"result":{` + strings.Join(parts, ",") + `},"error":null,"id":"1"}`)
	}
	if _, err := ParseTemplate(with(nil)); err != nil {
		t.Fatalf("base template: %v", err)
	}
	tx := txHex(t, testTx(1))
	for _, tc := range []struct {
		name string
		text []byte
		want string
	}{
		{"not JSON", []byte(`{"result":`), "JSON"},
		{"null result", []byte(`{"result":null,"error":{"code":-9},"id":"1"}`), "no result"},
		{"missing height and bits", with(map[string]string{"height": "", "bits": ""}), "[height bits]"},
		{"missing transactions", with(map[string]string{"transactions": ""}), "transactions"},
		{"float height", with(map[string]string{"height": `"height":1.5`}), "JSON"},
		{"string height", with(map[string]string{"height": `"height":"2"`}), "JSON"},
		{"height 0", with(map[string]string{"height": `"height":0`}), "height 0"},
		{"height 2^31", with(map[string]string{"height": `"height":2147483648`}), "height"},
		{"negative value", with(map[string]string{"coinbasevalue": `"coinbasevalue":-1`}), "coinbasevalue"},
		{"value above 21M BTC", with(map[string]string{"coinbasevalue": `"coinbasevalue":2100000000000001`}), "coinbasevalue"},
		{"curtime above 2^32", with(map[string]string{"curtime": `"curtime":4294967296`}), "curtime"},
		{"mintime negative", with(map[string]string{"extra": `"mintime":-1`}), "mintime"},
		{"version above 2^32", with(map[string]string{"version": `"version":4294967296`}), "version"},
		{"short bits", with(map[string]string{"bits": `"bits":"7fffff"`}), "bits"},
		{"short prev hash", with(map[string]string{"previousblockhash": `"previousblockhash":"00"`}), "previousblockhash"},
		{"tx data not hex", with(map[string]string{"transactions": `"transactions":[{"data":"zz"}]`}), "transactions[0]"},
		{"tx data truncated", with(map[string]string{"transactions": `"transactions":[{"data":"` + tx[:len(tx)-2] + `"}]`}), "transactions[0]"},
		{"tx data with trailing bytes", with(map[string]string{"transactions": `"transactions":[{"data":"` + tx + `"},{"data":"` + tx + `00"}]`}), "transactions[1]"},
		{"commitment 31 bytes", with(map[string]string{"extra": `"default_witness_commitment":"` + strings.Repeat("ab", 31) + `"`}), "default_witness_commitment"},
		{"commitment script without magic", with(map[string]string{"extra": `"default_witness_commitment":"6a24aa21a9ee` + strings.Repeat("ab", 32) + `"`}), "default_witness_commitment"},
		{"commitment not hex", with(map[string]string{"extra": `"default_witness_commitment":"xyz"`}), "default_witness_commitment"},
		{"two problems at once", with(map[string]string{"bits": `"bits":"zz"`, "height": `"height":0`}), "height 0"},
		{"too large", append(with(nil), bytes.Repeat([]byte(" "), MaxTemplateSize)...), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTemplate(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestPrevHashBeStr uses the spec's example (§3.6): display
// 00000000000000000328e9fe…89c2f63d becomes 89c2f63dfb970e56…0000000000000000
// in mining.notify: the display hash's 4-byte words in reverse order.
func TestPrevHashBeStr(t *testing.T) {
	display := "00000000" + "00000000" + "0328e9fe" + "a1b2c3d4" + "e5f60718" + "293a4b5c" + "fb970e56" + "89c2f63d"
	want := "89c2f63d" + "fb970e56" + "293a4b5c" + "e5f60718" + "a1b2c3d4" + "0328e9fe" + "00000000" + "00000000"
	h, err := sha.ParseDisplayHex(display)
	if err != nil {
		t.Fatal(err)
	}
	if got := prevHashBeStr(h); got != want {
		t.Errorf("prevHashBeStr\n got %s\nwant %s", got, want)
	}
}

// TestJobMerkleRootMatchesBtcd completes the job's coinbase, folds it with
// the job's branch and compares the root with btcd's merkle tree over the
// whole block, for every tree shape up to 17 transactions.
func TestJobMerkleRootMatchesBtcd(t *testing.T) {
	params := jobParams{info: []byte("/hashpool/"), payout: mustHex(t, genesisP2PKH)}
	for n := 0; n <= 17; n++ {
		t.Run(fmt.Sprint(n, " txs"), func(t *testing.T) {
			var txs []*wire.MsgTx
			for i := range n {
				txs = append(txs, testTx(100*n+i))
			}
			tp, err := ParseTemplate(gbt{height: 500, txs: txs, curtime: 1_763_000_000}.text(t))
			if err != nil {
				t.Fatal(err)
			}
			j, err := buildJob(tp, params, 1_763_000_001, 7)
			if err != nil {
				t.Fatal(err)
			}
			cb := completeCoinbase(t, mustHex(t, j.Coinbase1), mustHex(t, j.Coinbase2), []byte{1, 2, 3, 4}, make([]byte, 8))
			branch := jobBranch(t, j)
			root := sha.MerkleRoot([32]byte(cb.TxHash()), branch)

			block := []*btcutil.Tx{btcutil.NewTx(cb)}
			for _, tx := range txs {
				block = append(block, btcutil.NewTx(tx))
			}
			store := blockchain.BuildMerkleTreeStore(block, false)
			if want := store[len(store)-1]; root != [32]byte(*want) {
				t.Errorf("root %s, btcd %s", sha.DisplayHex(root), want)
			}
			if want := sha.MerkleBranch(tp.TxIDs); !slices.Equal(branch, want) {
				t.Errorf("merkleBranch %q is not the template's branch in display hex", j.MerkleBranch)
			}
			if (n == 0) != (j.MerkleBranch == "") {
				t.Errorf("%d txs, branch %q", n, j.MerkleBranch)
			}
		})
	}
}

func TestBuildJobFields(t *testing.T) {
	g := gbt{height: 840_000, txs: []*wire.MsgTx{testTx(1)}, curtime: 1_763_000_000,
		commitment: strings.ReplaceAll(emptyCommitment, " ", "")[12:]}
	text := g.text(t)
	tp, err := ParseTemplate(text)
	if err != nil {
		t.Fatal(err)
	}
	params := jobParams{info: []byte("/hashpool/"), payout: mustHex(t, genesisP2PKH)}
	j, err := buildJob(tp, params, 1_763_000_002, 0xabc)
	if err != nil {
		t.Fatal(err)
	}
	want := btcpool.StratumJob{
		JobID: 0xabc, GbtHash: sha.DisplayHex(sha.DoubleSHA256(text)), PrevHash: testPrev,
		PrevHashBeStr: prevHashBeStr(tp.PrevHash), Height: 840_000, NVersion: 536870912,
		NBits: 0x207fffff, NTime: 1_763_000_000, MinTime: 1_763_000_000 - 600, CoinbaseValue: 5_000_000_000,
		WitnessCommitment: strings.ReplaceAll(emptyCommitment, " ", ""),
	}
	got := *j
	got.Coinbase1, got.Coinbase2, got.MerkleBranch = "", "", ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("job\n got %+v\nwant %+v", got, want)
	}
	cb1, cb2, _ := buildCoinbase(coinbaseInput{height: 840_000, now: 1_763_000_002, info: params.info,
		payout: params.payout, value: 5_000_000_000, commitment: tp.Commitment})
	if j.Coinbase1 != hex.EncodeToString(cb1) || j.Coinbase2 != hex.EncodeToString(cb2) {
		t.Error("job coinbase is not the coinbase built at the job's time")
	}
	params.blockVersion = 0x20000004
	if j, _ = buildJob(tp, params, 1_763_000_002, 1); j.NVersion != 0x20000004 {
		t.Errorf("block_version not applied: %#x", j.NVersion)
	}
}

func FuzzParseTemplate(f *testing.F) {
	f.Add(gbt{height: 5, txs: []*wire.MsgTx{testTx(1), testTx(2)}, curtime: 100, commitment: strings.Repeat("ab", 32)}.text(f))
	f.Add(gbt{height: 1, curtime: 1}.text(f))
	f.Add([]byte(`{"result":{"transactions":[{"data":"02000000000101"}]}}`))
	f.Add([]byte(`{"result":null}`))
	f.Fuzz(func(t *testing.T, text []byte) {
		tp, err := ParseTemplate(text)
		if err != nil {
			return
		}
		if tp.Height < 1 || tp.CoinbaseValue < 0 {
			t.Fatalf("accepted bad fields: %+v", tp)
		}
		j, err := buildJob(tp, jobParams{payout: []byte{0x51}}, 1, 1)
		if err != nil {
			return
		}
		if _, err := j.Branch(); err != nil || len(j.Coinbase1)%2 != 0 {
			t.Fatalf("bad job %+v", j)
		}
	})
}

func BenchmarkParseTemplate(b *testing.B) {
	for _, n := range []int{0, 100, 2000} {
		var txs []*wire.MsgTx
		for i := range n {
			txs = append(txs, testTx(i))
		}
		text := gbt{height: 840_000, txs: txs, curtime: 1_763_000_000}.text(b)
		b.Run(fmt.Sprint(n, " txs"), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseTemplate(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

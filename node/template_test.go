package node

import (
	"errors"
	"strings"
	"testing"
)

// btcdTemplate is a getblocktemplate response as btcd 0.26.2 sends it in regtest with one
// witness transaction in the mempool (fields trimmed to the ones that matter, order kept).
const btcdTemplate = `{"result":{"bits":"207fffff","curtime":1763894000,"height":102,` +
	`"previousblockhash":"3b8a1f2ea4d1e0e52dd0cd27f7b8a3e1fd6d9d1b4a0f83f7c7b5c5a39c1e3a11",` +
	`"sigoplimit":80000,"sizelimit":4000000,"weightlimit":4000000,` +
	`"transactions":[{"data":"02000000000101aa00000000000000000000000000000000000000000000000000000000000000000000000000ffffffff0100f2052a0100000016001400000000000000000000000000000000000000000000000000","hash":"1111111111111111111111111111111111111111111111111111111111111111","txid":"2222222222222222222222222222222222222222222222222222222222222222","depends":[],"fee":10000,"sigops":1,"weight":437}],` +
	`"version":536870912,"coinbaseaux":{"flags":""},"coinbasevalue":5000010000,` +
	`"longpollid":"3b8a1f2ea4d1e0e52dd0cd27f7b8a3e1fd6d9d1b4a0f83f7c7b5c5a39c1e3a11-1763894000",` +
	`"target":"7fffff0000000000000000000000000000000000000000000000000000000000","maxtime":1763901200,` +
	`"mintime":1763893000,"mutable":["time","transactions/add","prevblock","coinbase/append"],"noncerange":"00000000ffffffff",` +
	`"capabilities":["proposal"],"default_witness_commitment":"952bee5e3e5fe1b4d1e9e6c5b2c56ff3c4a8b1d2e3f405162738495a6b7c6805"},"error":null,"id":"1"}`

// coreTemplate is the shape of a Bitcoin Core answer: rules, and the full commitment script.
const coreTemplate = `{"result":{"capabilities":["proposal"],"version":536870912,"rules":["csv","!segwit","taproot"],` +
	`"vbavailable":{},"vbrequired":0,"previousblockhash":"0000000000000000000123456789abcdef0123456789abcdef0123456789abcd",` +
	`"transactions":[],"coinbaseaux":{},"coinbasevalue":312500000,"longpollid":"0000000000000000000123456789abcdef0123456789abcdef0123456789abcd12",` +
	`"target":"00000000000000000002f1280000000000000000000000000000000000000000","mintime":1763890000,` +
	`"mutable":["time","transactions","prevblock"],"noncerange":"00000000ffffffff","sigoplimit":80000,"sizelimit":4000000,` +
	`"weightlimit":4000000,"curtime":1763894000,"bits":"17028f12","height":925000,` +
	`"default_witness_commitment":"6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"},"error":null,"id":"1"}`

func TestParseTemplateNodes(t *testing.T) {
	tm, err := ParseTemplate([]byte(btcdTemplate))
	if err != nil {
		t.Fatal(err)
	}
	if tm.Height != 102 || tm.Bits != "207fffff" || tm.CoinbaseValue != 5000010000 || tm.Version != 536870912 ||
		tm.CurTime != 1763894000 || tm.MinTime != 1763893000 || len(tm.Transactions) != 1 || tm.Transactions[0].Fee != 10000 ||
		tm.Transactions[0].Weight != 437 || tm.Rules != nil || !strings.HasSuffix(tm.LongPollID, "-1763894000") {
		t.Fatalf("btcd template parsed as %+v", tm)
	}
	if string(tm.Raw) != btcdTemplate {
		t.Fatal("Raw is not the response text")
	}
	if got, want := tm.WitnessCommitmentScript(), "6a24aa21a9ed952bee5e3e5fe1b4d1e9e6c5b2c56ff3c4a8b1d2e3f405162738495a6b7c6805"; got != want {
		t.Fatalf("btcd commitment script %s, want %s", got, want)
	}

	tm, err = ParseTemplate([]byte(coreTemplate))
	if err != nil {
		t.Fatal(err)
	}
	if tm.Height != 925000 || len(tm.Rules) != 3 || len(tm.Transactions) != 0 {
		t.Fatalf("core template parsed as %+v", tm)
	}
	if got := tm.WitnessCommitmentScript(); got != tm.DefaultWitnessCommitment {
		t.Fatalf("core commitment script changed: %s", got)
	}
	tm.DefaultWitnessCommitment = ""
	if got := tm.WitnessCommitmentScript(); got != "" {
		t.Fatalf("no commitment gives %q", got)
	}
}

func TestParseTemplateRejects(t *testing.T) {
	base := `{"previousblockhash":"0000000000000000000123456789abcdef0123456789abcdef0123456789abcd","height":1,"coinbasevalue":1,"bits":"207fffff","mintime":1,"curtime":2,"version":3`
	wrap := func(result string) string { return `{"result":` + result + `,"error":null,"id":"1"}` }
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"valid", wrap(base + `}`), ""},
		{"not json", `{"result":`, "not JSON"},
		{"error set", `{"result":null,"error":{"code":-10,"message":"IBD"},"id":"1"}`, "error is not null"},
		{"result null", wrap(`null`), "not an object"},
		{"result array", wrap(`[]`), "not an object"},
		{"missing everything", wrap(`{}`), "previousblockhash is missing; height is missing; coinbasevalue is missing; bits is missing; mintime is missing; curtime is missing; version is missing"},
		{"height string", wrap(strings.Replace(base, `"height":1`, `"height":"1"`, 1) + `}`), "height"},
		{"height float", wrap(strings.Replace(base, `"height":1`, `"height":1.5`, 1) + `}`), "height"},
		{"height negative", wrap(strings.Replace(base, `"height":1`, `"height":-1`, 1) + `}`), "height -1 is out of range"},
		{"height too large", wrap(strings.Replace(base, `"height":1`, `"height":2147483648`, 1) + `}`), "out of range"},
		{"bits int", wrap(strings.Replace(base, `"bits":"207fffff"`, `"bits":545259519`, 1) + `}`), "bits"},
		{"bits short", wrap(strings.Replace(base, `"bits":"207fffff"`, `"bits":"207fff"`, 1) + `}`), "bits is not 8 hex"},
		{"bits empty", wrap(strings.Replace(base, `"bits":"207fffff"`, `"bits":""`, 1) + `}`), "bits is not 8 hex"},
		{"prevhash empty", wrap(strings.Replace(base, `"0000000000000000000123456789abcdef0123456789abcdef0123456789abcd"`, `""`, 1) + `}`), "previousblockhash is not 64"},
		{"prevhash short", wrap(strings.Replace(base, `abcd","height"`, `","height"`, 1) + `}`), "previousblockhash is not 64"},
		{"coinbasevalue negative", wrap(strings.Replace(base, `"coinbasevalue":1`, `"coinbasevalue":-5`, 1) + `}`), "negative"},
		{"version string", wrap(strings.Replace(base, `"version":3`, `"version":"3"`, 1) + `}`), "version"},
		{"curtime null", wrap(strings.Replace(base, `"curtime":2`, `"curtime":null`, 1) + `}`), "curtime is missing"},
		{"bad commitment", wrap(base + `,"default_witness_commitment":"6a24"}`), "default_witness_commitment"},
		{"bad tx data", wrap(base + `,"transactions":[{"data":"zz"}]}`), "transactions[0].data"},
		{"bad tx txid", wrap(base + `,"transactions":[{"data":"0100000000000000000000","txid":"12"}]}`), "transactions[0].txid"},
		{"transactions object", wrap(base + `,"transactions":{}}`), "transactions"},
		{"tx without data", wrap(base + `,"transactions":[{"txid":"00"}]}`), "transactions[0].data is missing"},
		{"tx not object", wrap(base + `,"transactions":[1]}`), "transactions[0] is not an object"},
		{"tx fee string", wrap(base + `,"transactions":[{"data":"0100000000000000000000","fee":"1"}]}`), "transactions[0].fee"},
		{"tx depends", wrap(base + `,"transactions":[{"data":"0100000000000000000000","depends":[1.5]}]}`), "depends"},
		{"rules not strings", wrap(base + `,"rules":[1]}`), "rules"},
		{"duplicate-free valid tx", wrap(base + `,"transactions":[{"data":"0100000000000000000000","depends":[],"fee":1,"weight":44}]}`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := ParseTemplate([]byte(tc.raw))
			if tc.want == "" {
				if err != nil || tm == nil {
					t.Fatalf("ParseTemplate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %s", tc.raw)
			}
			if !errors.Is(err, ErrBadTemplate) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %q, want ErrBadTemplate mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzParseTemplate(f *testing.F) {
	f.Add([]byte(btcdTemplate))
	f.Add([]byte(coreTemplate))
	f.Add([]byte(`{"result":{},"error":null,"id":"1"}`))
	f.Add([]byte(`{"result":{"transactions":[{"data":null}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tm, err := ParseTemplate(raw)
		if err != nil {
			if tm != nil || !errors.Is(err, ErrBadTemplate) {
				t.Fatalf("error %v with template %v", err, tm)
			}
			return
		}
		// Whatever is accepted satisfies the invariants consumers rely on.
		if !isHash(tm.PreviousBlockHash) || !isHexLen(tm.Bits, 8) || tm.Height < 0 || tm.CoinbaseValue < 0 {
			t.Fatalf("accepted bad template %+v", tm)
		}
		if c := tm.WitnessCommitmentScript(); c != "" && (len(c) != 76 || !strings.HasPrefix(c, witnessCommitmentPrefix)) {
			t.Fatalf("bad commitment script %q", c)
		}
	})
}

// syntheticTemplate returns a response text with n transactions of about 250 bytes each, the
// shape of a full main-net template (about 3,000 transactions, 1.5 MB).
func syntheticTemplate(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"result":{"version":536870912,"previousblockhash":"0000000000000000000123456789abcdef0123456789abcdef0123456789abcd","transactions":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"data":"`)
		b.WriteString(strings.Repeat("0a", 250))
		b.WriteString(`","txid":"`)
		b.WriteString(strings.Repeat("1b", 32))
		b.WriteString(`","hash":"`)
		b.WriteString(strings.Repeat("2c", 32))
		b.WriteString(`","depends":[],"fee":1234,"sigops":4,"weight":1000}`)
	}
	b.WriteString(`],"coinbasevalue":312500000,"longpollid":"x","mintime":1,"curtime":2,"bits":"17028f12","height":925000},"error":null,"id":"1"}`)
	return []byte(b.String())
}

func BenchmarkParseTemplate(b *testing.B) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"btcd-1tx", []byte(btcdTemplate)},
		{"3000tx", syntheticTemplate(3000)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.raw)))
			for b.Loop() {
				if _, err := ParseTemplate(tc.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzTemplateRules: the consumers' rules differ only in what they require, so whatever
// jobmaker accepts (it makes jobs from it) blockmaker accepts too, with the same txids, and
// whatever gbtmaker publishes parses the same way for everyone.
func FuzzTemplateRules(f *testing.F) {
	f.Add([]byte(btcdTemplate))
	f.Add([]byte(coreTemplate))
	f.Add([]byte(`{"result":{"previousblockhash":"0000000000000000000123456789abcdef0123456789abcdef0123456789abcd","height":1,"coinbasevalue":1,"bits":"207fffff","curtime":2,"version":3,"transactions":[{"data":"01000000010000000000000000000000000000000000000000000000000000000000000000030000000151ffffffff010500000000000000015100000000"}]},"error":null,"id":"1"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		job, jerr := ParseTemplateWith(raw, JobmakerRules)
		blk, berr := ParseTemplateWith(raw, BlockmakerRules)
		if jerr == nil {
			if berr != nil {
				t.Fatalf("jobmaker accepts, blockmaker refuses: %v", berr)
			}
			if len(job.TxIDs) != len(blk.TxIDs) || len(blk.TxBytes) != len(blk.TxIDs) {
				t.Fatalf("txids %d / %d", len(job.TxIDs), len(blk.TxIDs))
			}
			for i := range job.TxIDs {
				if job.TxIDs[i] != blk.TxIDs[i] {
					t.Fatalf("txid %d differs", i)
				}
			}
		}
		if g, err := ParseTemplate(raw); err == nil && berr == nil && (g.Height != blk.Height || g.PreviousBlockHash != blk.PreviousBlockHash) {
			t.Fatalf("gbtmaker and blockmaker read different fields")
		}
	})
}

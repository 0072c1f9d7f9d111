package btcpool

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"

	"github.com/hashpool/hashpool/auxpow"
)

// goldenJob is a job in the exact shape of spec §3.7 (HEAD key order, no whitespace, no
// merged mining: zero nmcBlockHash, "0x"+zero targets, vcashHeight 0).
const goldenJob = `{"jobId":6871947673600000513,` +
	`"gbtHash":"cdf06e638d7d1586ec7da98415306fd42ee96c80ef8dc74451d7854f0e48a15a",` +
	`"prevHash":"00000000000000000328e9fe148de9c5a7a44d19e56cd9ae1a554bf689c2f63d",` +
	`"prevHashBeStr":"89c2f63d1a554bf6e56cd9aea7a44d19148de9c50328e9fe0000000000000000",` +
	`"height":650000,` +
	`"coinbase1":"02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff2303100b0a0400e15f5f",` +
	`"grandCoinbase1":"",` +
	`"coinbase2":"ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000",` +
	`"subPool":{"alpha":{"coinbase1":"0a","coinbase2":"0b","grandCoinbase1":""},"beta":{"coinbase1":"1a","coinbase2":"1b","grandCoinbase1":"1c"}},` +
	`"merkleBranch":"7dc96f776c8423e57a2785489a3f9c43fb6e756876d6ad9a9cac4aa4e72ec1934814d92093ac8a0f4a2163ab87dee509ba306a58f5888be0edcb2fcd0712028b",` +
	`"nVersion":536870912,"nBits":386920690,"nTime":1600000000,"minTime":1599990000,"coinbaseValue":625000000,` +
	`"witnessCommitment":"6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9",` +
	`"proxyExtraNonce2Size":0,"proxyJobDifficulty":0,` +
	`"nmcBlockHash":"0000000000000000000000000000000000000000000000000000000000000000","nmcBits":0,"nmcHeight":0,"nmcRpcAddr":"","nmcRpcUserpass":"",` +
	`"rskBlockHashForMergedMining":"","rskNetworkTarget":"0x0000000000000000000000000000000000000000000000000000000000000000","rskFeesForMiner":"","rskdRpcAddress":"","rskdRpcUserPwd":"",` +
	`"isRskCleanJob":false,"mergedMiningClean":false,` +
	`"vcashBlockHashForMergedMining":"","vcashNetworkTarget":"0x0000000000000000000000000000000000000000000000000000000000000000","vcashHeight":0,"vcashdRpcAddress":"","vcashdRpcUserPwd":"",` +
	`"isVcashCleanJob":false}`

func goldenJobStruct() StratumJob {
	return StratumJob{
		JobID:             6871947673600000513,
		GbtHash:           "cdf06e638d7d1586ec7da98415306fd42ee96c80ef8dc74451d7854f0e48a15a",
		PrevHash:          "00000000000000000328e9fe148de9c5a7a44d19e56cd9ae1a554bf689c2f63d",
		PrevHashBeStr:     "89c2f63d1a554bf6e56cd9aea7a44d19148de9c50328e9fe0000000000000000",
		Height:            650000,
		Coinbase1:         "02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff2303100b0a0400e15f5f",
		Coinbase2:         "ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000",
		SubPool:           map[string]SubPoolCoinbase{"beta": {"1a", "1b", "1c"}, "alpha": {Coinbase1: "0a", Coinbase2: "0b"}},
		MerkleBranch:      "7dc96f776c8423e57a2785489a3f9c43fb6e756876d6ad9a9cac4aa4e72ec1934814d92093ac8a0f4a2163ab87dee509ba306a58f5888be0edcb2fcd0712028b",
		NVersion:          536870912,
		NBits:             386920690,
		NTime:             1600000000,
		MinTime:           1599990000,
		CoinbaseValue:     625000000,
		WitnessCommitment: "6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9",
	}
}

func TestStratumJobGolden(t *testing.T) {
	j := goldenJobStruct()
	if got := string(AppendStratumJob(nil, &j)); got != goldenJob {
		t.Fatalf("encode\n got %s\nwant %s", got, goldenJob)
	}
	var d StratumJob
	if err := DecodeStratumJob([]byte(goldenJob), &d); err != nil {
		t.Fatal(err)
	}
	want := goldenJobStruct()
	want.NmcBlockHash = zeroHashHex
	want.RskNetworkTarget = "0x" + zeroHashHex
	want.VcashNetworkTarget = "0x" + zeroHashHex
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("decode\n got %+v\nwant %+v", d, want)
	}
	if got := string(AppendStratumJob(nil, &d)); got != goldenJob {
		t.Fatalf("re-encode differs:\n%s", got)
	}
	if d.JobTime() != 1600000000 {
		t.Fatalf("JobTime %d", d.JobTime())
	}
	// Must be valid JSON for any consumer.
	var anyv map[string]any
	if err := json.Unmarshal([]byte(goldenJob), &anyv); err != nil {
		t.Fatal(err)
	}
}

func TestStratumJobHelpers(t *testing.T) {
	j := goldenJobStruct()
	br, err := j.Branch()
	if err != nil || len(br) != 2 {
		t.Fatalf("Branch: %v %d", err, len(br))
	}
	for i, h := range br {
		ref, err := chainhash.NewHashFromStr(j.MerkleBranch[64*i : 64*i+64])
		if err != nil {
			t.Fatal(err)
		}
		if h != [32]byte(*ref) {
			t.Fatalf("branch %d: got %x want %x", i, h, ref[:])
		}
	}
	prev, err := j.PrevHashBytes()
	ref, _ := chainhash.NewHashFromStr(j.PrevHash)
	if err != nil || prev != [32]byte(*ref) {
		t.Fatalf("PrevHashBytes %x %v", prev, err)
	}
	// prevHashBeStr is the internal hash with each 4-byte word reversed (spec §3.6).
	var be []byte
	for w := 0; w < 32; w += 4 {
		be = append(be, prev[w+3], prev[w+2], prev[w+1], prev[w])
	}
	if hexStr := strings.ToLower(string(appendHex(nil, be))); hexStr != j.PrevHashBeStr {
		t.Fatalf("golden prevHashBeStr inconsistent: %s", hexStr)
	}
	cb1, err := j.Coinbase1Bytes()
	if err != nil || len(cb1) != len(j.Coinbase1)/2 || cb1[0] != 0x02 {
		t.Fatalf("Coinbase1Bytes %x %v", cb1, err)
	}
	cb2, err := j.Coinbase2Bytes()
	if err != nil || len(cb2) != len(j.Coinbase2)/2 {
		t.Fatalf("Coinbase2Bytes %x %v", cb2, err)
	}
	empty := StratumJob{}
	if br, err := empty.Branch(); err != nil || len(br) != 0 {
		t.Fatalf("empty branch: %v %v", br, err)
	}
	for _, bad := range []string{"7dc9", strings.Repeat("g", 64)} {
		j := StratumJob{MerkleBranch: bad, PrevHash: bad, Coinbase1: bad + "0", Coinbase2: "zz"}
		if _, err := j.Branch(); err == nil {
			t.Errorf("Branch accepted %q", bad)
		}
		if _, err := j.PrevHashBytes(); err == nil {
			t.Errorf("PrevHashBytes accepted %q", bad)
		}
		if _, err := j.Coinbase1Bytes(); err == nil {
			t.Errorf("Coinbase1Bytes accepted %q", bad+"0")
		}
		if _, err := j.Coinbase2Bytes(); err == nil {
			t.Error("Coinbase2Bytes accepted zz")
		}
	}
}

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// mutateJob decodes goldenJob into a map, applies f, and re-marshals (key order irrelevant to
// decoding).
func mutateJob(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(goldenJob))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeStratumJobRequiredKeys(t *testing.T) {
	required := []string{"jobId", "gbtHash", "prevHash", "prevHashBeStr", "height", "coinbase1", "coinbase2",
		"merkleBranch", "nVersion", "nBits", "nTime", "minTime", "coinbaseValue"}
	for _, k := range required {
		var j StratumJob
		err := DecodeStratumJob(mutateJob(t, func(m map[string]any) { delete(m, k) }), &j)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), `"`+k+`"`) {
			t.Errorf("missing %s: err = %v", k, err)
		}
		// Wrong type: strings become numbers and numbers strings.
		err = DecodeStratumJob(mutateJob(t, func(m map[string]any) {
			if _, ok := m[k].(string); ok {
				m[k] = 5
			} else {
				m[k] = "5"
			}
		}), &j)
		if err == nil {
			t.Errorf("wrong type for %s accepted", k)
		}
	}
	// Every optional key may go missing; LEGACY jobs lack grandCoinbase1, subPool, proxy*, vcash*.
	var j StratumJob
	b := mutateJob(t, func(m map[string]any) {
		for k := range m {
			if !containsStr(required, k) {
				delete(m, k)
			}
		}
	})
	if err := DecodeStratumJob(b, &j); err != nil {
		t.Fatalf("minimal job: %v", err)
	}
	if j.VcashHeight != 0 || j.WitnessCommitment != "" || j.SubPool != nil || j.NmcBlockHash != "" {
		t.Fatalf("minimal job optional fields: %+v", j)
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDecodeStratumJobCases(t *testing.T) {
	cases := []struct {
		name string
		f    func(m map[string]any)
		ok   bool
		chk  func(j *StratumJob) bool
	}{
		{"unknown keys tolerated", func(m map[string]any) { m["rootStateHash"] = "ab"; m["x"] = []any{1} }, true, nil},
		{"short witness commitment dropped", func(m map[string]any) { m["witnessCommitment"] = strings.Repeat("a", 74) }, true,
			func(j *StratumJob) bool { return j.WitnessCommitment == "" }},
		{"76-char witness commitment kept", func(m map[string]any) { m["witnessCommitment"] = strings.Repeat("a", 76) }, true,
			func(j *StratumJob) bool { return len(j.WitnessCommitment) == 76 }},
		{"vcash height", func(m map[string]any) { m["vcashHeight"] = json.Number("18446744073709551615") }, true,
			func(j *StratumJob) bool { return j.VcashHeight == 1<<64-1 }},
		{"merged mining", func(m map[string]any) {
			m["nmcBlockHash"] = strings.Repeat("ab", 32)
			m["nmcBits"] = 0x1b0404cb
			m["mergedMiningClean"] = true
			m["nmcRpcUserpass"] = `user:p"ss`
		}, true, func(j *StratumJob) bool {
			return j.NmcBits == 0x1b0404cb && j.MergedMiningClean && j.NmcRpcUserpass == `user:p"ss`
		}},
		{"negative nVersion", func(m map[string]any) { m["nVersion"] = -1 }, true, func(j *StratumJob) bool { return j.NVersion == -1 }},
		{"nBits out of range", func(m map[string]any) { m["nBits"] = json.Number("4294967296") }, false, nil},
		{"height out of range", func(m map[string]any) { m["height"] = json.Number("2147483648") }, false, nil},
		{"jobId negative", func(m map[string]any) { m["jobId"] = -1 }, false, nil},
		{"jobId float", func(m map[string]any) { m["jobId"] = 1.5 }, false, nil},
		// Optional keys of the wrong type count as absent, as in btcpool.
		{"bool not bool", func(m map[string]any) { m["mergedMiningClean"] = 1 }, true,
			func(j *StratumJob) bool { return !j.MergedMiningClean }},
		{"subPool not object", func(m map[string]any) { m["subPool"] = "x" }, true,
			func(j *StratumJob) bool { return j.SubPool == nil }},
		{"subPool entry missing coinbase2 skipped", func(m map[string]any) {
			m["subPool"] = map[string]any{"a": map[string]any{"coinbase1": "00"}, "b": map[string]any{"coinbase1": "01", "coinbase2": "02", "grandCoinbase1": 5}}
		}, true, func(j *StratumJob) bool {
			return len(j.SubPool) == 1 && j.SubPool["b"] == SubPoolCoinbase{Coinbase1: "01", Coinbase2: "02"}
		}},
		{"witness commitment not a string", func(m map[string]any) { m["witnessCommitment"] = 5 }, true,
			func(j *StratumJob) bool { return j.WitnessCommitment == "" }},
		{"nmc group taken only whole", func(m map[string]any) {
			m["nmcBlockHash"] = strings.Repeat("ab", 32)
			m["nmcBits"] = "1b0404cb" // wrong type: the whole group is ignored
			m["nmcHeight"] = 5
		}, true, func(j *StratumJob) bool { return j.NmcBlockHash == "" && j.NmcHeight == 0 }},
		{"rsk group", func(m map[string]any) {
			m["rskBlockHashForMergedMining"] = "0xab"
			m["rskFeesForMiner"] = "12"
		}, true, func(j *StratumJob) bool { return j.RskBlockHashForMergedMining == "0xab" && j.RskFeesForMiner == "12" }},
		{"rsk group missing a key", func(m map[string]any) {
			m["rskBlockHashForMergedMining"] = "0xab"
			delete(m, "rskdRpcUserPwd")
		}, true, func(j *StratumJob) bool { return j.RskBlockHashForMergedMining == "" && j.RskNetworkTarget == "" }},
		{"vcash group with height", func(m map[string]any) {
			m["vcashHeight"] = 77
			m["vcashdRpcAddress"] = "http://127.0.0.1:3000"
		}, true, func(j *StratumJob) bool { return j.VcashHeight == 77 && j.VcashdRpcAddress == "http://127.0.0.1:3000" }},
		{"proxy pair needs both", func(m map[string]any) { m["proxyExtraNonce2Size"] = 12; delete(m, "proxyJobDifficulty") }, true,
			func(j *StratumJob) bool { return j.ProxyExtraNonce2Size == 0 }},
		{"proxy pair", func(m map[string]any) { m["proxyExtraNonce2Size"] = 12; m["proxyJobDifficulty"] = 65536 }, true,
			func(j *StratumJob) bool { return j.ProxyExtraNonce2Size == 12 && j.ProxyJobDifficulty == 65536 }},
		{"prevHash short", func(m map[string]any) { m["prevHash"] = "00" }, false, nil},
		{"gbtHash not hex", func(m map[string]any) { m["gbtHash"] = strings.Repeat("x", 64) }, false, nil},
		{"coinbase1 odd", func(m map[string]any) { m["coinbase1"] = "abc" }, false, nil},
		{"merkleBranch partial hash", func(m map[string]any) { m["merkleBranch"] = strings.Repeat("a", 65) }, false, nil},
		{"empty merkleBranch", func(m map[string]any) { m["merkleBranch"] = "" }, true, func(j *StratumJob) bool { return j.MerkleBranch == "" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var j StratumJob
			err := DecodeStratumJob(mutateJob(t, c.f), &j)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
			if c.chk != nil && !c.chk(&j) {
				t.Fatalf("decoded %+v", j)
			}
		})
	}
	for _, bad := range []string{"", "null", "[]", "{", `{"jobId":1}x`, `"s"`} {
		var j StratumJob
		if err := DecodeStratumJob([]byte(bad), &j); err == nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestStratumJobEscapesStrings(t *testing.T) {
	j := goldenJobStruct()
	j.NmcRpcUserpass = "u:\"p\\w\n"
	j.SubPool = map[string]SubPoolCoinbase{`we"ird`: {Coinbase1: "00", Coinbase2: "11"}}
	b := AppendStratumJob(nil, &j)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, b)
	}
	var d StratumJob
	if err := DecodeStratumJob(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.NmcRpcUserpass != j.NmcRpcUserpass || d.SubPool[`we"ird`].Coinbase2 != "11" {
		t.Fatalf("round trip lost escaping: %+v", d)
	}
}

// goldenMergedMining is the "mergedMining" key of a job with two aux chains in a tree of 4
// slots, as hashpool's jobmaker writes it.
const goldenMergedMining = `,"mergedMining":{"size":4,"nonce":7,"chains":[` +
	`{"name":"nmc","chainid":1,"hash":"1111111111111111111111111111111111111111111111111111111111111111","bits":545259519,` +
	`"target":"7fffff0000000000000000000000000000000000000000000000000000000000","height":5,"slot":1,` +
	`"branch":"abababababababababababababababababababababababababababababababab` +
	`cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","rpc_addr":"http://n","rpc_userpass":"a:b"},` +
	`{"name":"doge","chainid":98,"hash":"9898989898989898989898989898989898989898989898989898989898989898","bits":453248203,` +
	`"target":"00000000000404cb000000000000000000000000000000000000000000000000","height":-6,"slot":2,"branch":"",` +
	`"rpc_addr":"","rpc_userpass":""}]}`

func goldenMergedMiningStruct() MergedMining {
	var t1, t2 [32]byte
	t1[0], t1[1], t1[2] = 0x7f, 0xff, 0xff
	t2[5], t2[6], t2[7] = 0x04, 0x04, 0xcb
	var b1, b2 [32]byte
	for i := range b1 {
		b1[i], b2[i] = 0xab, 0xcd
	}
	return MergedMining{Size: 4, Nonce: 7, Chains: []MergedMiningChain{
		{Name: "nmc", ChainID: 1, Hash: strings.Repeat("11", 32), Bits: 0x207fffff, Target: t1, Height: 5, Slot: 1,
			Branch: [][32]byte{b1, b2}, RPCAddr: "http://n", RPCUserPass: "a:b"},
		{Name: "doge", ChainID: 98, Hash: strings.Repeat("98", 32), Bits: 0x1b0404cb, Target: t2, Height: -6, Slot: 2},
	}}
}

// jobWithMergedMining appends m's key to the golden job, the way jobmaker does.
func jobWithMergedMining(m *MergedMining) []byte {
	j := goldenJobStruct()
	b := AppendStratumJob(nil, &j)
	b = AppendMergedMining(b[:len(b)-1], m)
	return append(b, '}')
}

func TestMergedMiningRoundTrip(t *testing.T) {
	m := goldenMergedMiningStruct()
	b := jobWithMergedMining(&m)
	if want := goldenJob[:len(goldenJob)-1] + goldenMergedMining + "}"; string(b) != want {
		t.Fatalf("encode\n got %s\nwant %s", b, want)
	}
	// btcpool's decoder ignores the key; hashpool's reads it back.
	var j, plain StratumJob
	if err := DecodeStratumJob([]byte(goldenJob), &plain); err != nil {
		t.Fatal(err)
	}
	if err := DecodeStratumJob(b, &j); err != nil || !reflect.DeepEqual(j, plain) {
		t.Fatalf("StratumJob with mergedMining: %v\n%+v", err, j)
	}
	var got MergedMining
	if ok, err := DecodeMergedMining(b, &got); !ok || err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("decode %v %v\n got %+v\nwant %+v", ok, err, got, m)
	}
	if again := jobWithMergedMining(&got); string(again) != string(b) {
		t.Fatalf("re-encode differs:\n%s\n%s", again, b)
	}
	// A job without the key: absent, no error, m untouched.
	got = MergedMining{Size: 9}
	if ok, err := DecodeMergedMining([]byte(goldenJob), &got); ok || err != nil || got.Size != 9 {
		t.Fatalf("job without the key: %v %v %+v", ok, err, got)
	}
	// A chain name that needs escaping survives.
	m.Chains[0].Name = "n\"mc\\"
	if _, err := DecodeMergedMining(jobWithMergedMining(&m), &got); err != nil || got.Chains[0].Name != m.Chains[0].Name {
		t.Fatalf("escaped name: %v %q", err, got.Chains[0].Name)
	}
}

func TestMergedMiningBoundsAreAuxpows(t *testing.T) {
	if MaxMergedMiningChains != auxpow.MaxChains || MaxMergedMiningHeight != auxpow.MaxTreeHeight {
		t.Fatalf("bounds %d chains, height %d; auxpow's %d, %d", MaxMergedMiningChains, MaxMergedMiningHeight, auxpow.MaxChains, auxpow.MaxTreeHeight)
	}
}

func TestDecodeMergedMiningRefusesBadTrees(t *testing.T) {
	good := `{"name":"x","chainid":1,"hash":"` + strings.Repeat("11", 32) + `","target":"` + strings.Repeat("0f", 32) + `","slot":0,"branch":""}`
	chains := func(cs ...string) string { return `"chains":[` + strings.Join(cs, ",") + `]` }
	for _, tc := range []struct{ name, v string }{
		{"not an object", `{"mergedMining":[]}`},
		{"no size", `{"mergedMining":{"nonce":0,` + chains(good) + `}}`},
		{"size zero", `{"mergedMining":{"size":0,"nonce":0,` + chains(good) + `}}`},
		{"size not a power of two", `{"mergedMining":{"size":3,"nonce":0,` + chains(good) + `}}`},
		{"size too large", `{"mergedMining":{"size":2147483648,"nonce":0,` + chains(good) + `}}`},
		{"no nonce", `{"mergedMining":{"size":1,` + chains(good) + `}}`},
		{"no chains", `{"mergedMining":{"size":1,"nonce":0}}`},
		{"chains not an array", `{"mergedMining":{"size":1,"nonce":0,"chains":{}}}`},
		{"zero chains", `{"mergedMining":{"size":1,"nonce":0,` + chains() + `}}`},
		{"17 chains", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Split(strings.Repeat(good+"\x00", 17)[:len(good)*17+16], "\x00")...) + `}}`},
		{"chain not an object", `{"mergedMining":{"size":1,"nonce":0,` + chains(`1`) + `}}`},
		{"empty name", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, `"x"`, `""`, 1)) + `}}`},
		{"long name", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, `"x"`, `"`+strings.Repeat("x", 65)+`"`, 1)) + `}}`},
		{"bad hash", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, strings.Repeat("11", 32), "zz", 1)) + `}}`},
		{"short target", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, strings.Repeat("0f", 32), "01", 1)) + `}}`},
		{"zero target", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, strings.Repeat("0f", 32), strings.Repeat("00", 32), 1)) + `}}`},
		{"slot outside the tree", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, `"slot":0`, `"slot":1`, 1)) + `}}`},
		{"branch deeper than the tree", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, `"branch":""`, `"branch":"`+strings.Repeat("ab", 32)+`"`, 1)) + `}}`},
		{"branch not whole hashes", `{"mergedMining":{"size":2,"nonce":0,` + chains(strings.Replace(good, `"branch":""`, `"branch":"abc"`, 1)) + `}}`},
		{"chainid out of range", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, `"chainid":1`, `"chainid":4294967296`, 1)) + `}}`},
		{"rpc_addr not a string", `{"mergedMining":{"size":1,"nonce":0,` + chains(strings.Replace(good, `"slot":0`, `"slot":0,"rpc_addr":1`, 1)) + `}}`},
	} {
		var m MergedMining
		ok, err := DecodeMergedMining([]byte(tc.v), &m)
		if !ok || err == nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: present %v err %v", tc.name, ok, err)
		}
	}
	var m MergedMining
	if ok, err := DecodeMergedMining([]byte(`{"mergedMining":{"size":1,"nonce":0,`+chains(good)+`}}`), &m); !ok || err != nil || len(m.Chains) != 1 {
		t.Fatalf("minimal tree: %v %v %+v", ok, err, m)
	}
	if _, err := DecodeMergedMining([]byte(`[1]`), &m); !errors.Is(err, ErrMalformed) {
		t.Fatalf("not a job: %v", err)
	}
}

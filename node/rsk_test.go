package node

import (
	"strings"
	"testing"
)

const rskDocWork = `{"blockHashForMergedMining":"0x43513e9808bab44f1b4e9858ff737b226d7893d7d7ed4f92fdc885e5d0922672",` +
	`"target":"0x5555555555555555555555555555555555555555555555555555555555555555","feesPaidToMiner":"0","notify":false,` +
	`"parentBlockHash":"0x6953ed2171304931f096307ec71120da1e26d356e2aab6e7c35dbda9997d3f5e"}`

func TestParseRSKWork(t *testing.T) {
	w, err := parseRSKWork([]byte(rskDocWork))
	if err != nil || w.Notify || w.FeesPaidToMiner != "0" || !strings.HasPrefix(w.Target, "0x5555") {
		t.Fatalf("%+v %v", w, err)
	}
	for name, tc := range map[string]struct{ old, new string }{
		"no notify":   {`"notify":false,`, ``},
		"notify type": {`"notify":false`, `"notify":"false"`},
		"short hash":  {`0x43513e98`, `0x4351`},
		"bad parent":  {`0x6953ed21`, `0x6953edZZ`},
		"long target": {`"target":"0x`, `"target":"0x00`},
		"fees type":   {`"feesPaidToMiner":"0"`, `"feesPaidToMiner":0`},
		"long fees":   {`"feesPaidToMiner":"0"`, `"feesPaidToMiner":"` + strings.Repeat("9", 80) + `"`},
	} {
		if _, err := parseRSKWork([]byte(strings.Replace(rskDocWork, tc.old, tc.new, 1))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := string(rskBody("m", []string{"a", "b"})); got != `{"jsonrpc":"2.0","id":"1","method":"m","params":["a", "b"]}` {
		t.Fatalf("request %s", got)
	}
}

// FuzzParseRSKWork: no panic on any answer, and what is accepted is well formed.
func FuzzParseRSKWork(f *testing.F) {
	f.Add([]byte(rskDocWork))
	f.Add([]byte(`{"notify":true}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := parseRSKWork(b)
		if err != nil {
			return
		}
		if !rskHex(w.BlockHashForMergedMining, 64, 64) || !rskHex(w.ParentBlockHash, 64, 64) || !rskHex(w.Target, 1, 64) || len(w.FeesPaidToMiner) > 79 {
			t.Fatalf("accepted %+v", w)
		}
	})
}

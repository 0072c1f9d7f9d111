package btcpool

import (
	"errors"
	"strings"
	"testing"
)

// rskRawGwGolden is the message btcpool HEAD's gwmaker prints for the example mnr_getWork
// answer of RSK's JSON-RPC documentation.
const rskRawGwGolden = `{"created_at_ts":1700000000,"chainType":"RSK","rskdRpcAddress":"http://127.0.0.1:4444","rskdRpcUserPwd":"user:pass",` +
	`"target":"0x5555555555555555555555555555555555555555555555555555555555555555",` +
	`"parentBlockHash":"0x6953ed2171304931f096307ec71120da1e26d356e2aab6e7c35dbda9997d3f5e",` +
	`"blockHashForMergedMining":"0x43513e9808bab44f1b4e9858ff737b226d7893d7d7ed4f92fdc885e5d0922672",` +
	`"feesPaidToMiner":"0","notify":"false"}`

func goldenRskRawGw() RskRawGw {
	return RskRawGw{CreatedAt: 1700000000, ChainType: "RSK", RPCAddress: "http://127.0.0.1:4444", RPCUserPwd: "user:pass",
		Target:                   "0x5555555555555555555555555555555555555555555555555555555555555555",
		ParentBlockHash:          "0x6953ed2171304931f096307ec71120da1e26d356e2aab6e7c35dbda9997d3f5e",
		BlockHashForMergedMining: "0x43513e9808bab44f1b4e9858ff737b226d7893d7d7ed4f92fdc885e5d0922672",
		FeesPaidToMiner:          "0"}
}

func TestRskRawGwGolden(t *testing.T) {
	m := goldenRskRawGw()
	if got := string(AppendRskRawGw(nil, &m)); got != rskRawGwGolden {
		t.Fatalf("got\n%s\nwant\n%s", got, rskRawGwGolden)
	}
	var d RskRawGw
	if err := DecodeRskRawGw([]byte(rskRawGwGolden), &d); err != nil || d != m {
		t.Fatalf("decode %+v, %v", d, err)
	}
	m.Notify = true
	b := AppendRskRawGw(nil, &m)
	if !strings.HasSuffix(string(b), `"notify":"true"}`) {
		t.Fatalf("notify true: %s", b)
	}
	if err := DecodeRskRawGw(b, &d); err != nil || !d.Notify {
		t.Fatalf("decode notify: %+v, %v", d, err)
	}
	// LEGACY gwmaker: no chainType; notify as a JSON boolean is accepted too.
	legacy := strings.Replace(strings.Replace(rskRawGwGolden, `"chainType":"RSK",`, "", 1), `"notify":"false"`, `"notify":true`, 1)
	if err := DecodeRskRawGw([]byte(legacy), &d); err != nil || d.ChainType != "" || !d.Notify {
		t.Fatalf("legacy: %+v, %v", d, err)
	}
}

func TestRskRawGwRejects(t *testing.T) {
	for name, tc := range map[string]struct{ old, new, key string }{
		"no target":     {`"target":`, `"x":`, "target"},
		"bad hash":      {`0x43513e98`, `0x43513eZZ`, "blockHashForMergedMining"},
		"short parent":  {`0x6953ed21`, `0x6953`, "parentBlockHash"},
		"long target":   {`"target":"0x`, `"target":"0x00`, "target"},
		"notify string": {`"notify":"false"`, `"notify":"no"`, "notify"},
		"time type":     {`"created_at_ts":1700000000`, `"created_at_ts":"1"`, "created_at_ts"},
		"long address":  {`http://127.0.0.1:4444`, "http://" + strings.Repeat("a", 80), "rskdRpcAddress"},
		"no fees":       {`"feesPaidToMiner":"0",`, ``, "feesPaidToMiner"},
	} {
		t.Run(name, func(t *testing.T) {
			in := strings.Replace(rskRawGwGolden, tc.old, tc.new, 1)
			var d RskRawGw
			err := DecodeRskRawGw([]byte(in), &d)
			if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("%s: err %v, want one naming %s", in, err, tc.key)
			}
		})
	}
	var d RskRawGw
	if err := DecodeRskRawGw([]byte(`[1]`), &d); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}

// FuzzRskRawGw: the decoder never panics, and what it accepts encodes to a message that
// decodes to the same value.
func FuzzRskRawGw(f *testing.F) {
	f.Add([]byte(rskRawGwGolden))
	f.Add([]byte(strings.Replace(rskRawGwGolden, `"notify":"false"`, `"notify":true`, 1)))
	f.Add([]byte(`{"created_at_ts":1,"rskdRpcAddress":"","rskdRpcUserPwd":"","target":"1","parentBlockHash":"` +
		strings.Repeat("0", 64) + `","blockHashForMergedMining":"` + strings.Repeat("f", 64) + `","feesPaidToMiner":"","notify":"true"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m RskRawGw
		if DecodeRskRawGw(b, &m) != nil {
			return
		}
		var again RskRawGw
		if err := DecodeRskRawGw(AppendRskRawGw(nil, &m), &again); err != nil || again != m {
			t.Fatalf("round trip of %q: %+v, %v", b, again, err)
		}
	})
}

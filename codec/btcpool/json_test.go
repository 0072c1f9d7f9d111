package btcpool

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
)

const goldenGbtResp = `{"result":{"previousblockhash":"00","height":1},"error":null,"id":"1"}`

func TestRawGbtGolden(t *testing.T) {
	m := NewRawGbt([]byte(goldenGbtResp), 1600000000)
	// gbthash is dSHA of the response text in display hex; btcd's chainhash is the oracle.
	ref := chainhash.DoubleHashH([]byte(goldenGbtResp))
	if m.GbtHash != ref.String() {
		t.Fatalf("GbtHash %s want %s", m.GbtHash, ref.String())
	}
	want := `{"created_at_ts":1600000000,"block_template_base64":"eyJyZXN1bHQiOnsicHJldmlvdXNibG9ja2hhc2giOiIwMCIsImhlaWdodCI6MX0sImVycm9yIjpudWxsLCJpZCI6IjEifQ==","gbthash":"` + ref.String() + `"}`
	got := string(AppendRawGbt(nil, &m))
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	var d RawGbt
	if err := DecodeRawGbt([]byte(got), &d); err != nil || d != m {
		t.Fatalf("decode: %v %+v", err, d)
	}
	tmpl, err := d.Template()
	if err != nil || string(tmpl) != goldenGbtResp {
		t.Fatalf("Template: %v %q", err, tmpl)
	}
}

func TestDecodeRawGbtCases(t *testing.T) {
	h := strings.Repeat("ab", 32)
	cases := []struct {
		in string
		ok bool
	}{
		{`{"created_at_ts":1,"block_template_base64":"","gbthash":"` + h + `"}`, true},
		{`{"gbthash":"` + h + `","block_template_base64":"e30=","created_at_ts":4294967295,"extra":[1]}`, true},
		{`{"created_at_ts":4294967296,"block_template_base64":"","gbthash":"` + h + `"}`, false},
		{`{"created_at_ts":-1,"block_template_base64":"","gbthash":"` + h + `"}`, false},
		{`{"created_at_ts":"1","block_template_base64":"","gbthash":"` + h + `"}`, false},
		{`{"created_at_ts":1,"block_template_base64":5,"gbthash":"` + h + `"}`, false},
		{`{"created_at_ts":1,"gbthash":"` + h + `"}`, false},
		{`{"created_at_ts":1,"block_template_base64":""}`, false},
		{`{"created_at_ts":1,"block_template_base64":"","gbthash":"abc"}`, false},
		{`[]`, false},
		{``, false},
	}
	for _, c := range cases {
		var m RawGbt
		err := DecodeRawGbt([]byte(c.in), &m)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: err = %v", c.in, err)
		}
	}
	bad := RawGbt{BlockTemplateBase64: "!!"}
	if _, err := bad.Template(); err == nil {
		t.Fatal("Template accepted bad base64")
	}
}

func TestCommonEventGolden(t *testing.T) {
	ts := time.Date(2020, 9, 14, 8, 0, 1, 0, time.UTC)
	cases := []struct {
		ev   CommonEvent
		want string
	}{
		{CommonEvent{CreatedAt: ts, Type: EventTypeWorkerUpdate, Action: ActionMinerConnect, UserID: 1234, UserName: "alice",
			WorkerID: -3214321432143214321, WorkerName: "rig01", MinerAgent: "cgminer/4.10.0",
			IP: netip.MustParseAddr("203.0.113.7"), SessionID: 0x01000002, Desc: DescNewConn},
			`{"created_at":"2020-09-14 08:00:01","type":"worker_update","action":"miner_connect","content":{"user_id":1234,"user_name":"alice","worker_id":-3214321432143214321,"worker_name":"rig01","miner_agent":"cgminer/4.10.0","ip":"203.0.113.7","session_id":"01000002","desc":"new_conn"}}`},
		{CommonEvent{CreatedAt: ts.In(time.FixedZone("X", 8*3600)), Type: EventTypeWorkerUpdate, Action: ActionMinerDead, UserID: 7, UserName: "bob",
			WorkerID: 42, WorkerName: "a\"b\\c\x01", MinerAgent: "", SessionID: 0xff, Desc: DescFromBtcAgent,
			ExtUserID: -9, HasExtUserID: true},
			`{"created_at":"2020-09-14 08:00:01","type":"worker_update","action":"miner_dead","content":{"user_id":7,"user_name":"bob","worker_id":42,"worker_name":"a\"b\\c\u0001","miner_agent":"","ip":"0.0.0.0","session_id":"000000ff","desc":"from_btcagent","ext_user_id":-9}}`},
	}
	for i, c := range cases {
		got := string(AppendCommonEvent(nil, &c.ev))
		if got != c.want {
			t.Fatalf("case %d\n got %s\nwant %s", i, got, c.want)
		}
		var d CommonEvent
		if err := DecodeCommonEvent([]byte(got), &d); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want := c.ev
		want.CreatedAt = ts
		if !want.IP.IsValid() {
			want.IP = netip.AddrFrom4([4]byte{})
		}
		if d != want {
			t.Fatalf("case %d decode\n got %+v\nwant %+v", i, d, want)
		}
	}
}

func TestDecodeCommonEventCases(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{`{"type":"worker_update","action":"miner_dead","content":{"user_id":1,"worker_id":2}}`, true},
		{`{"type":"worker_update","action":"miner_dead","content":{"user_id":1}}`, false},
		{`{"type":"worker_update","action":"miner_dead","content":{"worker_id":2}}`, false},
		{`{"type":"worker_update","content":{"user_id":1,"worker_id":2}}`, false},
		{`{"action":"x","content":{"user_id":1,"worker_id":2}}`, false},
		{`{"type":"worker_update","action":"miner_dead"}`, false},
		{`{"type":"worker_update","action":"miner_dead","content":[]}`, false},
		{`{"created_at":"2020-13-01 00:00:00","type":"t","action":"a","content":{"user_id":1,"worker_id":2}}`, false},
		{`{"created_at":5,"type":"t","action":"a","content":{"user_id":1,"worker_id":2}}`, false},
		{`{"type":"t","action":"a","content":{"user_id":1,"worker_id":2,"ip":"1.2.3"}}`, false},
		{`{"type":"t","action":"a","content":{"user_id":1,"worker_id":2,"ip":"::1"}}`, true},
		{`{"type":"t","action":"a","content":{"user_id":1,"worker_id":2,"session_id":"123456789"}}`, false},
		{`{"type":"t","action":"a","content":{"user_id":1,"worker_id":2,"session_id":"xx"}}`, false},
		{`{"type":"t","action":"a","content":{"user_id":2147483648,"worker_id":2}}`, false},
		{`{"type":"t","action":"a","content":{"user_id":1,"worker_id":2,"ext_user_id":"3"}}`, false},
		{`{"type":"t","action":"a","content":{"user_id":1,"worker_id":2,"worker_name":3}}`, false},
	}
	for _, c := range cases {
		var e CommonEvent
		if err := DecodeCommonEvent([]byte(c.in), &e); (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.in, err)
		}
	}
}

// appendJSONString must agree with encoding/json on what a string decodes back to, including
// invalid UTF-8 (each bad byte becomes U+FFFD).
func checkJSONString(t *testing.T, s string) {
	t.Helper()
	enc := appendJSONString(nil, s)
	var got string
	if err := json.Unmarshal(enc, &got); err != nil {
		t.Fatalf("%q encodes to invalid JSON %s: %v", s, enc, err)
	}
	ref, _ := json.Marshal(s)
	var want string
	_ = json.Unmarshal(ref, &want)
	if got != want {
		t.Fatalf("%q: decodes to %q, encoding/json gives %q", s, got, want)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "\x00\x1f\n\r\t\b\f", "\x7f", "héllo 世界",
		"bad\xffutf8\xc3", "\u2028\u2029", "\xed\xa0\x80", strings.Repeat("a", 1000)} {
		checkJSONString(t, s)
	}
	if got := string(appendJSONString(nil, "a\"\n\x01")); got != `"a\"\n\u0001"` {
		t.Fatalf("got %s", got)
	}
}

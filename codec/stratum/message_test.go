package stratum

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hashpool/hashpool/internal/alloctest"
)

// The lines btcagent sends on connect (spec §5.1) and typical miner requests.
var requestLines = []string{
	`{"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres"]]}`,
	`{"id":"conf","method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":0}]}`,
	`{"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-mu"]}`,
	`{"id":"auth","method":"mining.authorize","params":["kevin",""]}`,
	`{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5.1"]}`,
	`{"id":2,"method":"mining.authorize","params":["kevin.s1099","x"]}`,
	`{"id": 4, "method": "mining.submit", "params": ["kevin.s1099", "7", "0000000000000001", "5f5e1000", "deadbeef"]}`,
	`{"params":["kevin.s1099","17","00000000ffffffff","5f5e1000","deadbeef","1fffe000"],"id":5,"method":"mining.submit"}`,
	`{"id":3,"method":"mining.suggest_target","params":["0000000000ffff00000000000000000000000000000000000000000000000000"]}`,
	`{"id":3,"method":"mining.suggest_difficulty","params":[0.5]}`,
	`{"id":6,"method":"mining.extranonce.subscribe","params":[]}`,
}

func TestParseRequestMethods(t *testing.T) {
	var m Message
	for _, line := range requestLines {
		if err := ParseRequest([]byte(line), &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		// Reference: encoding/json.
		var ref struct {
			ID     json.RawMessage   `json:"id"`
			Method string            `json:"method"`
			Params []json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal([]byte(line), &ref); err != nil {
			t.Fatal(err)
		}
		if string(m.Method.Raw) != ref.Method {
			t.Errorf("%s: method %q, want %q", line, m.Method.Raw, ref.Method)
		}
		if m.NParams != len(ref.Params) {
			t.Fatalf("%s: %d params, want %d", line, m.NParams, len(ref.Params))
		}
		for i, p := range ref.Params {
			got := m.Param(i)
			want := string(p)
			if got.Kind == KindString {
				want = want[1 : len(want)-1]
			}
			if string(got.Raw) != want {
				t.Errorf("%s: param %d = %q, want %q", line, i, got.Raw, want)
			}
		}
		if got := string(m.ID.AppendJSON(nil)); got != string(ref.ID) {
			t.Errorf("%s: id %s, want %s", line, got, ref.ID)
		}
	}
}

func TestParseConfigureParams(t *testing.T) {
	var m Message
	if err := ParseRequest([]byte(requestLines[1]), &m); err != nil {
		t.Fatal(err)
	}
	exts := m.Param(0)
	if exts.Kind != KindArray || exts.Len() != 1 || string(exts.Index(0).Raw) != "version-rolling" {
		t.Fatalf("extensions = %+v", exts)
	}
	opts := m.Param(1)
	if opts.Len() != 2 {
		t.Fatalf("opts has %d members", opts.Len())
	}
	if s, ok := opts.Get("version-rolling.mask").Str(); !ok || string(s) != "ffffffff" {
		t.Fatalf("mask = %q %v", s, ok)
	}
	if n, ok := opts.Get("version-rolling.min-bit-count").Int64(); !ok || n != 0 {
		t.Fatalf("min-bit-count = %d %v", n, ok)
	}
	if opts.Get("minimum-difficulty.value").Exists() {
		t.Fatal("absent key exists")
	}
	it := opts.Members()
	k, v, ok := it.NextMember()
	if !ok || string(k) != "version-rolling.mask" || v.Kind != KindString {
		t.Fatalf("first member %q %+v %v", k, v, ok)
	}

	// agent.get_capabilities [[caps]]
	if err := ParseRequest([]byte(requestLines[0]), &m); err != nil {
		t.Fatal(err)
	}
	var caps []string
	for it := m.Param(0).Elems(); ; {
		v, ok := it.Next()
		if !ok {
			break
		}
		caps = append(caps, string(v.Raw))
	}
	if strings.Join(caps, ",") != "verrol,subres" {
		t.Fatalf("caps %v", caps)
	}

	// suggest_difficulty [number]
	if err := ParseRequest([]byte(requestLines[9]), &m); err != nil {
		t.Fatal(err)
	}
	if f, ok := m.Param(0).Float64(); !ok || f != 0.5 {
		t.Fatalf("suggest_difficulty %v %v", f, ok)
	}
}

func TestIDEcho(t *testing.T) {
	tests := []struct{ line, want string }{
		{`{"id":1,"method":"m","params":[]}`, `1`},
		{`{"id":-7,"method":"m","params":[]}`, `-7`},
		{`{"id":-0,"method":"m","params":[]}`, `0`},
		{`{"id":99999999999999999999,"method":"m","params":[]}`, `9223372036854775807`},
		{`{"id":-99999999999999999999,"method":"m","params":[]}`, `-9223372036854775808`},
		{`{"id":1.5,"method":"m","params":[]}`, `null`},
		{`{"id":1e3,"method":"m","params":[]}`, `null`},
		{`{"id":"abc","method":"m","params":[]}`, `"abc"`},
		{`{"id":"a\"b\u0041","method":"m","params":[]}`, `"a\"b\u0041"`},
		{`{"id":"","method":"m","params":[]}`, `""`},
		{`{"id":null,"method":"m","params":[]}`, `null`},
		{`{"id":true,"method":"m","params":[]}`, `null`},
		{`{"id":[1],"method":"m","params":[]}`, `null`},
		{`{"id":{"a":1},"method":"m","params":[]}`, `null`},
		{`{"method":"m","params":[]}`, `null`},
		{`{"id":3,"id":4,"method":"m","params":[]}`, `3`},
	}
	var m Message
	for _, tc := range tests {
		if err := ParseRequest([]byte(tc.line), &m); err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if got := string(m.ID.AppendJSON(nil)); got != tc.want {
			t.Errorf("%s: id echoes as %s, want %s", tc.line, got, tc.want)
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		line   string
		err    error
		wantID string
	}{
		{``, ErrNotJSON, "null"},
		{`   `, ErrNotJSON, "null"},
		{`{"id":1,"method":"m","params":[]`, ErrNotJSON, "null"},
		{`{"id":1,"method":"m","params":[]} x`, ErrNotJSON, "null"},
		{`{"id":1,"method":"m","params":[],}`, ErrNotJSON, "null"},
		{`{"id":1,"method":"m\q","params":[]}`, ErrNotJSON, "null"},
		{`{"id":01,"method":"m","params":[]}`, ErrNotJSON, "null"},
		{"{\"id\":1,\"method\":\"m\x01\",\"params\":[]}", ErrNotJSON, "null"},
		{`GET / HTTP/1.1`, ErrNotJSON, "null"},
		{`PROXY TCP4 1.2.3.4 5.6.7.8 1 2`, ErrNotJSON, "null"},
		{strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ErrNotJSON, "null"},
		{`{"id":1,"method":"","params":[]}`, ErrIllegalParams, "1"},
		{`{"id":"x","method":5,"params":[]}`, ErrIllegalParams, `"x"`},
		{`{"id":2,"params":[]}`, ErrIllegalParams, "2"},
		{`{"id":2,"method":"mining.subscribe"}`, ErrIllegalParams, "2"},
		{`{"id":2,"method":"mining.subscribe","params":{}}`, ErrIllegalParams, "2"},
		{`{"id":2,"method":"mining.subscribe","params":"x"}`, ErrIllegalParams, "2"},
		{`[1,2,3]`, ErrIllegalParams, "null"},
		{`42`, ErrIllegalParams, "null"},
		{`"mining.submit"`, ErrIllegalParams, "null"},
	}
	var m Message
	for _, tc := range tests {
		err := ParseRequest([]byte(tc.line), &m)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: err %v, want %v", tc.line, err, tc.err)
		}
		if got := string(m.ID.AppendJSON(nil)); got != tc.wantID {
			t.Errorf("%q: id %s, want %s", tc.line, got, tc.wantID)
		}
	}
}

func TestParseResponse(t *testing.T) {
	var m Message
	line := `{"id":"sub","result":[[["mining.set_difficulty","01000002"],["mining.notify","01000002"]],"01000002",8],"error":null}`
	if err := Parse([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	if m.Method.Exists() || m.Result.Kind != KindArray || !m.Error.IsNull() {
		t.Fatalf("%+v", m)
	}
	if s, _ := m.Result.Index(1).Str(); string(s) != "01000002" {
		t.Fatalf("extranonce1 %q", s)
	}
	if n, _ := m.Result.Index(2).Int64(); n != 8 {
		t.Fatalf("en2 size %d", n)
	}
	if ParseRequest([]byte(line), &m) != ErrIllegalParams {
		t.Fatal("a response is not a request")
	}
}

func TestSubmit(t *testing.T) {
	tests := []struct {
		line string
		err  error
		want Submit
	}{
		{`{"id":4,"method":"mining.submit","params":["w.1","7","0000000000000001","5f5e1000","deadbeef"]}`, nil,
			Submit{[]byte("w.1"), []byte("7"), []byte("0000000000000001"), []byte("5f5e1000"), []byte("deadbeef"), nil}},
		{`{"id":4,"method":"mining.submit","params":["w.1","7","0000000000000001","5f5e1000","deadbeef","1fffe000"]}`, nil,
			Submit{[]byte("w.1"), []byte("7"), []byte("0000000000000001"), []byte("5f5e1000"), []byte("deadbeef"), []byte("1fffe000")}},
		{`{"id":4,"method":"mining.submit","params":["w.1",7,"01","5f5e1000","deadbeef"]}`, nil,
			Submit{[]byte("w.1"), []byte("7"), []byte("01"), []byte("5f5e1000"), []byte("deadbeef"), nil}},
		{`{"id":4,"method":"mining.submit","params":["w.1","7","01","5f5e1000"]}`, ErrIllegalParams, Submit{}},
		{`{"id":4,"method":"mining.submit","params":["w.1","7",["01"],"5f5e1000","deadbeef"]}`, ErrIllegalParams, Submit{}},
		{`{"id":4,"method":"mining.submit","params":["w.1","7","01","5f5e1000","deadbeef",null]}`, ErrIllegalParams, Submit{}},
	}
	var m Message
	var s Submit
	for _, tc := range tests {
		if err := ParseRequest([]byte(tc.line), &m); err != nil {
			t.Fatal(err)
		}
		err := m.Submit(&s)
		if err != tc.err {
			t.Errorf("%s: err %v want %v", tc.line, err, tc.err)
			continue
		}
		if string(s.Worker) != string(tc.want.Worker) || string(s.JobID) != string(tc.want.JobID) ||
			string(s.ExtraNonce2) != string(tc.want.ExtraNonce2) || string(s.Time) != string(tc.want.Time) ||
			string(s.Nonce) != string(tc.want.Nonce) || string(s.VersionMask) != string(tc.want.VersionMask) ||
			(s.VersionMask == nil) != (tc.want.VersionMask == nil) {
			t.Errorf("%s: got %q", tc.line, s)
		}
	}
}

func TestParseSubmitNumbers(t *testing.T) {
	hex := []struct {
		in   string
		want uint64
	}{
		{"5f5e1000", 0x5f5e1000},
		{"DEADBEEF", 0xdeadbeef},
		{"0x1f", 0x1f},
		{"  ff", 0xff},
		{"12zz", 0x12},
		{"", 0},
		{"zz", 0},
		{"0x", 0},
		{"ffffffffffffffff", 1<<64 - 1},
		{"1ffffffffffffffff", 1<<64 - 1},
		{"-1", 1<<64 - 1},
	}
	for _, tc := range hex {
		if got := ParseSubmitHex([]byte(tc.in)); got != tc.want {
			t.Errorf("ParseSubmitHex(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
	dec := []struct {
		in   string
		want uint64
	}{{"7", 7}, {"255", 255}, {"300x", 300}, {"", 0}, {"x", 0}, {"99999999999999999999", 1<<64 - 1}}
	for _, tc := range dec {
		if got := ParseSubmitDecimal([]byte(tc.in)); got != tc.want {
			t.Errorf("ParseSubmitDecimal(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestManyParams(t *testing.T) {
	line := `{"id":1,"method":"m","params":[0,1,2,3,4,5,6,7,8,9,10]}`
	var m Message
	if err := ParseRequest([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	if m.NParams != 11 {
		t.Fatalf("NParams %d", m.NParams)
	}
	for i := range 11 {
		if n, ok := m.Param(i).Int64(); !ok || n != int64(i) {
			t.Fatalf("param %d = %d %v", i, n, ok)
		}
	}
	if m.Param(11).Exists() || m.Param(-1).Exists() {
		t.Fatal("out of range param exists")
	}
}

func TestParseAllocs(t *testing.T) {
	var m Message
	var s Submit
	for _, line := range requestLines {
		b := []byte(line)
		alloctest.Zero(t, line, 100, func() {
			if err := ParseRequest(b, &m); err != nil {
				t.Fatal(err)
			}
			if m.IsMethod(MethodSubmit) {
				if err := m.Submit(&s); err != nil {
					t.Fatal(err)
				}
			}
			_ = m.Param(1).Get("version-rolling.mask")
		})
	}
}

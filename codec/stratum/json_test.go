package stratum

import (
	"encoding/json"
	"math"
	"testing"
)

// TestScannerValidity compares the scanner with encoding/json.Valid on
// inputs chosen around each grammar rule.
func TestScannerValidity(t *testing.T) {
	inputs := []string{
		`0`, `-0`, `-`, `01`, `1.`, `.1`, `1.0`, `1e`, `1e+`, `1e-5`, `1E5`, `-1.5e+10`, `+1`, `0x1`, `1e5.0`,
		`""`, `"a`, `"\"`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00g9"`, `"\u12"`, `"\x"`, "\"\t\"", "\"\x7f\"", "\"\xff\"",
		`true`, `tru`, `truee`, `false`, `null`, `nul`, `True`,
		`[]`, `[ ]`, `[1,]`, `[,1]`, `[1 2]`, `[[[]]]`, `[`, `]`,
		`{}`, `{ }`, `{"a":1}`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `{"a":[{"b":null}]}`, `{1:2}`,
		` {"id":1} `, "\r\n{}\r", `{} {}`, `[] x`, ``, ` `,
	}
	for _, in := range inputs {
		var m Message
		got := Parse([]byte(in), &m) == nil
		if want := json.Valid([]byte(in)); got != want {
			t.Errorf("%q: scanner valid=%v, encoding/json valid=%v", in, got, want)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	var m Message
	line := `{"id":1,"method":"m","params":[18446744073709551615,-9223372036854775808,1.5e3,true,false,null,"a\u00e9\ud83d\ude00\ud800x\n",[1,[2]],{"k":"v","k":"w"},-1,18446744073709551616]}`
	if err := ParseRequest([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	if u, ok := m.Param(0).Uint64(); !ok || u != math.MaxUint64 {
		t.Errorf("Uint64 max: %d %v", u, ok)
	}
	if _, ok := m.Param(0).Int64(); ok {
		t.Error("Int64 accepted 2^64-1")
	}
	if n, ok := m.Param(1).Int64(); !ok || n != math.MinInt64 {
		t.Errorf("Int64 min: %d %v", n, ok)
	}
	if _, ok := m.Param(2).Int64(); ok {
		t.Error("Int64 accepted 1.5e3")
	}
	if f, ok := m.Param(2).Float64(); !ok || f != 1500 {
		t.Errorf("Float64: %v %v", f, ok)
	}
	if b, ok := m.Param(3).Bool(); !ok || !b {
		t.Error("true")
	}
	if b, ok := m.Param(4).Bool(); !ok || b {
		t.Error("false")
	}
	if !m.Param(5).IsNull() || m.Param(5).Kind.String() != "null" {
		t.Error("null")
	}
	var want string
	if err := json.Unmarshal([]byte(`"a\u00e9\ud83d\ude00\ud800x\n"`), &want); err != nil {
		t.Fatal(err)
	}
	if got := string(m.Param(6).AppendUnescaped(nil)); got != want {
		t.Errorf("unescaped %q, want %q", got, want)
	}
	if s, ok := m.Param(6).Str(); !ok || string(s) != `a\u00e9\ud83d\ude00\ud800x\n` {
		t.Errorf("raw string %q", s)
	}
	arr := m.Param(7)
	if arr.Len() != 2 || arr.Index(1).Len() != 1 || arr.Index(2).Exists() || arr.Index(-1).Exists() {
		t.Errorf("array accessors on %s", arr.Raw)
	}
	obj := m.Param(8)
	if s, _ := obj.Get("k").Str(); string(s) != "v" || obj.Len() != 2 {
		t.Errorf("object: first key wins, got %q", s)
	}
	if u, ok := m.Param(9).Uint64(); ok {
		t.Errorf("Uint64 accepted -1: %d", u)
	}
	if _, ok := m.Param(10).Uint64(); ok {
		t.Error("Uint64 accepted 2^64")
	}
	// Accessors on the wrong kind are harmless.
	var zero Value
	if zero.Exists() || zero.Len() != 0 || zero.Get("x").Exists() || zero.Index(0).Exists() || zero.AppendUnescaped(nil) != nil {
		t.Error("zero Value accessors")
	}
	oi, ai := obj.Elems(), arr.Members()
	if _, ok := oi.Next(); ok {
		t.Error("Elems on object")
	}
	if _, _, ok := ai.NextMember(); ok {
		t.Error("Members on array")
	}
	// A hand-made Value with broken text stops iterating instead of panicking.
	bad := Value{Kind: KindArray, Raw: []byte(`[1,,2]`)}
	if bad.Len() != 1 {
		t.Errorf("broken array Len %d", bad.Len())
	}
	if Kind(99).String() != "kind(99)" {
		t.Error(Kind(99).String())
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		s    Status
		msg  string
		wire Status
		ok   bool
	}{
		{StatusAccept, "Share accepted", StatusAccept, true},
		{StatusSolved, "Share accepted and solved", StatusSolved, true},
		{StatusJobNotFound, "Job not found", 21, false},
		{StatusStaleShare, "Stale share", 21, false},
		{StatusDuplicateShare, "Duplicate share", 22, false},
		{StatusLowDifficulty, "Low difficulty", 23, false},
		{StatusIllegalVersionMask, "Invalid version mask", 33, false},
		{StatusSolvedPreliminary, "Unknown", StatusSolvedPreliminary, false}, // not produced for Bitcoin
		{Status(12345), "Unknown", 12345, false},
	}
	for _, tc := range tests {
		if tc.s.String() != tc.msg || tc.s.WireCode() != tc.wire || tc.s.IsAccepted() != tc.ok {
			t.Errorf("%#v: %q %d %v", tc.s, tc.s.String(), tc.s.WireCode(), tc.s.IsAccepted())
		}
	}
}

func TestIDAccessors(t *testing.T) {
	if n, ok := NumberID(5).Number(); !ok || n != 5 {
		t.Error("NumberID")
	}
	raw := []byte("abc")
	id := StringID(raw).Clone()
	raw[0] = 'x'
	if s, ok := id.String(); !ok || string(s) != "abc" {
		t.Errorf("Clone aliases: %q", s)
	}
	if !NullID().IsNull() || NumberID(0).IsNull() {
		t.Error("IsNull")
	}
}

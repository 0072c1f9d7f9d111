package stratum

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/valyala/fastjson"
)

const fuzzMaxLine = 512

// FuzzParseLine feeds arbitrary bytes to a connection as two reads split at
// an arbitrary point (nats-server's parser fuzz style), frames lines with a
// LineFramer and parses each one. Oracles: bytes.Split for framing,
// encoding/json.Valid for validity, fastjson for the extracted members, and
// encoding/json for string unescaping and for the validity of every echo.
func FuzzParseLine(f *testing.F) {
	for _, l := range requestLines {
		f.Add([]byte(l+"\n"), uint16(len(l)/2))
	}
	f.Add([]byte(`{"id":"a\"b","method":"m\u0041","params":[1.5e3,-0,true,false,null,{"k":[{}]},"\ud83d\ude00"]}`+"\r\n"), uint16(7))
	f.Add([]byte("{\"id\":1}\n{\"id\":2,\"method\":\"x\",\"params\":[]}\n"), uint16(9))
	f.Add([]byte(`{"id":1,"method":"m","params":[]`), uint16(3))
	f.Add(bytes.Repeat([]byte("["), 40), uint16(20))
	f.Add(bytes.Repeat([]byte("x"), fuzzMaxLine+3), uint16(100))
	f.Add([]byte("\n\n \n"), uint16(1))

	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		// Reference framing.
		var wantLines [][]byte
		wantTooLong := false
		rest := data
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				wantTooLong = len(rest) > fuzzMaxLine
				break
			}
			if i > fuzzMaxLine {
				wantTooLong = true
				break
			}
			wantLines = append(wantLines, rest[:i])
			rest = rest[i+1:]
		}

		fr := LineFramer{Max: fuzzMaxLine}
		var buf []byte
		var gotLines [][]byte
		tooLong := false
	reads:
		for _, chunk := range [][]byte{data[:cut], data[cut:]} {
			buf = append(buf, chunk...)
			for range len(data) + 1 {
				line, n, err := fr.Next(buf)
				if err == ErrLineTooLong {
					tooLong = true
					break reads
				}
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if n != len(line)+1 || buf[len(line)] != '\n' {
					t.Fatalf("n=%d for line of %d", n, len(line))
				}
				gotLines = append(gotLines, line)
				buf = buf[n:]
			}
		}
		if tooLong != wantTooLong {
			t.Fatalf("too long = %v, want %v", tooLong, wantTooLong)
		}
		if len(gotLines) != len(wantLines) {
			t.Fatalf("%d lines, want %d", len(gotLines), len(wantLines))
		}
		for i := range gotLines {
			if !bytes.Equal(gotLines[i], wantLines[i]) {
				t.Fatalf("line %d = %q, want %q", i, gotLines[i], wantLines[i])
			}
			checkLine(t, gotLines[i])
		}
		// The whole input as one line too (most fuzz inputs have no newline).
		checkLine(t, data)
	})
}

func checkLine(t *testing.T, line []byte) {
	var m Message
	err := Parse(line, &m)
	valid := json.Valid(line)
	if err == nil && !valid {
		t.Fatalf("accepted invalid JSON %q", line)
	}
	if err != nil {
		if err != ErrNotJSON {
			t.Fatalf("Parse error %v", err)
		}
		if valid && bytes.Count(line, []byte("["))+bytes.Count(line, []byte("{")) <= MaxDepth {
			t.Fatalf("rejected valid JSON %q", line)
		}
		if !m.ID.IsNull() || m.Method.Exists() || m.NParams != 0 {
			t.Fatalf("failed parse left fields set: %+v", m)
		}
		return
	}
	// Echoed ids are always valid JSON.
	if out := AppendResultTrue(nil, m.ID); !json.Valid(out) {
		t.Fatalf("echo %q of id %q is not JSON", out, m.RawID.Raw)
	}
	rerr := ParseRequest(line, &m)
	if (rerr == nil) != (m.Method.Kind == KindString && len(m.Method.Raw) > 0 && m.Params.Kind == KindArray) {
		t.Fatalf("ParseRequest = %v for %+v", rerr, m)
	}

	var p fastjson.Parser
	v, ferr := p.ParseBytes(line)
	if ferr == nil && v.Type() == fastjson.TypeObject && !bytes.ContainsRune(line, '\\') {
		checkAgainstFastjson(t, &m, v)
	}
	for i := range min(m.NParams, 16) {
		walk(t, m.Param(i), 0)
	}
	var s Submit
	_ = m.Submit(&s)
}

func checkAgainstFastjson(t *testing.T, m *Message, v *fastjson.Value) {
	if mv := v.Get("method"); mv == nil {
		if m.Method.Exists() {
			t.Fatal("method found where fastjson has none")
		}
	} else if mv.Type() == fastjson.TypeString {
		if string(mv.GetStringBytes()) != string(m.Method.Raw) || m.Method.Kind != KindString {
			t.Fatalf("method %q, fastjson %q", m.Method.Raw, mv.GetStringBytes())
		}
	}
	if pv := v.Get("params"); pv != nil && pv.Type() == fastjson.TypeArray {
		arr, _ := pv.Array()
		if len(arr) != m.NParams {
			t.Fatalf("%d params, fastjson %d", m.NParams, len(arr))
		}
		for i, e := range arr {
			if e.Type() == fastjson.TypeString && string(e.GetStringBytes()) != string(m.Param(i).Raw) {
				t.Fatalf("param %d = %q, fastjson %q", i, m.Param(i).Raw, e.GetStringBytes())
			}
		}
	}
	if iv := v.Get("id"); iv != nil {
		switch iv.Type() {
		case fastjson.TypeString:
			if s, ok := m.ID.String(); !ok || string(s) != string(iv.GetStringBytes()) {
				t.Fatalf("id %q, fastjson %q", s, iv.GetStringBytes())
			}
		case fastjson.TypeNumber:
			if n, err := iv.Int64(); err == nil && isIntLiteral(m.RawID.Raw) {
				if got, ok := m.ID.Number(); !ok || got != n {
					t.Fatalf("id %d, fastjson %d", got, n)
				}
			}
		default:
			if !m.ID.IsNull() {
				t.Fatalf("id %q should echo as null", m.RawID.Raw)
			}
		}
	}
}

// walk exercises every accessor on v and its children.
func walk(t *testing.T, v Value, depth int) {
	if depth > MaxDepth+1 {
		t.Fatal("deeper than MaxDepth")
	}
	v.Int64()
	v.Uint64()
	v.Float64()
	v.Bool()
	switch v.Kind {
	case KindString:
		got := v.AppendUnescaped(nil)
		var want string
		quoted := append(append([]byte{'"'}, v.Raw...), '"')
		if err := json.Unmarshal(quoted, &want); err != nil {
			t.Fatalf("string %q: %v", v.Raw, err)
		}
		if bytes.Equal(got, []byte(want)) == false && !bytes.ContainsAny(got, "\xef\xbf\xbd") && bytesValidUTF8(v.Raw) {
			t.Fatalf("unescape %q = %q, encoding/json %q", v.Raw, got, want)
		}
	case KindArray:
		n := 0
		it := v.Elems()
		for {
			e, ok := it.Next()
			if !ok {
				break
			}
			if v.Index(n).Kind != e.Kind {
				t.Fatal("Index disagrees with Elems")
			}
			walk(t, e, depth+1)
			n++
		}
		if n != v.Len() {
			t.Fatalf("Len %d, iterated %d", v.Len(), n)
		}
	case KindObject:
		n := 0
		it := v.Members()
		for {
			k, e, ok := it.NextMember()
			if !ok {
				break
			}
			if !v.Get(string(k)).Exists() {
				t.Fatalf("Get(%q) missing", k)
			}
			walk(t, e, depth+1)
			n++
		}
		if n != v.Len() {
			t.Fatalf("Len %d, iterated %d", v.Len(), n)
		}
	}
}

func bytesValidUTF8(b []byte) bool {
	return bytes.Equal(bytes.ToValidUTF8(b, nil), b)
}

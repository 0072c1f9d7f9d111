package stratum

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fastjson"
)

// benchSubmitLine is a typical ASICBoost miner's share (6 params).
var benchSubmitLine = []byte(`{"params": ["kevin.s1099", "17", "00000000ffffffff", "5f5e1000", "deadbeef", "1fffe000"], "id": 1234, "method": "mining.submit"}`)

// BenchmarkParseSubmit parses one mining.submit line and extracts its
// params three ways: hashpool's scanner (the production path), stdlib
// encoding/json into a struct, and fastjson with a reused Parser.
func BenchmarkParseSubmit(b *testing.B) {
	b.Run("scanner", func(b *testing.B) {
		var m Message
		var s Submit
		b.ReportAllocs()
		b.SetBytes(int64(len(benchSubmitLine)))
		for b.Loop() {
			if err := ParseRequest(benchSubmitLine, &m); err != nil {
				b.Fatal(err)
			}
			if !m.IsMethod(MethodSubmit) {
				b.Fatal("method")
			}
			if err := m.Submit(&s); err != nil {
				b.Fatal(err)
			}
		}
		if string(s.VersionMask) != "1fffe000" {
			b.Fatal(string(s.VersionMask))
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params []string        `json:"params"`
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(benchSubmitLine)))
		for b.Loop() {
			req.Params = req.Params[:0]
			if err := json.Unmarshal(benchSubmitLine, &req); err != nil {
				b.Fatal(err)
			}
			if req.Method != MethodSubmit || len(req.Params) != 6 {
				b.Fatal("bad parse")
			}
		}
	})
	b.Run("fastjson", func(b *testing.B) {
		var p fastjson.Parser
		var params [6][]byte
		b.ReportAllocs()
		b.SetBytes(int64(len(benchSubmitLine)))
		for b.Loop() {
			v, err := p.ParseBytes(benchSubmitLine)
			if err != nil {
				b.Fatal(err)
			}
			if string(v.GetStringBytes("method")) != MethodSubmit {
				b.Fatal("method")
			}
			_ = v.Get("id")
			arr := v.GetArray("params")
			if len(arr) < 5 || len(arr) > 6 {
				b.Fatal("params")
			}
			for i, e := range arr {
				params[i] = e.GetStringBytes()
			}
		}
		if string(params[5]) != "1fffe000" {
			b.Fatal(string(params[5]))
		}
	})
}

// BenchmarkAppendNotify serializes one mining.notify with a 12-step merkle
// branch (a ~4000-transaction block) into a reused buffer.
func BenchmarkAppendNotify(b *testing.B) {
	n := testNotify(b)
	n.Branch = make([][32]byte, 12)
	for i := range n.Branch {
		n.Branch[i][0] = byte(i)
	}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendNotify(nil, n, true))))
	for b.Loop() {
		dst = AppendNotify(dst[:0], n, true)
	}
}

// BenchmarkAppendNotifyFrames builds both clean variants of a job's notify.
func BenchmarkAppendNotifyFrames(b *testing.B) {
	n := testNotify(b)
	n.Branch = make([][32]byte, 12)
	dst := make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = AppendNotifyFrames(dst[:0], n)
	}
}

// BenchmarkAppendSubmitReply is the per-share answer: true or an error line.
func BenchmarkAppendSubmitReply(b *testing.B) {
	dst := make([]byte, 0, 256)
	id := NumberID(1234)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendResultTrue(dst[:0], id)
		dst = AppendError(dst, id, StatusLowDifficulty)
	}
}

// BenchmarkLineFramer frames a stream of submit lines.
func BenchmarkLineFramer(b *testing.B) {
	var stream []byte
	for range 64 {
		stream = append(stream, benchSubmitLine...)
		stream = append(stream, '\n')
	}
	var f LineFramer
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		buf := stream
		for {
			_, n, err := f.Next(buf)
			if err != nil || n == 0 {
				break
			}
			buf = buf[n:]
		}
	}
}

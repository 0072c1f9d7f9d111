package agent

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, h := range []string{
		"7f020f00a9221144332211ddccbbaa",
		"7f031300a9221144332211ddccbbaad02abd57",
		"7f121300a9221144332211ddccbbaa00e0ff1f",
		"7f131700a9221144332211ddccbbaad02abd5700e0ff1f",
		"7f0114002211636d696e657200733130393900",
		"7f0106002211",
		"7f050b000d020022114433",
		"7f100a00020187962c6b",
		"7f020300",
		"7f04060022117f0406",
	} {
		f.Add(hexDecode(h), uint16(3))
	}
}

func hexDecode(s string) []byte {
	var out []byte
	hi := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v int
		switch {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'a' && c <= 'f':
			v = int(c-'a') + 10
		default:
			continue
		}
		if hi < 0 {
			hi = v
		} else {
			out = append(out, byte(hi<<4|v))
			hi = -1
		}
	}
	return out
}

// FuzzFrames splits an arbitrary stream into frames after two reads split
// at an arbitrary point, runs every decoder on every frame, and checks that
// whatever decodes re-encodes to the same bytes.
func FuzzFrames(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		var buf []byte
		for _, chunk := range [][]byte{data[:cut], data[cut:]} {
			buf = append(buf, chunk...)
			for range len(data) + 1 {
				n, err := Split(buf)
				if err != nil {
					if len(buf) == 0 || (err == ErrNotFrame) != (buf[0] != Magic) {
						t.Fatalf("Split error %v on % x", err, buf)
					}
					if err == ErrBadLength && binary.LittleEndian.Uint16(buf[2:4]) >= HeaderLen {
						t.Fatal("bad length misreported")
					}
					return
				}
				if n == 0 {
					if len(buf) >= HeaderLen && int(binary.LittleEndian.Uint16(buf[2:4])) <= len(buf) {
						t.Fatalf("need more reported with a whole frame buffered: % x", buf)
					}
					break
				}
				if n < HeaderLen || n > len(buf) || n != int(binary.LittleEndian.Uint16(buf[2:4])) {
					t.Fatalf("Split = %d for % x", n, buf[:min(len(buf), 8)])
				}
				checkFrame(t, buf[:n])
				buf = buf[n:]
			}
		}
		// Decoders must also survive arbitrary slices that did not come from Split.
		checkFrame(t, data)
	})
}

func checkFrame(t *testing.T, frame []byte) {
	var s Submit
	if err := DecodeSubmit(frame, &s); err == nil {
		if got := AppendSubmit(nil, &s); !bytes.Equal(got, frame) {
			t.Fatalf("submit re-encodes % x as % x", frame, got)
		}
	}
	var r RegisterWorker
	if err := DecodeRegisterWorker(frame, &r); err == nil {
		if len(frame) < RegisterWorkerMinLen || len(frame) > RegisterWorkerMaxLen {
			t.Fatalf("register of %d bytes accepted", len(frame))
		}
		if bytes.IndexByte(r.ClientAgent, 0) >= 0 || bytes.IndexByte(r.WorkerName, 0) >= 0 {
			t.Fatal("NUL inside decoded string")
		}
		got, err := AppendRegisterWorker(nil, r.SessionID, string(r.ClientAgent), string(r.WorkerName))
		if err != nil {
			t.Fatal(err)
		}
		var r2 RegisterWorker
		if err := DecodeRegisterWorker(got, &r2); err != nil || r2.SessionID != r.SessionID ||
			!bytes.Equal(r2.ClientAgent, r.ClientAgent) || !bytes.Equal(r2.WorkerName, r.WorkerName) {
			t.Fatalf("register round trip % x -> % x", frame, got)
		}
	}
	if id, err := DecodeUnregisterWorker(frame); err == nil {
		if got := AppendUnregisterWorker(nil, id); !bytes.Equal(got, frame) {
			t.Fatalf("unregister re-encodes % x as % x", frame, got)
		}
	}
	if idx, st, err := DecodeSubmitResponse(frame); err == nil {
		if got := AppendSubmitResponse(nil, idx, st); !bytes.Equal(got, frame) {
			t.Fatalf("response re-encodes % x as % x", frame, got)
		}
	}
	var d SetDiff
	if err := DecodeSetDiff(frame, &d); err == nil {
		ids := make([]uint16, d.Count())
		for i := range ids {
			ids[i] = d.SessionID(i)
		}
		if got := AppendSetDiff(nil, d.DiffExp, ids); len(ids) > 0 && !bytes.Equal(got, frame) {
			t.Fatalf("set diff re-encodes % x as % x", frame, got)
		}
	}
}

package agent

import (
	"testing"

	"github.com/hashpool/hashpool/codec/stratum"
)

// TestMixedStream reads one agent connection's input the way the engine
// does: JSON lines and ex-message frames interleaved, delivered in two reads
// split at every possible offset.
func TestMixedStream(t *testing.T) {
	var stream []byte
	stream = append(stream, `{"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-mu"]}`+"\n"...)
	stream, _ = AppendRegisterWorker(stream, 1, "cgminer", "s1099")
	stream = AppendSubmit(stream, &Submit{JobID: 3, SessionID: 1, ExtraNonce2: 9, Nonce: 10, Time: 11, HasTime: true})
	stream = append(stream, `{"id":5,"method":"mining.submit","params":["a","3","01","02","03"]}`+"\n"...)
	stream = AppendUnregisterWorker(stream, 1)
	want := []string{"json:mining.subscribe", "REGISTER_WORKER", "SUBMIT_SHARE_WITH_TIME", "json:mining.submit", "UNREGISTER_WORKER"}

	for cut := 0; cut <= len(stream); cut++ {
		var (
			f   stratum.LineFramer
			m   stratum.Message
			got []string
			buf []byte
		)
		for _, chunk := range [][]byte{stream[:cut], stream[cut:]} {
			buf = append(buf, chunk...)
			for len(buf) > 0 {
				if buf[0] == Magic {
					n, err := Split(buf)
					if err != nil {
						t.Fatalf("cut %d: %v", cut, err)
					}
					if n == 0 {
						break
					}
					got = append(got, FrameCmd(buf[:n]).String())
					buf = buf[n:]
					continue
				}
				line, n, err := f.Next(buf)
				if err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if n == 0 {
					break
				}
				if err := stratum.ParseRequest(line, &m); err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				got = append(got, "json:"+string(m.Method.Raw))
				buf = buf[n:]
			}
		}
		if len(got) != len(want) || len(buf) != 0 {
			t.Fatalf("cut %d: got %v, %d bytes left", cut, got, len(buf))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("cut %d: got %v", cut, got)
			}
		}
	}
}

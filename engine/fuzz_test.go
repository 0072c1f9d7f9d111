package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/agent"
)

// FuzzSession feeds arbitrary bytes, split across two reads, to a session
// state machine (fresh or already an authorized agent) and checks that it
// never panics, never consumes more than it was given, and keeps unconsumed
// bytes for the next read exactly as a gnet connection would.
func FuzzSession(f *testing.F) {
	reg, _ := agent.AppendRegisterWorker(nil, 1, "cgminer", "w1")
	sub := agent.AppendSubmit(nil, &agent.Submit{JobID: 0, SessionID: 1, ExtraNonce2: 5, Nonce: 7, Time: 1, HasTime: true})
	seeds := []string{
		`{"id":1,"method":"mining.subscribe","params":["btccom-agent/2.0"]}` + "\n" + `{"id":2,"method":"mining.authorize","params":["a.b","d=1"]}` + "\n",
		`{"id":3,"method":"mining.submit","params":["a","0","00","00","00","ffffffff"]}` + "\n",
		`{"id":4,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"zz"}]}` + "\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		`{"id":1,"method":"mining.subscribe","params":["NiceHash/1.0"]}` + "\n" + `{"id":2,"method":"mining.authorize","params":["n.h","md=0.001"]}` + "\n" +
			`{"id":3,"method":"mining.submit","params":["n.h","409600000000","00","00","00"]}` + "\n",
		string(reg) + string(sub),
		"\x7f\x02\x02\x00garbage",
		`{"id":[1,{"a":"\u0000"}],"method":"mining.suggest_target","params":["ffff"]}` + "\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i*7), i%2 == 0)
	}
	opts := testOptions(f)
	opts.ProxyProtocol = true
	opts.MaxLine = 512
	o := newOffline(f, opts)
	now := time.Now().Unix()
	f.Fuzz(func(t *testing.T, data []byte, cut uint8, asAgent bool) {
		s := o.session(0x01000009)
		if asAgent {
			o.run(s, `{"id":1,"method":"mining.subscribe","params":["btccom-agent/2.0"]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["fuzz"]}`+"\n")
			o.run(s, string(reg))
		}
		o.lp.out = o.lp.out[:0]
		c := int(cut) % (len(data) + 1)
		n, closeNow := s.feed(data[:c], now)
		if n > c {
			t.Fatalf("consumed %d of %d", n, c)
		}
		if closeNow {
			return
		}
		pending := append(append([]byte(nil), data[n:c]...), data[c:]...)
		n2, _ := s.feed(pending, now)
		if n2 > len(pending) {
			t.Fatalf("consumed %d of %d", n2, len(pending))
		}
		o.lp.batch.buf, o.lp.batch.ends = o.lp.batch.buf[:0], o.lp.batch.ends[:0]
	})
}

// FuzzParseJournal reads arbitrary journal bytes: no panic, every entry
// lies inside the input, and the unacknowledged entries written back as a
// journal read back the same.
func FuzzParseJournal(f *testing.F) {
	var ack [8]byte
	f.Add(appendJournalRecord(appendJournalRecord(nil, 3, []byte("abc")), ackFlag|8, ack[:]))
	f.Add(appendJournalRecord(nil, 5, []byte("hello"))[:10])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries := parseJournal(b)
		var again []byte
		var pending []JournalEntry
		for _, e := range entries {
			if e.Offset < 0 || e.Offset+8+int64(len(e.Msg)) > int64(len(b)) {
				t.Fatalf("entry at %d (%d bytes) outside %d input bytes", e.Offset, len(e.Msg), len(b))
			}
			if !e.Acked {
				pending = append(pending, JournalEntry{Offset: int64(len(again)), Msg: e.Msg})
				again = appendJournalRecord(again, uint32(len(e.Msg)), e.Msg)
			}
		}
		back := parseJournal(again)
		if len(back) != len(pending) {
			t.Fatalf("%d entries read back, want %d", len(back), len(pending))
		}
		for i := range back {
			if back[i].Offset != pending[i].Offset || string(back[i].Msg) != string(pending[i].Msg) || back[i].Acked {
				t.Fatalf("entry %d read back as %+v, want %+v", i, back[i], pending[i])
			}
		}
	})
}

// FuzzProxyHeader feeds arbitrary bytes, split across two reads, to a
// session from the PROXY listener: it never panics, and either it is
// closed, waits for more (holding the bytes), or took a header whose
// source became the session's IP.
func FuzzProxyHeader(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.9 127.0.0.1 51234 443\r\n" + `{"id":1,"method":"mining.subscribe","params":[]}` + "\n",
		"PROXY TCP6 2001:db8::1 ::1 1 2\n",
		"PROXY UNKNOWN\r\n",
		"PROX",
		"PROXY " + string(make([]byte, 120)),
		"\x7f\x01\x08\x00\x00\x00\x00\x00",
	} {
		f.Add([]byte(s), uint8(len(s)/2))
	}
	o := newOffline(f, testOptions(f))
	now := time.Now().Unix()
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		s := o.session(0x0100000a)
		s.proxyRequired = true
		at := min(int(cut), len(data))
		o.lp.out = o.lp.out[:0]
		n1, closed := s.feed(data[:at], now)
		if n1 > at {
			t.Fatalf("consumed %d of %d", n1, at)
		}
		if closed {
			return
		}
		rest := append(append([]byte(nil), data[n1:at]...), data[at:]...)
		n2, closed := s.feed(rest, now)
		if n2 > len(rest) {
			t.Fatalf("consumed %d of %d", n2, len(rest))
		}
		if !closed && s.proxyDone && s.ip == netipLoopback && !bytes.Contains(data, []byte("127.0.0.1 ")) {
			t.Fatalf("header %q taken without setting the source address", data)
		}
	})
}

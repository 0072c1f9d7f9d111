package agent

import (
	"context"
	"net"
	"testing"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/stratum"
)

// offlineAgent is an Agent with one slot and an upstream whose socket is one
// end of a net.Pipe: miners' lines and pool input can be fed directly,
// without event loops or dialing.
func offlineAgent(tb testing.TB, subres bool) (*Agent, *slot, *upConn) {
	tb.Helper()
	cfg := Defaults()
	cfg.Pools = []Pool{{Host: "127.0.0.1", Port: 1, User: "kevin"}}
	a, err := New(cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	a.ctx = context.Background()
	s := newSlot(a, 0)
	a.slots = []*slot{s}
	c1, c2 := net.Pipe()
	tb.Cleanup(func() { c1.Close(); c2.Close() })
	u := newUpConn(s, cfg.Pools[0], cfg.Pools[0].User, dialed{c: c1, raw: c1})
	u.subres = subres
	u.en1 = []byte("01000000")
	s.up = u
	return a, s, u
}

func newOfflineMiner(a *Agent) *Miner {
	m := &Miner{a: a, diffExp: noDiff}
	m.framer.Max = stratum.DefaultMaxLine
	return m
}

// FuzzMinerLines feeds arbitrary miner input, split in two reads, to a
// miner session: it must never panic, and only whole lines are consumed.
func FuzzMinerLines(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"mining.subscribe","params":["cgminer"]}` + "\n" + `{"id":2,"method":"mining.authorize","params":["a.b","x"]}` + "\n" +
			`{"id":3,"method":"mining.submit","params":["a.b","1","00000001","5f5e1000","00000002","00002000"]}` + "\n",
		`{"id":4,"method":"mining.configure","params":[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"ffffffff"}]}` + "\n",
		`{"id":5,"method":"mining.submit","params":["a","f1","","",""]}` + "\n{\"id\":6}\n[]\n\x7f\x02\x0f\x00",
		`{"id":"x","method":"mining.suggest_difficulty","params":[1e300]}` + "\n",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	a, s, u := offlineAgent(f, true)
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		m := newOfflineMiner(a)
		sc := &scratch{}
		k := int(cut) % (len(in) + 1)
		n1, closed := m.feed(in[:k], sc)
		if n1 > k {
			t.Fatalf("consumed %d of %d", n1, k)
		}
		if !closed {
			n2, _ := m.feed(in[n1:], sc)
			if n1+n2 > len(in) {
				t.Fatalf("consumed %d of %d", n1+n2, len(in))
			}
		}
		if m.slot != nil {
			s.leave(m)
		}
		s.mu.Lock()
		u.wbuf = u.wbuf[:0]
		for {
			if _, ok := u.popPending(); !ok {
				break
			}
		}
		s.mu.Unlock()
	})
}

// FuzzPoolInput feeds arbitrary pool input (lines and frames, split at any
// point) to an upstream connection: never a panic, bounded buffering.
func FuzzPoolInput(f *testing.F) {
	var frames []byte
	frames = agent.AppendSetDiff(frames, 12, []uint16{0, 1, 2})
	frames = agent.AppendSubmitResponse(frames, 0, 23)
	for _, s := range []string{
		`{"id":"caps","result":{"capabilities":["verrol","subres","rejonly","zstd"]}}` + "\n" +
			`{"id":"sub","result":[[["mining.set_difficulty","01000000"],["mining.notify","01000000"]],"01000000",8],"error":null}` + "\n" +
			`{"id":"auth","result":true,"error":null}` + "\n" + `{"id":null,"method":"mining.set_difficulty","params":[0.5]}` + "\n",
		`{"id":null,"method":"mining.notify","params":["1","00","aa","bb",["00"],"20000000","1d00ffff","5f5e1000",true]}` + "\n",
		`{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}` + "\n" + string(frames),
		"\x7f\x05\x03\x00",
		`{"id":"sub","result":[[],"zz",4],"error":null}` + "\n",
		// A plain Stratum V1 pool (ckpool): no capability answer, a job
		// before the authorize answer, numeric submit answers.
		`{"id":"sub","result":[[["mining.notify","a9"]],"a92d136b",8],"error":null}` + "\n" +
			`{"id":null,"method":"mining.set_difficulty","params":[1]}` + "\n" +
			`{"id":null,"method":"mining.notify","params":["6a","00","01","02",[],"20000000","207fffff","5f000000",true]}` + "\n" +
			`{"id":"auth","result":true,"error":null}` + "\n" +
			`{"id":0,"result":false,"error":null,"reject-reason":"Above target"}` + "\n" +
			`{"id":1,"result":true,"error":null}` + "\n" + `{"id":2,"result":null,"error":[23,"Low difficulty",null]}` + "\n",
		`{"id":"sub","result":[[],"a92d136b0102",16],"error":null}` + "\n" + `{"id":"auth","result":true,"error":null}` + "\n" +
			`{"id":null,"method":"mining.set_extranonce","params":["00",8]}` + "\n",
	} {
		f.Add([]byte(s), uint16(len(s)/3))
	}
	a, _, _ := offlineAgent(f, true)
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		s := newSlot(a, 1)
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		u := newUpConn(s, a.cfg.Pools[0], a.cfg.Pools[0].User, dialed{c: c1, raw: c1})
		if cut%2 == 0 {
			u.en1 = []byte("01000000")
		}
		k := int(cut) % (len(in) + 1)
		buf := append([]byte(nil), in[:k]...)
		used, err := u.consume(buf)
		if used > len(buf) {
			t.Fatalf("consumed %d of %d", used, len(buf))
		}
		if err == nil {
			buf = append(buf[used:], in[k:]...)
			if used, _ := u.consume(buf); used > len(buf) {
				t.Fatalf("consumed %d of %d", used, len(buf))
			}
		}
	})
}

// TestSubmitPathZeroAllocs: a share from a miner, answered locally (no
// subres), allocates nothing on its way to the upstream batch.
func TestSubmitPathZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	a, s, u := offlineAgent(t, false)
	m := newOfflineMiner(a)
	sc := &scratch{out: make([]byte, 0, 4096)}
	m.feed([]byte(`{"id":1,"method":"mining.subscribe","params":["cgminer"]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["a.b","x"]}`+"\n"), sc)
	if m.state != minerAuthorized || !m.registered {
		t.Fatalf("miner not authorized and registered: state %d", m.state)
	}
	line := []byte(`{"id":3,"method":"mining.submit","params":["a.b","12","0000abcd","5f5e1000","deadbeef","00002000"]}` + "\n")
	u.wbuf = make([]byte, 0, 1<<20)
	allocs := testing.AllocsPerRun(1000, func() {
		sc.out = sc.out[:0]
		if n, _ := m.feed(line, sc); n != len(line) {
			t.Fatal("line not consumed")
		}
		s.mu.Lock()
		u.wbuf = u.wbuf[:0]
		s.mu.Unlock()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per share", allocs)
	}
	if got := string(sc.out); got != `{"id":3,"result":true,"error":null}`+"\n" {
		t.Fatalf("answer %q", got)
	}
}

// BenchmarkSubmitPath measures one share from a miner line to the upstream batch.
func BenchmarkSubmitPath(b *testing.B) {
	a, s, u := offlineAgent(b, false)
	m := newOfflineMiner(a)
	sc := &scratch{out: make([]byte, 0, 4096)}
	m.feed([]byte(`{"id":1,"method":"mining.subscribe","params":["cgminer"]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["a.b","x"]}`+"\n"), sc)
	line := []byte(`{"id":3,"method":"mining.submit","params":["a.b","12","0000abcd","5f5e1000","deadbeef","00002000"]}` + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		sc.out = sc.out[:0]
		m.feed(line, sc)
		s.mu.Lock()
		u.wbuf = u.wbuf[:0]
		s.mu.Unlock()
	}
}

// TestLostAsicboostReconnects: with disconnect_when_lost_asicboost, a miner
// that rolled versions in more than 100 shares and then stops is told
// client.reconnect and closed (BtcAgent's rule).
func TestLostAsicboostReconnects(t *testing.T) {
	for _, on := range []bool{true, false} {
		a, _, _ := offlineAgent(t, false)
		a.cfg.DisconnectWhenLostAsicboost = on
		m := newOfflineMiner(a)
		sc := &scratch{}
		m.feed([]byte(`{"id":1,"method":"mining.subscribe","params":[]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["a.b"]}`+"\n"), sc)
		rolled := []byte(`{"id":3,"method":"mining.submit","params":["a.b","1","00000001","5f5e1000","00000002","00002000"]}` + "\n")
		for i := 0; i <= asicboostShares; i++ {
			if _, closed := m.feed(rolled, sc); closed {
				t.Fatalf("closed after %d rolled shares", i+1)
			}
		}
		sc.out = sc.out[:0]
		_, closed := m.feed([]byte(`{"id":4,"method":"mining.submit","params":["a.b","1","00000001","5f5e1000","00000003"]}`+"\n"), sc)
		if closed != on || (on && string(sc.out) != `{"id":null,"method":"client.reconnect","params":[]}`+"\n") {
			t.Fatalf("option %v: closed %v, sent %q", on, closed, sc.out)
		}
	}
}

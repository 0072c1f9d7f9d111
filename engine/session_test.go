package engine

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
)

// offline is a Server that is never started: sessions are driven directly
// through feed, with no sockets (the state machine under test).
type offline struct {
	srv *Server
	lp  *loop
	job *JobParams
}

func newOffline(tb testing.TB, o Options) *offline {
	tb.Helper()
	b := mem.New(mem.Options{})
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	users, err := OpenEmbeddedUsers(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := New(o, Deps{Producer: prod, Users: users})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.out.close(); prod.Close(); b.Close() })
	job := testJobParams(100, false)
	if _, _, err := srv.repo.Add(job, time.Now().Unix()); err != nil {
		tb.Fatal(err)
	}
	return &offline{srv: srv, lp: newLoop(srv, 0), job: job}
}

func (o *offline) session(id uint32) *Session {
	return newSession(o.srv, o.lp, id, netipLoopback, time.Now().Unix())
}

// run feeds input and returns the replies.
func (o *offline) run(s *Session, in string) string {
	o.lp.out = o.lp.out[:0]
	n, _ := s.feed([]byte(in), time.Now().Unix())
	if n != len(in) {
		panic(fmt.Sprintf("consumed %d of %d", n, len(in)))
	}
	return string(o.lp.out)
}

func authorizedSession(tb testing.TB, o *offline) *Session {
	s := o.session(0x01000000)
	out := o.run(s, `{"id":1,"method":"mining.subscribe","params":[]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["alice.rig1"]}`+"\n")
	if !strings.Contains(out, `"mining.notify"`) {
		tb.Fatalf("no notify after authorize: %s", out)
	}
	return s
}

func TestSessionMethodsOffline(t *testing.T) {
	o := newOffline(t, testOptions(t))
	for _, tc := range []struct{ name, in, want string }{
		{"submit before authorize", `{"id":1,"method":"mining.submit","params":["a","0","00","00","00"]}`,
			`{"id":1,"result":null,"error":[24,"Unauthorized worker",null]}` + "\n" + `{"id":null,"method":"client.reconnect","params":[]}`},
		{"authorize before subscribe", `{"id":1,"method":"mining.authorize","params":["alice"]}`,
			`{"id":1,"result":null,"error":[25,"Not subscribed",null]}`},
		{"unknown method", `{"id":7,"method":"mining.ping","params":[]}`, `{"id":7,"result":null,"error":[26,"Illegal method",null]}`},
		{"params not an array", `{"id":7,"method":"mining.subscribe","params":{}}`, `{"id":7,"result":null,"error":[27,"Illegal params",null]}`},
		{"not JSON is dropped", `{"id":7,"method":`, ``},
		{"extranonce.subscribe", `{"id":3,"method":"mining.extranonce.subscribe","params":[]}`, `{"id":3,"result":true,"error":null}`},
		{"suggest_difficulty", `{"id":3,"method":"mining.suggest_difficulty","params":[1000]}`, `{"id":3,"result":true,"error":null}`},
		{"suggest_target", `{"id":3,"method":"mining.suggest_target","params":["00000000ffff0000000000000000000000000000000000000000000000000000"]}`, `{"id":3,"result":true,"error":null}`},
		{"suggest_target empty", `{"id":3,"method":"mining.suggest_target","params":[]}`, `{"id":3,"result":null,"error":[27,"Illegal params",null]}`},
		{"configure", `{"id":4,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","x"],{"version-rolling.mask":"ffffffff","minimum-difficulty.value":2048}]}`,
			`{"id":4,"result":{"minimum-difficulty":true,"version-rolling":true,"version-rolling.mask":"1fffe000","x":false},"error":null}` + "\n" +
				`{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}`},
		{"configure malformed", `{"id":4,"method":"mining.configure","params":["x"]}`, `{"id":4,"result":null,"error":[27,"Illegal params",null]}`},
		{"capabilities", `{"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres"]]}`, `{"id":"caps","result":{"capabilities":["verrol","subres"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := o.session(0x01000005)
			got := strings.TrimSuffix(o.run(s, tc.in+"\n"), "\n")
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestSessionSuggestAndPassword(t *testing.T) {
	o := newOffline(t, testOptions(t))
	s := o.session(0x01000001)
	out := o.run(s, `{"id":1,"method":"mining.suggest_difficulty","params":[1000]}
{"id":2,"method":"mining.subscribe","params":[]}
{"id":3,"method":"mining.authorize","params":["bob.w","x"]}
`)
	if !strings.Contains(out, `"mining.set_difficulty","params":[1024]}`) {
		t.Fatalf("suggest before subscribe not honoured: %s", out)
	}
	s = o.session(0x01000002)
	out = o.run(s, `{"id":2,"method":"mining.subscribe","params":[]}
{"id":3,"method":"mining.authorize","params":["bob.w","d=5000,md=100"]}
`)
	if !strings.Contains(out, `"params":[8192]}`) || s.m.vd.MinExp() != 7 {
		t.Fatalf("password d=/md= not applied (min exp %d): %s", s.m.vd.MinExp(), out)
	}
	// After authorize the suggestion takes effect with the next notify,
	// which is preceded by set_difficulty only because it changed.
	o.run(s, `{"id":4,"method":"mining.suggest_difficulty","params":[300]}`+"\n")
	o.lp.out = o.lp.out[:0]
	j := o.srv.repo.Latest()
	s.sendJob(j, false, time.Now().Unix())
	if got := string(o.lp.out); !strings.HasPrefix(got, `{"id":null,"method":"mining.set_difficulty","params":[512]}`+"\n") {
		t.Fatalf("set_difficulty not first: %s", got)
	}
	o.lp.out = o.lp.out[:0]
	s.sendJob(j, false, time.Now().Unix())
	if got := string(o.lp.out); strings.Contains(got, "set_difficulty") {
		t.Fatalf("set_difficulty repeated without a change: %s", got)
	}
}

func TestSessionLineLimitAndSplitInput(t *testing.T) {
	opts := testOptions(t)
	opts.MaxLine = 256
	o := newOffline(t, opts)
	s := o.session(0x01000003)
	if _, closeNow := s.feed(bytes.Repeat([]byte("a"), 300), 0); !closeNow {
		t.Fatal("overlong line did not close the session")
	}
	// A request split at every byte boundary gives the same reply.
	line := []byte(`{"id":1,"method":"mining.subscribe","params":["x"]}` + "\n")
	for cut := 1; cut < len(line); cut++ {
		s := o.session(0x01000004)
		o.lp.out = o.lp.out[:0]
		n, _ := s.feed(line[:cut], 0)
		buf := append(append([]byte(nil), line[n:cut]...), line[cut:]...)
		n2, _ := s.feed(buf, 0)
		if n2 != len(buf) || !strings.HasPrefix(string(o.lp.out), `{"id":1,"result":[[`) {
			t.Fatalf("cut %d: consumed %d, out %q", cut, n2, o.lp.out)
		}
	}
}

func TestSubmitPathZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	o := newOffline(t, testOptions(t))
	s := authorizedSession(t, o)
	line := []byte(`{"id":9,"method":"mining.submit","params":["alice.rig1","0","0000000000000000","` + fmt.Sprintf("%08x", o.job.Time) + `","00000000"]}` + "\n")
	en2At := bytes.Index(line, []byte("0000000000000000"))
	var n uint64
	accepted := 0
	allocs := testing.AllocsPerRun(200, func() {
		n++
		patchHex16(line[en2At:en2At+16], n)
		o.lp.out = o.lp.out[:0]
		s.feed(line, time.Now().Unix())
		if bytes.Contains(o.lp.out, []byte(`"result":true`)) {
			accepted++
		}
		o.lp.batch.buf, o.lp.batch.ends = o.lp.batch.buf[:0], o.lp.batch.ends[:0]
	})
	if allocs != 0 {
		t.Fatalf("submit path: %v allocs per share", allocs)
	}
	if accepted < 190 {
		t.Fatalf("only %d of 201 shares accepted", accepted)
	}
}

func patchHex16(dst []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		dst[i] = "0123456789abcdef"[v&15]
		v >>= 4
	}
}

// BenchmarkSubmitPath measures one share from the bytes of a mining.submit
// line to the reply bytes and the encoded share record, on one loop (the
// record's publication happens off the loop and is not included).
// BenchmarkSubmitPath feeds distinct accepted shares to one session. As in
// production, jobs come and go: every submitPathJobShares shares a new job
// arrives (outside the timed region, as it arrives on the job feed, not on
// the loop) and the shares move to it; each job's duplicate set is sized
// from the one before it, so the loop never grows a set. A warm-up job
// before the timer gives the first timed job its predecessor.
func BenchmarkSubmitPath(b *testing.B) {
	opts := testOptions(b)
	// Every share meets the session's target: the difficulty stays at 2^-32
	// across jobs (vardiff would raise it at this share rate).
	opts.MaxDifficulty = opts.MinDifficulty
	o := newOffline(b, opts)
	s := authorizedSession(b, o)
	now := time.Now().Unix()
	var line []byte
	var en2At int
	height := int32(100)
	rotate := func() {
		height++
		p := testJobParams(height, false)
		p.ID += uint64(height) << 8 // unique within the second
		j, _, err := o.srv.repo.Add(p, now)
		if err != nil {
			b.Fatal(err)
		}
		s.sendJob(j, true, now)
		line = []byte(`{"id":9,"method":"mining.submit","params":["alice.rig1","` + strconv.Itoa(int(j.ShortID)) +
			`","0000000000000000","` + fmt.Sprintf("%08x", p.Time) + `","00000000"]}` + "\n")
		en2At = bytes.Index(line, []byte("0000000000000000"))
	}
	var n uint64
	submit := func() {
		n++
		patchHex16(line[en2At:en2At+16], n)
		o.lp.out = o.lp.out[:0]
		s.feed(line, now)
		if len(o.lp.batch.ends) > 512 {
			o.lp.batch.buf, o.lp.batch.ends = o.lp.batch.buf[:0], o.lp.batch.ends[:0]
		}
	}
	rotate()
	for range submitPathJobShares {
		submit()
	}
	rotate()
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	k := 0
	for b.Loop() {
		if k++; k == submitPathJobShares {
			k = 0
			b.StopTimer()
			rotate()
			b.StartTimer()
		}
		submit()
	}
	m := o.srv.metrics
	if got := m.SharesAccepted.Load(); got < int64(n-n/1000) { // a few hashes miss even 2^-32
		b.Fatalf("%d of %d shares accepted (stale %d, duplicate %d, low difficulty %d, other %d)", got, n,
			m.SharesStale.Load(), m.SharesDuplicate.Load(), m.SharesLowDiff.Load(), m.SharesOther.Load())
	}
}

// submitPathJobShares is how many shares BenchmarkSubmitPath sends on each
// job (a job's 30 s at about 2,000 accepted shares/s on one loop).
const submitPathJobShares = 1 << 16

var netipLoopback = netip.MustParseAddr("127.0.0.1")

// TestNoStaleJobForNewSession: a session authorizing after a block was
// found on the newest job (and before the next job) is not handed that
// job; the next job reaches it.
func TestNoStaleJobForNewSession(t *testing.T) {
	o := newOffline(t, testOptions(t))
	o.srv.repo.MarkStale(o.job.Height)
	s := o.session(0x01000000)
	out := o.run(s, `{"id":1,"method":"mining.subscribe","params":[]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["alice.rig1"]}`+"\n")
	if strings.Contains(out, `"method":"mining.notify"`) || !strings.Contains(out, `{"id":2,"result":true,"error":null}`) {
		t.Fatalf("authorize after the block: %s", out)
	}
}

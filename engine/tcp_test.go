package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// expectClosed reads until the server closes the connection (EOF or a
// reset), failing after 10 s or on any other error. Lines read before are
// returned.
func (c *client) expectClosed() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(c.r)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("connection not closed by the server: %v (read %q)", err, rest)
	}
	return string(rest)
}

func (c *client) subscribeAuthorize(agentName, user string) {
	c.t.Helper()
	c.script(fmt.Sprintf(`
> {"id":1,"method":"mining.subscribe","params":["%s"]}
<~ \{"id":1,"result":.*
> {"id":2,"method":"mining.authorize","params":["%s"]}
< {"id":2,"result":true,"error":null}`, agentName, user))
}

// waitFor polls cond every 10 ms for at most 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestTimeoutBeforeAuthorize(t *testing.T) {
	o := testOptions(t)
	o.AuthorizeTimeout = time.Second
	o.TCPReadTimeout = time.Hour
	p := startPool(t, o)
	idle := p.dial()
	subscribed := p.dial()
	subscribed.script(`
> {"id":1,"method":"mining.subscribe","params":[]}
<~ \{"id":1,"result":.*`)
	authorized := p.dial()
	authorized.subscribeAuthorize("", "gina.w")

	idle.expectClosed()
	subscribed.expectClosed()
	// The authorized session has tcp_read_timeout (an hour) and still answers.
	authorized.script(`
> {"id":3,"method":"mining.extranonce.subscribe","params":[]}
< {"id":3,"result":true,"error":null}`)
	if n := p.srv.metrics.TimedOut.Load(); n != 2 {
		t.Fatalf("%d sessions timed out, want 2", n)
	}
}

func TestReadTimeoutAfterAuthorize(t *testing.T) {
	o := testOptions(t)
	o.AuthorizeTimeout = time.Hour
	o.TCPReadTimeout = time.Second
	o.LongTimeoutAgent = "^longminer/"
	p := startPool(t, o)
	long := p.dial()
	long.subscribeAuthorize("LongMiner/1.0", "gina.long")
	nicehash := p.dial()
	nicehash.subscribeAuthorize("NiceHash/1.0", "gina.nh")
	short := p.dial()
	short.subscribeAuthorize("cgminer/4.10", "gina.short")
	short.expectClosed()
	// Agents matching long_timeout_agent and NiceHash keep the long timeout.
	for _, c := range []*client{long, nicehash} {
		c.script(`
> {"id":3,"method":"mining.extranonce.subscribe","params":[]}
< {"id":3,"result":true,"error":null}`)
	}
}

func TestProxyProtocolV1(t *testing.T) {
	o := testOptions(t)
	o.ProxyProtocol = true
	p := startPool(t, o)
	job := testJobParams(500, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.send("PROXY TCP4 203.0.113.7 127.0.0.1 51234 3333\r")
	c.subscribeAuthorize("", "hank.w")
	c.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	c.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["hank.w","0","00000000000000aa","%08x","00000001"]}
<~ \{"id":3,.*`, job.Time))
	if sh := p.nextShare(); sh.IP.String() != "203.0.113.7" {
		t.Fatalf("share record ip %v, want the PROXY source 203.0.113.7", sh.IP)
	}
	// Without the option the line is not special: it is not JSON, dropped.
	o2 := testOptions(t)
	p2 := startPool(t, o2)
	c2 := p2.dial()
	c2.send("PROXY TCP4 203.0.113.7 127.0.0.1 51234 3333")
	c2.subscribeAuthorize("", "hank.w")
	if err := p2.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c2.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	c2.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["hank.w","0","00000000000000aa","%08x","00000001"]}
<~ \{"id":3,.*`, job.Time))
	if sh := p2.nextShare(); sh.IP.String() != "127.0.0.1" {
		t.Fatalf("share record ip %v without proxy_protocol", sh.IP)
	}
}

func TestGracefulShutdown(t *testing.T) {
	o := testOptions(t)
	o.GracePeriod = 3 * time.Second
	p := startPool(t, o)
	job := testJobParams(600, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.subscribeAuthorize("", "ivy.w")
	c.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	c.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["ivy.w","0","00000000000000aa","%08x","00000001"]}
<~ \{"id":3,.*`, job.Time))
	stopped := make(chan error, 1)
	go func() { stopped <- p.stop() }()
	<-p.srv.listenStopped
	// While draining, new connections are refused and open sessions still
	// answer until their turn to close comes.
	expectRefused(t, p.srv.Addr().String(), 3)
	c.script(`
> {"id":4,"method":"mining.extranonce.subscribe","params":[]}
< {"id":4,"result":true,"error":null}`)
	c.expectClosed()
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The share submitted just before the shutdown was flushed to the bus.
	if sh := p.nextShare(); sh.JobID != job.ID || sh.UserID != 1 {
		t.Fatalf("record %+v", sh)
	}
	if _, err := net.DialTimeout("tcp", p.srv.Addr().String(), time.Second); err == nil {
		t.Fatal("still listening after Serve returned")
	}
}

var createdAtRe = regexp.MustCompile(`"created_at":"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"`)

func TestCommonEvents(t *testing.T) {
	o := testOptions(t)
	p := startPool(t, o)
	events, err := p.bus.NewConsumer(o.Topics.CommonEvents, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	c := p.dial()
	c.subscribeAuthorize("cgminer/4.10", "jack.rig7")
	c.conn.Close()
	// The close must be handled before the agent connects (possibly on the other loop), or
	// its miner_dead could follow the agent's events.
	waitFor(t, "the first session to close", func() bool { return p.srv.metrics.Sessions.Load() == 0 })
	agentConn := p.dial()
	agentConn.subscribeAuthorize("btccom-agent/2.0.0", "jack")
	// The second session got id 2 or, when the first id was freed already, 1.
	content := func(action, worker, agentName, session, desc string) string {
		return fmt.Sprintf(`{"created_at":"","type":"worker_update","action":"%s","content":{"user_id":1,"user_name":"jack",`+
			`"worker_id":%d,"worker_name":"%s","miner_agent":"%s","ip":"127.0.0.1","session_id":"%s","desc":"%s"}}`,
			action, WorkerID(worker), worker, agentName, session, desc)
	}
	reg, _ := agent.AppendRegisterWorker(nil, 7, "bmminer/2.0", "rig9")
	agentConn.conn.Write(append(reg, agent.AppendUnregisterWorker(nil, 7)...))
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < 5 {
		msgs, err := events.Poll(ctx)
		if err != nil {
			t.Fatalf("common events: %v (got %q)", err, got)
		}
		for _, m := range msgs {
			var e btcpool.CommonEvent
			if err := btcpool.DecodeCommonEvent(m.Value, &e); err != nil {
				t.Fatalf("%s: %v", m.Value, err)
			}
			if !createdAtRe.Match(m.Value) || time.Since(e.CreatedAt) > time.Minute {
				t.Fatalf("created_at in %s", m.Value)
			}
			got = append(got, createdAtRe.ReplaceAllString(string(m.Value), `"created_at":""`))
		}
	}
	agentSession := got[2][strings.Index(got[2], `"session_id":"`)+14:][:8]
	want := []string{
		content("miner_connect", "rig7", "cgminer/4.10", "01000000", "new_conn"),
		content("miner_dead", "rig7", "cgminer/4.10", "01000000", "del_conn"),
		content("miner_connect", DefaultWorkerName, "btccom-agent/2.0.0", agentSession, "new_conn"),
		content("miner_connect", "rig9", "bmminer/2.0", agentSession, "from_btcagent"),
		content("miner_dead", "rig9", "bmminer/2.0", agentSession, "from_btcagent"),
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d\ngot  %s\nwant %s", i, got[i], want[i])
		}
	}
	if agentSession != "01000000" && agentSession != "01000001" {
		t.Fatalf("agent session id %s", agentSession)
	}
}

// TestOutboundCapClosesSlowReader: a client that never reads is closed once
// MaxOutbound bytes wait for it; a client that reads is not.
func TestOutboundCapClosesSlowReader(t *testing.T) {
	o := testOptions(t)
	o.MaxOutbound = 64 << 10
	p := startPool(t, o)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", p.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	slow := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	slow.subscribeAuthorize("", "kate.slow")
	reader := p.dial()
	reader.subscribeAuthorize("", "kate.reader")
	readerDone := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, reader.conn); readerDone <- err }()

	// Big notifies (a 16 KB coinbase2) until the slow client is cut off.
	for h := int32(1000); p.srv.metrics.SlowClosed.Load() == 0; h++ {
		if h > 3000 {
			t.Fatal("slow reader never closed")
		}
		job := testJobParams(h, false)
		job.Coinbase2 = make([]byte, 16<<10)
		if err := p.srv.AddJob(job); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	slow.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, slow.conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("slow reader: %v", err)
	}
	if n := p.srv.metrics.SlowClosed.Load(); n != 1 {
		t.Fatalf("%d sessions closed as slow, want 1", n)
	}
	select {
	case err := <-readerDone:
		t.Fatalf("the reading client was closed too: %v", err)
	default:
	}
}

var (
	setDiffRe  = regexp.MustCompile(`^\{"id":null,"method":"mining.set_difficulty","params":\[([0-9.]+)\]\}$`)
	notifyIDRe = regexp.MustCompile(`^\{"id":null,"method":"mining.notify","params":\["(\d+)",`)
)

// recvDiffAndJobID reads a set_difficulty and a notify and returns both.
func (c *client) recvDiffAndJobID() (float64, uint64) {
	c.t.Helper()
	l := c.recv()
	m := setDiffRe.FindStringSubmatch(l)
	if m == nil {
		c.t.Fatalf("want set_difficulty, got %s", l)
	}
	d, _ := strconv.ParseFloat(m[1], 64)
	return d, c.recvJobID()
}

func (c *client) recvJobID() uint64 {
	c.t.Helper()
	l := c.recv()
	m := notifyIDRe.FindStringSubmatch(l)
	if m == nil {
		c.t.Fatalf("want notify, got %s", l)
	}
	id, _ := strconv.ParseUint(m[1], 10, 64)
	return id
}

func TestNiceHash(t *testing.T) {
	o := testOptions(t)
	o.NiceHashMinDifficulty = math.Ldexp(1, -20)
	p := startPool(t, o)
	job := testJobParams(700, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	nh := p.dial()
	nh.subscribeAuthorize("NiceHash/1.0.0", "leo.nh")
	diff, id := nh.recvDiffAndJobID()
	if diff != math.Ldexp(1, -20) {
		t.Fatalf("NiceHash difficulty %g, want the NiceHash minimum 2^-20", diff)
	}
	checkID := func(id uint64, short uint8) {
		t.Helper()
		if now := uint64(time.Now().Unix()); id%256 != uint64(short) || id/256 > now || id/256+10 < now {
			t.Fatalf("NiceHash job id %d: want about %d*256+%d", id, now, short)
		}
	}
	checkID(id, 0)
	// The submit carries the long id back; it is taken modulo 256.
	nonce := findNonce(t, job, 0x01000000, 0xcc, job.Time, -20, true)
	nh.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["leo.nh","%d","00000000000000cc","%08x","%08x"]}
< {"id":3,"result":true,"error":null}`, id, job.Time, nonce))

	// The miner's own minimum (md=) wins over the NiceHash one; a plain
	// client keeps the short ids and the server minimum.
	own := p.dial()
	own.script(`
> {"id":1,"method":"mining.subscribe","params":["nicehash/2.0"]}
<~ \{"id":1,"result":.*
> {"id":2,"method":"mining.authorize","params":["leo.own","md=0.5"]}
< {"id":2,"result":true,"error":null}`)
	if diff, id := own.recvDiffAndJobID(); diff != 0.5 || id < 256 {
		t.Fatalf("md= NiceHash client: difficulty %g, job id %d", diff, id)
	}
	plain := p.dial()
	plain.subscribeAuthorize("cgminer/4.10", "leo.plain")
	if diff, id := plain.recvDiffAndJobID(); diff != math.Ldexp(1, -32) || id != 0 {
		t.Fatalf("plain client: difficulty %g, job id %d", diff, id)
	}

	// A broadcast job: the NiceHash client gets its unique id again.
	if err := p.srv.AddJob(testJobParams(701, false)); err != nil {
		t.Fatal(err)
	}
	checkID(nh.recvJobID(), 1)
	if id := plain.recvJobID(); id != 1 {
		t.Fatalf("plain client job id %d after broadcast", id)
	}
	// NiceHash agents get the long timeout.
	if !p.srv.longTimeout("NICEHASH/x") || p.srv.longTimeout("nicehas/") {
		t.Fatal("long timeout for NiceHash agents")
	}
}

func TestNiceHashForced(t *testing.T) {
	o := testOptions(t)
	o.NiceHashForced = true
	o.NiceHashMinDifficulty = 1
	p := startPool(t, o)
	if err := p.srv.AddJob(testJobParams(800, false)); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.subscribeAuthorize("cgminer/4.10", "mia.w")
	if diff, id := c.recvDiffAndJobID(); diff != 1 || id < 256 || id%256 != 0 {
		t.Fatalf("forced NiceHash: difficulty %g, job id %d", diff, id)
	}
}

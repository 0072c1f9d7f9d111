package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/codec/stratum"
)

// freePort returns a loopback port that was free a moment ago (for
// SO_REUSEPORT listeners, which cannot use port 0).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// expectRefused dials addr n times; every attempt must be refused by the
// kernel (no accept followed by a reset).
func expectRefused(t *testing.T, addr string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dial %d to %s succeeded after the shutdown began", i, addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %d: %v, want connection refused", i, err)
		}
	}
}

// TestShutdownStopsAcceptingThenDrains: once Shutdown begins, connecting is
// refused by the kernel (with one listener, and with one per loop under
// SO_REUSEPORT), while an open session still submits a block-solving share,
// gets its true, and the solved share reaches the bus before Shutdown
// returns.
func TestShutdownStopsAcceptingThenDrains(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuseport=%v", reuse), func(t *testing.T) {
			o := testOptions(t)
			o.GracePeriod = 2 * time.Second
			if reuse {
				o.ReusePort = true
				o.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
			}
			p := startPool(t, o)
			job := testJobParams(700, true)
			if err := p.srv.AddJob(job); err != nil {
				t.Fatal(err)
			}
			c := p.dial()
			c.subscribeAuthorize("", "erin.big")
			c.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
			done := make(chan error, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			go func() { done <- p.srv.Shutdown(ctx) }()
			select {
			case <-p.srv.listenStopped:
			case <-time.After(30 * time.Second):
				t.Fatal("listeners not closed")
			}
			expectRefused(t, p.srv.Addr().String(), 20)
			// The open session is served during the drain.
			c.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["erin.big","0","00000000000000d1","%08x","00000001"]}
< {"id":3,"result":true,"error":null}`, job.Time))
			c.expectClosed()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("Shutdown did not return")
			}
			if err := p.stop(); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if n := p.srv.metrics.SolvedPublished.Load(); n != 1 {
				t.Fatalf("%d solved shares acknowledged before Shutdown returned, want 1", n)
			}
			pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer pcancel()
			msgs, err := p.solved.Poll(pctx)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("solved topic: %d msgs, %v", len(msgs), err)
			}
			var ss btcpool.SolvedShare
			if err := btcpool.DecodeSolvedShare(msgs[0].Value, &ss); err != nil || ss.Height != 700 {
				t.Fatalf("solved share %+v, %v", ss, err)
			}
			if n := p.srv.metrics.Rejected.Load(); n != 0 {
				t.Fatalf("%d connections accepted and closed during the drain", n)
			}
		})
	}
}

// blockJournal makes the server's journal writes wait until the returned
// function is called.
func blockJournal(p *testPool) (release func()) {
	gate := make(chan struct{})
	f := func() { <-gate }
	p.srv.out.beforeJournal.Store(&f)
	return func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}
}

// expectSilent checks that nothing arrives on c for d (a negative check: a
// correct server never sends, so it cannot fail spuriously).
func (c *client) expectSilent(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	b, err := c.r.Peek(1)
	c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("got %q (%v) while the answer must be held", b, err)
	}
}

// TestSolvedAnswerWaitsForJournal: the true of a block-solving share, and
// the answers after it, are written only once the share is in the journal.
func TestSolvedAnswerWaitsForJournal(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(710, true)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.subscribeAuthorize("", "erin.big")
	c.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	release := blockJournal(p)
	defer release()
	c.send(fmt.Sprintf(`{"id":3,"method":"mining.submit","params":["erin.big","0","00000000000000e1","%08x","00000001"]}`, job.Time))
	waitFor(t, "the solved share to be counted", func() bool { return p.srv.metrics.SharesSolved.Load() == 1 })
	c.send(`{"id":4,"method":"mining.extranonce.subscribe","params":[]}`)
	c.expectSilent(300 * time.Millisecond)
	path := filepath.Join(p.srv.opts.DataDir, journalFile)
	if recs, _ := ReadJournal(path); len(recs) != 0 {
		t.Fatalf("journal has %d records before the write", len(recs))
	}
	release()
	c.script(`
< {"id":3,"result":true,"error":null}
< {"id":4,"result":true,"error":null}`)
	// The answer came after the record was written.
	if recs, err := ReadJournal(path); err != nil || len(recs) != 1 {
		t.Fatalf("journal after the answer: %d records, %v", len(recs), err)
	}
	// Later shares are answered at once again.
	c.script(`
> {"id":5,"method":"mining.extranonce.subscribe","params":[]}
< {"id":5,"result":true,"error":null}`)
}

// TestAgentSolvedAnswerWaitsForJournal: the same for an agent's
// SUBMIT_RESPONSE, which must also keep its order (an agent applies a
// response to every earlier unanswered share).
func TestAgentSolvedAnswerWaitsForJournal(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(720, true)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.script(`
> {"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres"]]}
< {"id":"caps","result":{"capabilities":["verrol","subres"]}}
> {"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-mu"]}
<~ .*
> {"id":"auth","method":"mining.authorize","params":["carol",""]}
< {"id":"auth","result":true,"error":null}
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	reg, _ := agent.AppendRegisterWorker(nil, 1, "cgminer/4.9", "w1")
	c.conn.Write(reg)
	c.script(`
> {"id":"barrier","method":"mining.extranonce.subscribe","params":[]}
< {"id":"barrier","result":true,"error":null}`)
	release := blockJournal(p)
	defer release()
	sub := agent.Submit{JobID: job0Short(p), SessionID: 1, ExtraNonce2: 0xf1, Nonce: 1, Time: job.Time, HasTime: true}
	c.conn.Write(agent.AppendSubmit(nil, &sub))
	sub.Nonce = 2
	c.conn.Write(agent.AppendSubmit(nil, &sub))
	// The first solves the block and makes the job stale: the second is
	// rejected, and its answer must still come after the first's.
	waitFor(t, "a solved and a stale share", func() bool {
		return p.srv.metrics.SharesSolved.Load() == 1 && p.srv.metrics.SharesStale.Load() == 1
	})
	c.expectSilent(300 * time.Millisecond)
	release()
	idx, st, err := agent.DecodeSubmitResponse(c.readFrame())
	if err != nil || idx != 0 || !stratum.Status(st).IsAccepted() {
		t.Fatalf("response idx %d status %d (%v), want 0 accepted", idx, st, err)
	}
	if recs, _ := ReadJournal(filepath.Join(p.srv.opts.DataDir, journalFile)); len(recs) != 1 {
		t.Fatalf("journal has %d records after the answer, want 1", len(recs))
	}
	if idx, st, err := agent.DecodeSubmitResponse(c.readFrame()); err != nil || idx != 1 || st != 37 {
		t.Fatalf("response idx %d status %d (%v), want 1 stale (37)", idx, st, err)
	}
}

func job0Short(p *testPool) uint8 { return p.srv.repo.Latest().ShortID }

// TestJournalFailureStillAnswers: when the journal cannot be written the
// share is still answered true and published (btcpool's behaviour), and
// the failure is counted.
func TestJournalFailureStillAnswers(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(730, true)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.subscribeAuthorize("", "erin.big")
	c.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	// A closed journal file makes the write fail.
	f := func() { p.srv.out.journalMu.Lock(); p.srv.out.journal.Close(); p.srv.out.journalMu.Unlock() }
	p.srv.out.beforeJournal.Store(&f)
	c.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["erin.big","0","00000000000000f1","%08x","00000001"]}
< {"id":3,"result":true,"error":null}`, job.Time))
	if n := p.srv.metrics.JournalErrors.Load(); n < 1 {
		t.Fatalf("journal errors %d, want at least 1", n)
	}
	waitFor(t, "the solved share published", func() bool { return p.srv.metrics.SolvedPublished.Load() == 1 })
}

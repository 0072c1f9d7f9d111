package agent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/engine"
)

func expectRes(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%s: got %s, want %s", what, got, want)
	}
}

// TestSharesThroughAgent: miners → btcagent → engine over loopback TCP,
// with each reject reason the engine gives, in plain btcpool mode and with
// hashpool's rejonly extension.
func TestSharesThroughAgent(t *testing.T) {
	for _, tc := range []struct {
		name string
		exts []string
	}{{"plain", nil}, {"rejonly", []string{ExtRejOnly}}, {"zstd", []string{ExtZstd}}, {"csub", []string{ExtCompact}}, {"all", []string{ExtRejOnly, ExtZstd, ExtCompact}}} {
		t.Run(tc.name, func(t *testing.T) {
			p := startEngine(t, 1)
			job := p.AddJob(false)
			a := startAgent(t, func(c *Config) { c.Extensions = tc.exts }, p)
			m := dialMiner(t, a, "john.a001")
			w := m.waitJob(true)
			if !strings.HasPrefix(strings.ToLower(stratumHex(w.cb1)), strings.ToLower(stratumHex(job.Coinbase1))+"01") ||
				len(w.cb1) != len(job.Coinbase1)+4 {
				t.Fatalf("coinbase1 %x: want the pool's followed by its extranonce1 01xxxxxx", w.cb1)
			}
			a.slots[0].mu.Lock()
			rejonly, zbatch, csub := a.slots[0].up.rejonly, a.slots[0].up.zbatch, a.slots[0].up.csub
			a.slots[0].mu.Unlock()
			if rejonly != slices.Contains(tc.exts, ExtRejOnly) || zbatch != slices.Contains(tc.exts, ExtZstd) || csub != slices.Contains(tc.exts, ExtCompact) {
				t.Fatalf("negotiated rejonly %v zstd %v csub %v", rejonly, zbatch, csub)
			}

			// Accepted, with time and without a version mask.
			nonce := m.findNonce(w, 0x11223344, w.ntime, 0, testExp, true)
			expectRes(t, "valid share", m.submit(w, 0x11223344, w.ntime, nonce, nil), `"result":true`)
			rec := p.NextShare()
			uid, _ := p.Users.UserID("kevin")
			if rec.UserID != uid || rec.WorkerHashID != engine.WorkerID("a001") || rec.Nonce != nonce || rec.Status != btcpool.Status(1798084231) {
				t.Fatalf("share record %+v: want user kevin (%d), worker a001", rec, uid)
			}
			// Accepted with a version mask.
			vm := uint32(0x00002000)
			nonce = m.findNonce(w, 5, w.ntime, vm, testExp, true)
			expectRes(t, "version-rolled share", m.submit(w, 5, w.ntime, nonce, &vm), `"result":true`)
			p.NextShare()
			// Accepted with a rolled time: sent up, while the job's own time is left out.
			rolled := m.findNonce(w, 12, w.ntime+1, 0, testExp, true)
			expectRes(t, "rolled-time share", m.submit(w, 12, w.ntime+1, rolled, nil), `"result":true`)
			p.NextShare()
			// Rejects.
			expectRes(t, "duplicate", m.submit(w, 5, w.ntime, nonce, &vm), `"error":[22,`)
			low := m.findNonce(w, 6, w.ntime, 0, testExp, false)
			expectRes(t, "low difficulty", m.submit(w, 6, w.ntime, low, nil), `"error":[23,`)
			p.NextShare()
			expectRes(t, "time too old", m.submit(w, 7, job.MinTime-1, 1, nil), `"error":[31,`)
			p.NextShare()
			expectRes(t, "time too new", m.submit(w, 8, job.Time+601, 1, nil), `"error":[32,`)
			p.NextShare()
			unknown := *w
			unknown.jobID = "77"
			expectRes(t, "unknown job", m.submit(&unknown, 9, w.ntime, 1, nil), `"error":[21,`)
			bad := uint32(0xffffffff)
			expectRes(t, "illegal version mask", m.submit(w, 10, w.ntime, 1, &bad), `"error":[33,`)
			p.NextShare()
			// A new height makes the old job stale.
			p.AddJob(false)
			w2 := m.waitJob(true)
			nonce = m.findNonce(w, 11, w.ntime, 0, testExp, true)
			expectRes(t, "stale", m.submit(w, 11, w.ntime, nonce, nil), `"error":[21,`)
			p.NextShare()
			// Several shares in one batch: all answered, in order.
			var lines []string
			for i := uint32(0); i < 5; i++ {
				n := m.findNonce(w2, 100+i, w2.ntime, 0, testExp, i != 2)
				lines = append(lines, m.submitLine(w2, 100+i, w2.ntime, n))
			}
			m.writeLines(lines)
			for i := 0; i < 5; i++ {
				got := m.recv()
				want := `"result":true`
				if i == 2 {
					want = `"error":[23,`
				}
				expectRes(t, "batched share", got, want)
			}
			st := a.Stats()
			if st.Shares < 14 || st.Accepted < 6 || st.Rejected < 8 || st.Miners != 1 || st.Upstreams != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestBlockThroughAgent: a regtest job (bits 0x207fffff) where every valid
// share is a block; the engine publishes the solved share.
func TestBlockThroughAgent(t *testing.T) {
	p := startEngine(t, 1)
	job := p.AddJob(true)
	a := startAgent(t, nil, p)
	m := dialMiner(t, a, "john.a001")
	w := m.waitJob(true)
	nonce := m.findNonce(w, 0xabcdef01, w.ntime, 0, testExp, true)
	expectRes(t, "block share", m.submit(w, 0xabcdef01, w.ntime, nonce, nil), `"result":true`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := p.Solved.Poll(ctx)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("solved shares: %d, %v", len(msgs), err)
	}
	var ss btcpool.SolvedShare
	if err := btcpool.DecodeSolvedShare(msgs[0].Value, &ss); err != nil {
		t.Fatal(err)
	}
	if ss.WorkerFullName != "kevin.a001" || ss.Height != job.Height || ss.JobID != job.ID {
		t.Fatalf("solved share %+v", ss)
	}
	// The coinbase the pool rebuilt holds pool en1, 00 00 sid, en2.
	want := append(append([]byte(nil), w.cb1...), m.en1...)
	want = append(want, 0xab, 0xcd, 0xef, 0x01)
	if !strings.HasPrefix(string(ss.Coinbase), string(want)) {
		t.Fatalf("coinbase %x, want prefix %x", ss.Coinbase, want)
	}
}

// TestFailover: the first pool dies; miners stay connected, get the second
// pool's difficulty and a clean job, and their shares go there.
func TestFailover(t *testing.T) {
	p1 := startEngine(t, 1)
	p2 := startEngine(t, 2)
	p1.AddJob(false)
	p2.AddJob(false)
	a := startAgent(t, nil, p1, p2)
	m := dialMiner(t, a, "john.a001")
	m2 := dialMiner(t, a, "mary.b002")
	w := m.waitJob(true)
	m2.waitJob(true)
	nonce := m.findNonce(w, 1, w.ntime, 0, testExp, true)
	expectRes(t, "share on pool 1", m.submit(w, 1, w.ntime, nonce, nil), `"result":true`)
	p1.NextShare()

	p1.Stop()
	w = m.waitJob(true)
	if w.cb1[len(w.cb1)-4] != 2 {
		t.Fatalf("coinbase1 %x: want pool 2's extranonce1", w.cb1)
	}
	nonce = m.findNonce(w, 2, w.ntime, 0, testExp, true)
	expectRes(t, "share on pool 2", m.submit(w, 2, w.ntime, nonce, nil), `"result":true`)
	rec := p2.NextShare()
	if rec.WorkerHashID != engine.WorkerID("a001") {
		t.Fatalf("record on pool 2 %+v", rec)
	}
	w2 := m2.waitJob(true)
	nonce = m2.findNonce(w2, 3, w2.ntime, 0, testExp, true)
	expectRes(t, "second miner on pool 2", m2.submit(w2, 3, w2.ntime, nonce, nil), `"result":true`)
	if rec := p2.NextShare(); rec.WorkerHashID != engine.WorkerID("b002") {
		t.Fatalf("record on pool 2 %+v", rec)
	}
	if st := a.Stats(); st.Connects != 2 || st.Miners != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestMoreMinersThanOneUpstream: with 2 miners per upstream connection, 3
// miners open 2 connections and the session ids restart at 0.
func TestMoreMinersThanOneUpstream(t *testing.T) {
	p := startEngine(t, 1)
	p.AddJob(false)
	a := startAgent(t, func(c *Config) { c.MinersPerUpstream = 2; c.Extensions = nil }, p)
	var ms []*miner
	for _, login := range []string{"a.w1", "a.w2", "a.w3"} {
		ms = append(ms, dialMiner(t, a, login))
	}
	if ms[2].en1[3] != 0 || ms[1].en1[3] != 1 {
		t.Fatalf("session ids %x %x %x", ms[0].en1, ms[1].en1, ms[2].en1)
	}
	for i, m := range ms {
		w := m.waitJob(true)
		n := m.findNonce(w, uint32(i), w.ntime, 0, testExp, true)
		expectRes(t, "share", m.submit(w, uint32(i), w.ntime, n, nil), `"result":true`)
		if rec := p.NextShare(); rec.WorkerHashID != engine.WorkerID([]string{"w1", "w2", "w3"}[i]) {
			t.Fatalf("record %+v", rec)
		}
	}
	if st := a.Stats(); st.Upstreams != 2 {
		t.Fatalf("upstreams %d, want 2", st.Upstreams)
	}
}

// TestLocalAnswersWithoutSubres: BtcAgent's default answers true at once.
func TestLocalAnswersWithoutSubres(t *testing.T) {
	p := startEngine(t, 1)
	p.AddJob(false)
	a := startAgent(t, func(c *Config) { c.SubmitResponseFromServer = false }, p)
	m := dialMiner(t, a, "john")
	w := m.waitJob(true)
	low := m.findNonce(w, 6, w.ntime, 0, testExp, false)
	expectRes(t, "low share answered locally", m.submit(w, 6, w.ntime, low, nil), `"result":true`)
	if rec := p.NextShare(); rec.Status != 23 || rec.WorkerHashID != engine.WorkerID("john") {
		t.Fatalf("record %+v", rec)
	}
}

// TestBackToPrimary: while on the second pool, the agent keeps dialing the
// first and moves back once it listens again; miners stay connected.
func TestBackToPrimary(t *testing.T) {
	p1 := startEngine(t, 1)
	addr1 := p1.Addr
	p1.Stop()
	p2 := startEngine(t, 2)
	p2.AddJob(false)
	p1.Addr = addr1
	a := startAgent(t, func(c *Config) { c.PrimaryRetrySec = 1 }, p1, p2)
	m := dialMiner(t, a, "john.a001")
	if w := m.waitJob(true); w.cb1[len(w.cb1)-4] != 2 {
		t.Fatalf("coinbase1 %x: want pool 2's extranonce1", w.cb1)
	}
	p1b := startEngineAt(t, 1, addr1)
	p1b.AddJob(false)
	w := m.waitJob(true)
	if w.cb1[len(w.cb1)-4] != 1 {
		t.Fatalf("coinbase1 %x: want pool 1's extranonce1", w.cb1)
	}
	nonce := m.findNonce(w, 1, w.ntime, 0, testExp, true)
	expectRes(t, "share on pool 1 again", m.submit(w, 1, w.ntime, nonce, nil), `"result":true`)
	if rec := p1b.NextShare(); rec.WorkerHashID != engine.WorkerID("a001") {
		t.Fatalf("record %+v", rec)
	}
}

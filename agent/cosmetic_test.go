package agent

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWireCountersSurviveReconnect: the kernel's counters of an upstream
// connection still count after it closed, so the totals (and -stats' wire
// kbps) never go backwards across a pool switch.
func TestWireCountersSurviveReconnect(t *testing.T) {
	p1 := startEngine(t, 1)
	p2 := startEngine(t, 2)
	p1.AddJob(false)
	p2.AddJob(false)
	a := startAgent(t, nil, p1, p2)
	m := dialMiner(t, a, "john.a001")
	w := m.waitJob(true)
	nonce := m.findNonce(w, 1, w.ntime, 0, testExp, true)
	expectRes(t, "share", m.submit(w, 1, w.ntime, nonce, nil), `"result":true`)
	p1.NextShare()
	before := a.Stats().Wire
	if before.BytesOut == 0 || before.SegsIn == 0 {
		t.Skip("no TCP_INFO on this platform")
	}
	p1.Stop()
	m.waitJob(true) // on pool 2 now
	prev := before
	for range 50 {
		now := a.Stats().Wire
		if now.EstOut() < prev.EstOut() || now.EstIn() < prev.EstIn() || now.BytesOut < before.BytesOut {
			t.Fatalf("wire counters went backwards: %+v after %+v (before the switch %+v)", now, prev, before)
		}
		prev = now
		time.Sleep(5 * time.Millisecond)
	}
}

// fakePool answers btcagent's handshake but refuses the user.
func fakePool(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case strings.Contains(l, `"id":"sub"`):
						c.Write([]byte(`{"id":"sub","result":[[["mining.notify","01000000"]],"01000000",8],"error":null}` + "\n"))
					case strings.Contains(l, `"id":"auth"`):
						c.Write([]byte(`{"id":"auth","result":false,"error":[29,"Invalid username",null]}` + "\n"))
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestHandshakeErrorPrefixOnce: a refused authorize is logged as
// "upstream handshake: authorize refused: ..." with the prefix once.
func TestHandshakeErrorPrefixOnce(t *testing.T) {
	var log logBuf
	startAgentAt(t, log.logger(), nil, fakePool(t))
	waitFor(t, "the handshake failure in the log", func() bool { return strings.Contains(log.String(), "pool handshake failed") })
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "pool handshake failed") {
			if n := strings.Count(l, "upstream handshake"); n != 1 || !strings.Contains(l, "refused user") {
				t.Fatalf("%q: prefix %d times", l, n)
			}
		}
	}
}

// TestQuietShutdown: stopping the agent with a pool connected and miners
// on it logs no warning (the closed connections are its own).
func TestQuietShutdown(t *testing.T) {
	p := startEngine(t, 1)
	p.AddJob(false)
	var log logBuf
	cfg := Defaults()
	cfg.ListenIP, cfg.ListenPort = "127.0.0.1", 0
	host, port, _ := net.SplitHostPort(p.Addr)
	n, _ := strconv.Atoi(port)
	cfg.Pools = []Pool{{Host: host, Port: n, User: "kevin"}}
	a, err := New(cfg, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	<-a.Ready()
	m := dialMiner(t, a, "john.a001")
	m.waitJob(true)
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not stop")
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Fatalf("warnings on shutdown:\n%s", log.String())
	}
}

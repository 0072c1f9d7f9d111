package agent

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/enginetest"
)

// plainFront hides the agent protocol from the engine: it forwards an
// upstream connection line by line, dropping agent.get_capabilities and
// renaming the "btccom-agent/" subscribe agent, so the engine serves a
// plain stratum session and never answers the capability request, as a
// pool without the agent protocol (ckpool, most pools) behaves.
func plainFront(t *testing.T, backend string) string {
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
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			go func() {
				defer b.Close()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					if bytes.Contains(l, []byte("agent.get_capabilities")) {
						continue
					}
					l = bytes.ReplaceAll(l, []byte("btccom-agent/"), []byte("plain-miner/"))
					if _, err := b.Write(l); err != nil {
						return
					}
				}
			}()
			go func() { defer c.Close(); bufio.NewReader(b).WriteTo(c) }()
		}
	}()
	return ln.Addr().String()
}

// TestPlainStratumUpstream: with a pool that does not speak the agent
// protocol, the agent mines over plain Stratum V1 (negotiated with
// "auto", or forced with "stratum" against hashpool's engine itself): one
// upstream session for all miners, each miner's extranonce1 its 4-byte
// prefix of the pool's extranonce2, shares relayed as mining.submit and
// the pool's answers (accept, low difficulty, stale job) relayed back, the
// pool's difficulty relayed, version rolling kept, and failover to the
// next pool.
func TestPlainStratumUpstream(t *testing.T) {
	for _, mode := range []string{ProtoAuto, ProtoStratum} {
		t.Run(mode, func(t *testing.T) {
			p1, p2 := startEngine(t, 1), startEngine(t, 2)
			p1.AddJob(false)
			p2.AddJob(false)
			addrs := []string{p1.Addr, p2.Addr}
			if mode == ProtoAuto {
				addrs = []string{plainFront(t, p1.Addr), plainFront(t, p2.Addr)}
			}
			a := startAgentAt(t, nil, func(c *Config) { c.UpstreamProtocol = mode }, addrs...)
			m1 := dialMiner(t, a, "john.a001")
			m2 := dialMiner(t, a, "mary.b002")
			w := m1.waitJob(true)
			if m1.diff != enginetest.Difficulty {
				t.Fatalf("miner difficulty %v, want the pool's %v", m1.diff, enginetest.Difficulty)
			}
			vm := uint32(0x00002000)
			nonce := m1.findNonce(w, 1, w.ntime, vm, testExp, true)
			expectRes(t, "version-rolled share", m1.submit(w, 1, w.ntime, nonce, &vm), `"result":true`)
			rec := p1.NextShare()
			if rec.Status != btcpool.StatusAccept || rec.VersionMask != vm {
				t.Fatalf("record %+v", rec)
			}
			w2 := m2.waitJob(true)
			nonce = m2.findNonce(w2, 1, w2.ntime, 0, testExp, true) // same en2 as m1: the prefixes keep them apart
			expectRes(t, "second miner", m2.submit(w2, 1, w2.ntime, nonce, nil), `"result":true`)
			rec2 := p1.NextShare()
			if rec2.Status != btcpool.StatusAccept || rec2.SessionID != rec.SessionID {
				t.Fatalf("records %+v / %+v: want one pool session for both miners", rec, rec2)
			}
			nonce = m1.findNonce(w, 2, w.ntime, 0, testExp, false)
			expectRes(t, "low difficulty", m1.submit(w, 2, w.ntime, nonce, nil), `"error":[23`)
			p1.NextShare()
			expectRes(t, "unknown job", m1.submit(&work{jobID: "12345", job: w.job}, 3, w.ntime, 0, nil), `"error":[2`)
			if st := a.Stats(); st.Upstreams != 1 || st.UpFramesIn != 0 {
				t.Fatalf("stats %+v: want one plain upstream, no frames", st)
			}

			p1.Stop()
			w = m1.waitJob(true)
			nonce = m1.findNonce(w, 4, w.ntime, 0, testExp, true)
			expectRes(t, "share on pool 2", m1.submit(w, 4, w.ntime, nonce, nil), `"result":true`)
			if rec := p2.NextShare(); rec.Status != btcpool.StatusAccept {
				t.Fatalf("record on pool 2 %+v", rec)
			}
		})
	}
}

// TestAgentProtocolRequired: upstream_protocol "agent" refuses a pool
// without the agent protocol.
func TestAgentProtocolRequired(t *testing.T) {
	p := startEngine(t, 1)
	p.AddJob(false)
	var log logBuf
	a := startAgentAt(t, log.logger(), func(c *Config) { c.UpstreamProtocol = ProtoAgent }, plainFront(t, p.Addr))
	waitFor(t, "the refusal in the log", func() bool { return strings.Contains(log.String(), "does not speak the agent protocol") })
	if a.Stats().Connects != 0 {
		t.Fatal("connected")
	}
}

func TestAppendSV1Submit(t *testing.T) {
	s := agent.Submit{SessionID: 0x1234, ExtraNonce2: 0xa, Time: 0x5f000000, Nonce: 0xdeadbeef, VersionMask: 0x2000, HasVersionMask: true}
	got := string(appendSV1Submit(nil, 7, "kevin", []byte("6a1f"), []byte("0000"), &s))
	want := `{"id":7,"method":"mining.submit","params":["kevin","6a1f","00000000123400000000a","5f000000","deadbeef","00002000"]}` + "\n"
	want = strings.Replace(want, "00000000123400000000a", "0000"+"00001234"+"0000000a", 1)
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{"", `a"b`, strings.Repeat("a", 65), "a b"} {
		if sv1JobID([]byte(bad)) {
			t.Errorf("job id %q accepted", bad)
		}
	}
}

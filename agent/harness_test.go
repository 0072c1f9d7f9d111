package agent

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
	"github.com/hashpool/hashpool/sha"
)

// testExp is the pool's share difficulty exponent.
const testExp = enginetest.DifficultyExp

// startEngine runs a real engine on 127.0.0.1 as pool serverID.
func startEngine(t *testing.T, serverID uint8) *enginetest.Engine {
	t.Helper()
	return startEngineAt(t, serverID, "127.0.0.1:0")
}

func startEngineAt(t *testing.T, serverID uint8, listen string) *enginetest.Engine {
	t.Helper()
	return enginetest.Start(t, func(o *engine.Options) {
		o.ServerID, o.Listen, o.GracePeriod = serverID, listen, 100*time.Millisecond
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// startAgent runs an agent for the pools with cfg tweaked.
func startAgent(t *testing.T, tweak func(*Config), pools ...*enginetest.Engine) *Agent {
	t.Helper()
	var addrs []string
	for _, p := range pools {
		addrs = append(addrs, p.Addr)
	}
	return startAgentAt(t, nil, tweak, addrs...)
}

// startAgentAt runs an agent for pools at addrs (user "kevin"), logging to
// log (nil: silent), with cfg tweaked.
func startAgentAt(t *testing.T, log *slog.Logger, tweak func(*Config), addrs ...string) *Agent {
	t.Helper()
	cfg := Defaults()
	cfg.ListenIP, cfg.ListenPort = "127.0.0.1", 0
	for _, addr := range addrs {
		host, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		cfg.Pools = append(cfg.Pools, Pool{Host: host, Port: n, User: "kevin"})
	}
	cfg.SubmitResponseFromServer = true
	cfg.ReconnectMinMs = 50
	cfg.ReconnectMaxMs = 200
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return a
}

// work is a mining.notify as a miner sees it.
type work struct {
	jobID string
	job   *sha.Job
	cb1   []byte
	ntime uint32
	clean bool
}

// miner is a stratum client of the agent.
type miner struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	en1  []byte // 4 bytes from the subscribe result
	id   int
	last *work
	diff float64
}

func dialMiner(t *testing.T, a *Agent, login string) *miner {
	t.Helper()
	c, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &miner{t: t, conn: c, r: bufio.NewReader(c)}
	res := m.call(`"mining.subscribe",["cgminer/4.10.0"]`)
	var msg stratum.Message
	if err := stratum.Parse([]byte(res), &msg); err != nil {
		t.Fatal(err)
	}
	en1, _ := msg.Result.Index(1).Str()
	size, _ := msg.Result.Index(2).Int64()
	if len(en1) != 8 || !strings.HasPrefix(string(en1), "0000") || size != 4 {
		t.Fatalf("subscribe result %s", res)
	}
	m.en1 = mustHex(string(en1))
	if res := m.call(`"mining.authorize",["` + login + `","x"]`); !strings.Contains(res, `"result":true`) {
		t.Fatalf("authorize: %s", res)
	}
	return m
}

// call sends a request and returns its response, handling notifications
// that arrive in between.
func (m *miner) call(methodParams string) string {
	m.t.Helper()
	m.id++
	line := fmt.Sprintf(`{"id":%d,"method":%s}`+"\n", m.id, strings.Replace(methodParams, ",", `,"params":`, 1))
	if _, err := m.conn.Write([]byte(line)); err != nil {
		m.t.Fatal(err)
	}
	want := fmt.Sprintf(`{"id":%d,`, m.id)
	for i := 0; i < 100; i++ {
		l := m.recv()
		if strings.HasPrefix(l, want) {
			return l
		}
		m.notification(l)
	}
	m.t.Fatalf("no response to %s", line)
	return ""
}

func (m *miner) recv() string {
	m.t.Helper()
	m.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := m.r.ReadString('\n')
	if err != nil {
		m.t.Fatalf("miner read: %v (%q)", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

// waitJob reads until a notify (with clean_jobs=clean when wantClean) arrives.
func (m *miner) waitJob(wantClean bool) *work {
	m.t.Helper()
	for i := 0; i < 100; i++ {
		if w := m.notification(m.recv()); w != nil && (!wantClean || w.clean) {
			return w
		}
	}
	m.t.Fatal("no job")
	return nil
}

func (m *miner) notification(l string) *work {
	var msg stratum.Message
	if err := stratum.Parse([]byte(l), &msg); err != nil {
		m.t.Fatalf("miner got bad line %q", l)
	}
	switch {
	case msg.IsMethod(stratum.MethodSetDifficulty):
		m.diff, _ = msg.Param(0).Float64()
	case msg.IsMethod(stratum.MethodNotify):
		jobID, _ := msg.Param(0).Str()
		prevHex, _ := msg.Param(1).Str()
		cb1Hex, _ := msg.Param(2).Str()
		cb2Hex, _ := msg.Param(3).Str()
		prevBE := mustHex(string(prevHex))
		var prev [32]byte
		for w := 0; w < 32; w += 4 { // prevHashBeStr swaps each 4-byte word
			prev[w], prev[w+1], prev[w+2], prev[w+3] = prevBE[w+3], prevBE[w+2], prevBE[w+1], prevBE[w]
		}
		var branch [][32]byte
		it := msg.Param(4).Elems()
		for {
			v, ok := it.Next()
			if !ok {
				break
			}
			s, _ := v.Str()
			branch = append(branch, [32]byte(mustHex(string(s))))
		}
		num := func(i int) uint32 {
			s, _ := msg.Param(i).Str()
			v, err := strconv.ParseUint(string(s), 16, 32)
			if err != nil {
				m.t.Fatalf("notify param %d %q", i, s)
			}
			return uint32(v)
		}
		clean, _ := msg.Param(8).Bool()
		cb1 := mustHex(string(cb1Hex))
		w := &work{jobID: string(jobID), cb1: cb1, ntime: num(7), clean: clean,
			job: sha.NewJob(cb1, mustHex(string(cb2Hex)), branch, num(5), prev, num(6))}
		m.last = w
		return w
	}
	return nil
}

// findNonce returns a nonce whose hash meets (want) or misses 2^exp.
func (m *miner) findNonce(w *work, en2, ntime, vmask uint32, exp int, want bool) uint32 {
	m.t.Helper()
	target := sha.DiffToTarget(math.Ldexp(1, exp))
	var h sha.Hasher
	var e [4]byte
	binary.BigEndian.PutUint32(e[:], en2)
	for nonce := uint32(0); nonce < 1<<22; nonce++ {
		hash := h.ShareHash(w.job, m.en1, e[:], ntime, nonce, vmask)
		if sha.HashMeetsTarget(&hash, &target) == want {
			return nonce
		}
	}
	m.t.Fatalf("no nonce meets=%v for 2^%d", want, exp)
	return 0
}

// submit sends a share and returns the response line.
func (m *miner) submit(w *work, en2, ntime, nonce uint32, vmask *uint32) string {
	m.t.Helper()
	p := fmt.Sprintf(`"mining.submit",["x.a001","%s","%08x","%08x","%08x"`, w.jobID, en2, ntime, nonce)
	if vmask != nil {
		p += fmt.Sprintf(`,"%08x"`, *vmask)
	}
	return m.call(p + "]")
}

func stratumHex(b []byte) string { return hex.EncodeToString(b) }

func (m *miner) submitLine(w *work, en2, ntime, nonce uint32) string {
	m.id++
	return fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["x.a001","%s","%08x","%08x","%08x"]}`+"\n", m.id, w.jobID, en2, ntime, nonce)
}

func (m *miner) writeLines(lines []string) {
	m.t.Helper()
	if _, err := m.conn.Write([]byte(strings.Join(lines, ""))); err != nil {
		m.t.Fatal(err)
	}
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

package sv2proxy

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Options{Upstreams: []Upstream{{Addr: "nohost"}, {Addr: "h:1", Authority: [32]byte{1}, User: `a"b`}},
		Mode: 7, ExtraNonce2Size: 9, MaxLine: 10, MinerQueue: 1, AuthorizeTimeout: -1, ReconnectMin: time.Minute, ReconnectMax: time.Second}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"upstream 0: address", "upstream 0 (nohost): authority key", "upstream 1 (h:1): user",
		"mode 7", "ExtraNonce2Size 9", "MaxLine 10", "MinerQueue 1", "AuthorizeTimeout", "ReconnectMax"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := (Options{}).Validate(); err == nil || !strings.Contains(err.Error(), "at least one upstream") {
		t.Errorf("no upstreams: %v", err)
	}
	if err := (Options{Upstreams: []Upstream{{Addr: "127.0.0.1:3336", Authority: [32]byte{1}}}}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestParseUpstream(t *testing.T) {
	k, _ := noise.GenerateKey()
	key := noise.FormatAuthorityKey(noise.XOnly(k))
	u, err := ParseUpstream("sv2://pool.example:3336", key, "farm")
	if err != nil || u.Addr != "pool.example:3336" || u.Authority != noise.XOnly(k) || u.User != "farm" {
		t.Fatalf("%+v %v", u, err)
	}
	for _, bad := range [][2]string{{"pool.example:3336", key}, {"sv2://pool.example", key}, {"sv2://h:1", key[:len(key)-1]}} {
		if _, err := ParseUpstream(bad[0], bad[1], "farm"); err == nil {
			t.Errorf("ParseUpstream(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// TestReconnectAndShutdown: a pool's Reconnect sends the translator to the
// server it names (with the same authority key: the second server here
// has the first's key), the miner stays connected and gets a clean job
// from it; when Run's context ends every miner is closed and Run returns.
func TestReconnectAndShutdown(t *testing.T) {
	p1 := startScriptPool(t)
	p2 := startScriptPoolKey(t, p1.key)
	other := startScriptPool(t) // the configured second pool: never used
	tr, err := New(Options{Mode: SharedChannel, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
		Upstreams: []Upstream{{Addr: p1.addr, Authority: p1.authority}, {Addr: other.addr, Authority: other.authority}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go tr.Serve(ln)
	go func() { done <- tr.Run(ctx) }()

	c1 := p1.accept()
	p1.open(c1, 1, []byte{1}, 8, 1)
	m := dialMiner(t, ln.Addr().String(), "x.y", false)
	p1.send(c1, sv2.AppendNewExtendedMiningJob(nil, testJob(1, 1, 0)))
	p1.send(c1, sv2.AppendSetNewPrevHash(nil, &sv2.SetNewPrevHash{ChannelID: 1, JobID: 1, MinNTime: 10, NBits: 1}))
	m.waitClean(0)
	_, port, _ := net.SplitHostPort(p2.addr)
	pn, _ := strconv.Atoi(port)
	p1.send(c1, sv2.AppendReconnect(nil, &sv2.Reconnect{NewPort: uint16(pn)})) // same host, new port

	c2 := p2.accept()
	p2.open(c2, 9, []byte{2}, 8, 2)
	p2.send(c2, sv2.AppendNewExtendedMiningJob(nil, testJob(9, 1, 0)))
	p2.send(c2, sv2.AppendSetNewPrevHash(nil, &sv2.SetNewPrevHash{ChannelID: 9, JobID: 1, MinNTime: 20, NBits: 1}))
	m.waitClean(1)
	if m.job.ntime != 20 || m.diff != 2 || m.job.cb1[len(m.job.cb1)-1] != 2 {
		t.Fatalf("job after Reconnect %+v, difficulty %v", m.job, m.diff)
	}
	if up, _ := tr.Upstream(); up != p2.addr {
		t.Fatalf("upstream %q, want %q", up, p2.addr)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	for range m.lines { // closed by the translator
	}
	if n := tr.Stats().Miners.Load(); n != 0 {
		t.Fatalf("%d miners after shutdown", n)
	}
}

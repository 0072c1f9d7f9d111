package tlsfront

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
	"github.com/hashpool/hashpool/tlsfront/tlstest"
)

// startPool runs a real engine that requires PROXY v1 (Simulator: any
// nonce meets the share target) and a Front before it.
func startPool(t testing.TB, chain *tlstest.Chain, tweak func(*Options)) (*enginetest.Engine, *Front) {
	t.Helper()
	e := enginetest.Start(t, func(o *engine.Options) { o.ProxyProtocol, o.Simulator = true, true })
	e.AddJob(false)
	o := NewOptions()
	o.Listen, o.Backend, o.CertFile, o.KeyFile = "127.0.0.1:0", e.Addr, chain.CertFile, chain.KeyFile
	if tweak != nil {
		tweak(&o)
	}
	f, err := New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx) }()
	select {
	case <-f.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(20 * time.Second):
			t.Error("front did not stop")
		}
	})
	return e, f
}

// tlsMiner is a stratum client over TLS from a chosen loopback address.
type tlsMiner struct {
	t    testing.TB
	c    *tls.Conn
	r    *bufio.Reader
	id   int
	job  string
	time string
}

func dialTLS(t testing.TB, f *Front, from string, cfg *tls.Config) (*tlsMiner, error) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := tls.DialWithDialer(&d, "tcp", f.Addr().String(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &tlsMiner{t: t, c: c, r: bufio.NewReader(c)}, nil
}

func (m *tlsMiner) call(method, params string) string {
	m.t.Helper()
	m.id++
	fmt.Fprintf(m.c, `{"id":%d,"method":"%s","params":%s}`+"\n", m.id, method, params)
	want := fmt.Sprintf(`{"id":%d,`, m.id)
	for range 100 {
		m.c.SetReadDeadline(time.Now().Add(15 * time.Second))
		l, err := m.r.ReadString('\n')
		if err != nil {
			m.t.Fatalf("read: %v", err)
		}
		if strings.HasPrefix(l, want) {
			return l
		}
		var msg stratum.Message
		if stratum.Parse([]byte(l), &msg) == nil && msg.IsMethod(stratum.MethodNotify) {
			j, _ := msg.Param(0).Str()
			tm, _ := msg.Param(7).Str()
			m.job, m.time = string(j), string(tm)
		}
	}
	m.t.Fatalf("no answer to %s", method)
	return ""
}

// waitJob reads until a notify arrived.
func (m *tlsMiner) waitJob() {
	m.t.Helper()
	for m.job == "" {
		m.call("mining.extranonce.subscribe", "[]")
	}
}

func (m *tlsMiner) mine(login string, shares int) {
	m.t.Helper()
	if r := m.call("mining.subscribe", `["cgminer/4.10.0"]`); !strings.Contains(r, `"result":[`) {
		m.t.Fatalf("subscribe: %s", r)
	}
	if r := m.call("mining.authorize", `["`+login+`","x"]`); !strings.Contains(r, `"result":true`) {
		m.t.Fatalf("authorize: %s", r)
	}
	m.waitJob()
	for i := range shares {
		r := m.call("mining.submit", fmt.Sprintf(`["%s","%s","%016x","%s","%08x"]`, login, m.job, i+1, m.time, i))
		if !strings.Contains(r, `"result":true`) {
			m.t.Fatalf("share %d: %s", i, r)
		}
	}
}

// TestSessionThroughFront: a miner on TLS from 127.0.0.2 (CA → server
// certificate, verified) mines on the engine like a plain session, and the
// engine's share records carry the miner's address from the PROXY header,
// not the front's.
func TestSessionThroughFront(t *testing.T) {
	chain := tlstest.New(t, t.TempDir(), "pool", "pool.test", "127.0.0.1")
	e, f := startPool(t, chain, nil)
	m, err := dialTLS(t, f, "127.0.0.2", &tls.Config{RootCAs: chain.CA, ServerName: "pool.test"})
	if err != nil {
		t.Fatal(err)
	}
	m.mine("alice.rig1", 3)
	for _, s := range shares(t, e, 3) {
		if s.Status != btcpool.StatusAccept || s.IP != netip.MustParseAddr("127.0.0.2") {
			t.Fatalf("share %+v: want accepted from 127.0.0.2", s)
		}
	}
	if st := f.Stats(); st.Sessions != 1 || st.Handshakes != 1 {
		t.Fatalf("stats %+v", st)
	}
	m.c.Close() // the session ends on both sides
	deadline := time.Now().Add(20 * time.Second)
	for f.Stats().Sessions != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("session still open after the miner left: %+v", f.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.mu.Lock()
	n := len(f.conns)
	f.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d connections still tracked", n)
	}
}

// TestFrontRefuses: an unverifiable certificate fails the client's check,
// TLS 1.1 is refused, a connection that never handshakes is closed after
// HandshakeTimeout, and sessions past MaxSessions are closed at accept.
func TestFrontRefuses(t *testing.T) {
	dir := t.TempDir()
	chain := tlstest.New(t, dir, "pool", "pool.test")
	other := tlstest.New(t, dir, "other", "pool.test")
	_, f := startPool(t, chain, func(o *Options) { o.HandshakeTimeout, o.MaxSessions = 300*time.Millisecond, 2 })
	if _, err := dialTLS(t, f, "127.0.0.1", &tls.Config{RootCAs: other.CA, ServerName: "pool.test"}); err == nil {
		t.Fatal("a certificate from another CA verified")
	}
	if _, err := dialTLS(t, f, "127.0.0.1", &tls.Config{RootCAs: chain.CA, ServerName: "pool.test", MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	raw, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("silent connection: read %v, want closed by the front", err)
	}
	// Under TLS 1.3 the server's side of the other-CA handshake may
	// complete before the client refuses the certificate: wait until
	// every refused connection is gone.
	deadline := time.Now().Add(20 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.conns)
		f.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refused connections still tracked", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Two sessions fill MaxSessions; the third is closed at once.
	for range 2 {
		m, err := dialTLS(t, f, "127.0.0.1", &tls.Config{RootCAs: chain.CA, ServerName: "pool.test"})
		if err != nil {
			t.Fatal(err)
		}
		m.call("mining.subscribe", `["cgminer"]`)
	}
	if _, err := dialTLS(t, f, "127.0.0.1", &tls.Config{RootCAs: chain.CA, ServerName: "pool.test"}); err == nil {
		t.Fatal("a session past MaxSessions completed its handshake")
	}
	if st := f.Stats(); st.Refused < 1 || st.HandshakeErrs < 2 { // a refused TLS 1.3 handshake may also be counted at accept
		t.Fatalf("stats %+v", st)
	}
}

// TestReload: new files are picked up by Reload and by the file check;
// sessions in progress keep running; a bad pair keeps the old one.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	first := tlstest.New(t, dir, "first", "pool.test")
	second := tlstest.New(t, dir, "second", "pool.test")
	live := tlstest.New(t, dir, "live", "pool.test") // the files the front reads
	copyFile(t, first.CertFile, live.CertFile)
	copyFile(t, first.KeyFile, live.KeyFile)
	_, f := startPool(t, live, func(o *Options) { o.ReloadCheck = 50 * time.Millisecond })
	old, err := dialTLS(t, f, "127.0.0.1", &tls.Config{RootCAs: first.CA, ServerName: "pool.test"})
	if err != nil {
		t.Fatal(err)
	}
	old.call("mining.subscribe", `["cgminer"]`)
	copyFile(t, second.CertFile, live.CertFile)
	copyFile(t, second.KeyFile, live.KeyFile)
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLS(t, f, "127.0.0.1", &tls.Config{RootCAs: second.CA, ServerName: "pool.test"}); err != nil {
		t.Fatalf("after Reload: %v", err)
	}
	old.call("mining.extranonce.subscribe", "[]") // the old session still works
	// A broken key file: Reload fails, the second pair stays in use.
	os.WriteFile(live.KeyFile, []byte("not a key"), 0o600)
	if err := f.Reload(); err == nil {
		t.Fatal("Reload accepted a bad key")
	}
	if _, err := dialTLS(t, f, "127.0.0.1", &tls.Config{RootCAs: second.CA, ServerName: "pool.test"}); err != nil {
		t.Fatalf("after a failed Reload: %v", err)
	}
	// The file check: back to the first pair without calling Reload.
	copyFile(t, first.KeyFile, live.KeyFile)
	copyFile(t, first.CertFile, live.CertFile)
	now := time.Now().Add(time.Minute) // a new modification time even on coarse clocks
	os.Chtimes(live.CertFile, now, now)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := dialTLS(t, f, "127.0.0.1", &tls.Config{RootCAs: first.CA, ServerName: "pool.test"}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("changed files were not reloaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shares reads n share records from the engine's share topic.
func shares(t testing.TB, e *enginetest.Engine, n int) []btcpool.Share {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []btcpool.Share
	for len(out) < n {
		msgs, err := e.Shares.Poll(ctx)
		if err != nil {
			t.Fatalf("share topic: %v (%d of %d records)", err, len(out), n)
		}
		for _, m := range msgs {
			var s btcpool.Share
			if err := btcpool.DecodeShareMessage(m.Value, &s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendProxyHeader(t *testing.T) {
	for _, tc := range []struct {
		src, dst net.Addr
		want     string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5555}, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 3443},
			"PROXY TCP4 192.0.2.1 127.0.0.1 5555 3443\r\n"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}, &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 2},
			"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}, &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 2},
			"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1 2\r\n"},
		{&net.UnixAddr{Name: "x"}, &net.TCPAddr{}, "PROXY UNKNOWN\r\n"},
	} {
		if got := string(AppendProxyHeader(nil, tc.src, tc.dst)); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	o := Options{}
	err := o.Validate()
	for _, want := range []string{"listen", "backend", "certificate", "handshake", "max sessions", "buffer"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

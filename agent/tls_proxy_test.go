package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
	"github.com/hashpool/hashpool/tlsfront"
	"github.com/hashpool/hashpool/tlsfront/tlstest"
)

// logBuf collects an agent's log lines (slog handlers write from many goroutines).
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond every 20 ms for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startTLSPool runs the engine (PROXY v1 required) behind a tlsfront.Front
// with chain's certificate and returns the engine and the TLS address.
func startTLSPool(t *testing.T, chain *tlstest.Chain) (*enginetest.Engine, string) {
	t.Helper()
	e := enginetest.Start(t, func(o *engine.Options) {
		o.ServerID, o.GracePeriod, o.ProxyProtocol = 1, 100*time.Millisecond, true
	})
	e.AddJob(false)
	o := tlsfront.NewOptions()
	o.Listen, o.Backend, o.CertFile, o.KeyFile = "127.0.0.1:0", e.Addr, chain.CertFile, chain.KeyFile
	f, err := tlsfront.New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx) }()
	<-f.Ready()
	t.Cleanup(func() { cancel(); <-done })
	return e, f.Addr().String()
}

// mineOne has a miner of a mine one valid share and checks the pool's record.
func mineOne(t *testing.T, a *Agent, e *enginetest.Engine, login string, en2 uint32) {
	t.Helper()
	m := dialMiner(t, a, login)
	w := m.waitJob(true)
	nonce := m.findNonce(w, en2, w.ntime, 0, testExp, true)
	expectRes(t, "share", m.submit(w, en2, w.ntime, nonce, nil), `"result":true`)
	rec := e.NextShare()
	_, worker, _ := strings.Cut(login, ".")
	if rec.WorkerHashID != engine.WorkerID(worker) {
		t.Fatalf("record %+v: want worker %s", rec, worker)
	}
}

// TestTLSUpstream: pool_use_tls against a real TLS front (CA → server
// certificate made here): verified with pool_tls_ca_file, with a pinned
// leaf, or with verification skipped; a certificate from another CA, or
// a wrong pin, never gets a pool connection.
func TestTLSUpstream(t *testing.T) {
	dir := t.TempDir()
	chain := tlstest.New(t, dir, "pool", "127.0.0.1", "pool.test")
	other := tlstest.New(t, dir, "other", "127.0.0.1")
	e, addr := startTLSPool(t, chain)
	for i, tc := range []struct {
		name  string
		tweak func(*Config)
	}{
		{"ca file", func(c *Config) { c.PoolTLSCAFile = chain.CAFile }},
		{"ca file and server name", func(c *Config) { c.PoolTLSCAFile, c.PoolTLSServerName = chain.CAFile, "pool.test" }},
		{"pinned", func(c *Config) { c.PoolTLSCertSHA256 = strings.ToUpper(chain.LeafSHA256) }},
		{"skip verify", func(c *Config) { c.PoolTLSSkipVerify = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startAgentAt(t, nil, func(c *Config) { c.PoolUseTLS = true; tc.tweak(c) }, addr)
			mineOne(t, a, e, "john.tls"+tc.name[:2], uint32(10+i))
		})
	}
	for _, tc := range []struct {
		name, want string
		tweak      func(*Config)
	}{
		{"system roots", "certificate", func(*Config) {}},
		{"another CA", "certificate", func(c *Config) { c.PoolTLSCAFile = other.CAFile }},
		{"wrong name", "certificate", func(c *Config) { c.PoolTLSCAFile, c.PoolTLSServerName = chain.CAFile, "evil.test" }},
		{"wrong pin", "does not match", func(c *Config) { c.PoolTLSCertSHA256 = other.LeafSHA256 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log logBuf
			a := startAgentAt(t, log.logger(), func(c *Config) { c.PoolUseTLS = true; tc.tweak(c) }, addr)
			waitFor(t, "a failed TLS handshake in the log", func() bool { return strings.Contains(log.String(), tc.want) })
			if st := a.Stats(); st.Connects != 0 {
				t.Fatalf("connected to a pool with an unverified certificate: %+v", st)
			}
		})
	}
}

// socks5Server is a real SOCKS5 proxy (RFC 1928/1929, CONNECT only) that
// requires user "u" password "p" when auth is set.
type socks5Server struct {
	ln    net.Listener
	auth  bool
	conns atomic.Int64
}

func startSocks5(t *testing.T, auth bool) *socks5Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socks5Server{ln: ln, auth: auth}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(t, c)
		}
	}()
	return s
}

func (s *socks5Server) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b [512]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[0] != 5 {
		return
	}
	methods := b[:b[1]]
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	want := byte(0)
	if s.auth {
		want = 2
	}
	if bytes.IndexByte(methods, want) < 0 {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	if s.auth {
		io.ReadFull(c, b[:2])
		user := make([]byte, b[1])
		io.ReadFull(c, user)
		io.ReadFull(c, b[:1])
		pass := make([]byte, b[0])
		io.ReadFull(c, pass)
		if string(user) != "u" || string(pass) != "p" {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil || b[1] != 1 {
		return
	}
	var host string
	switch b[3] {
	case 1:
		io.ReadFull(c, b[:4])
		host = net.IP(b[:4]).String()
	case 3:
		io.ReadFull(c, b[:1])
		n := int(b[0])
		io.ReadFull(c, b[:n])
		host = string(b[:n])
	case 4:
		io.ReadFull(c, b[:16])
		host = net.IP(b[:16]).String()
	}
	io.ReadFull(c, b[:2])
	port := binary.BigEndian.Uint16(b[:2])
	up, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	c.SetDeadline(time.Time{})
	s.conns.Add(1)
	relay(c, up)
}

// relay pipes a and b until either ends.
func relay(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(a, b); a.Close(); done <- struct{}{} }()
	go func() { io.Copy(b, a); b.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// httpProxy is a real HTTP CONNECT proxy (net/http server, hijacked
// tunnels) that requires Basic u:p when auth is set.
type httpProxy struct {
	addr  string
	conns atomic.Int64
}

func startHTTPProxy(t *testing.T, auth bool) *httpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &httpProxy{addr: ln.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		if auth && r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")) {
			w.Header().Set("Proxy-Authenticate", "Basic")
			http.Error(w, "auth", http.StatusProxyAuthRequired)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		rw.Flush()
		p.conns.Add(1)
		relay(&bufConn{Conn: c, r: rw.Reader}, up)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

// bufConn reads what the server already buffered first.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestProxies: shares reach the pool through a real SOCKS5 proxy and a real
// HTTP CONNECT proxy (with and without credentials); with a dead proxy
// listed first the live one wins the race; bad credentials and a dead
// proxy alone fail unless direct_connect_after_proxy.
func TestProxies(t *testing.T) {
	e := startEngine(t, 1)
	e.AddJob(false)
	socks, socksAuth := startSocks5(t, false), startSocks5(t, true)
	hp, hpAuth := startHTTPProxy(t, false), startHTTPProxy(t, true)
	dead := func() string { // a port nobody listens on
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		a := ln.Addr().String()
		ln.Close()
		return a
	}()
	for i, tc := range []struct {
		name    string
		proxies []string
		used    func() int64
	}{
		{"socks5", []string{"socks5://" + socks.ln.Addr().String()}, socks.conns.Load},
		{"socks5 with auth", []string{"socks5://u:p@" + socksAuth.ln.Addr().String()}, socksAuth.conns.Load},
		{"http", []string{"http://" + hp.addr}, hp.conns.Load},
		{"http with auth, bare host:port", []string{"u:p@" + hpAuth.addr}, hpAuth.conns.Load},
		{"dead proxy first", []string{"socks5://" + dead, "http://" + hp.addr}, hp.conns.Load},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.used()
			a := startAgentAt(t, nil, func(c *Config) { c.Proxy, c.DirectConnectAfterProxy = tc.proxies, false }, e.Addr)
			mineOne(t, a, e, "john.px"+strconv.Itoa(i), uint32(20+i))
			if tc.used() != before+1 {
				t.Fatalf("the proxy tunnelled %d connections, want 1", tc.used()-before)
			}
		})
	}
	for _, tc := range []struct {
		name, want string
		tweak      func(*Config)
	}{
		{"socks5 bad password", "user/password refused", func(c *Config) { c.Proxy = []string{"socks5://u:x@" + socksAuth.ln.Addr().String()} }},
		{"http bad password", "407", func(c *Config) { c.Proxy = []string{"http://u:x@" + hpAuth.addr} }},
		{"dead proxy only", "proxy socks5://" + dead, func(c *Config) { c.Proxy = []string{"socks5://" + dead} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log logBuf
			a := startAgentAt(t, log.logger(), func(c *Config) { c.DirectConnectAfterProxy = false; tc.tweak(c) }, e.Addr)
			waitFor(t, "the proxy failure in the log", func() bool { return strings.Contains(log.String(), tc.want) })
			if st := a.Stats(); st.Connects != 0 {
				t.Fatalf("connected without the proxy: %+v", st)
			}
		})
	}
	t.Run("direct after a dead proxy", func(t *testing.T) {
		a := startAgentAt(t, nil, func(c *Config) { c.Proxy = []string{"socks5://" + dead} }, e.Addr)
		mineOne(t, a, e, "john.direct", 40)
	})
	t.Run("use_proxy false", func(t *testing.T) {
		a := startAgentAt(t, nil, func(c *Config) {
			c.Proxy, c.UseProxy, c.DirectConnectAfterProxy = []string{"socks5://" + dead}, false, false
		}, e.Addr)
		mineOne(t, a, e, "john.noproxy", 41)
	})
}

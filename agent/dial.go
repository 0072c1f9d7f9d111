package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// proxySpec is one parsed proxy entry.
type proxySpec struct {
	scheme     string // "socks5", "http", "https", or "system" (resolved when dialing)
	addr       string // host:port
	user, pass string
	hasAuth    bool
}

func (p proxySpec) String() string {
	if p.scheme == "system" {
		return "system"
	}
	return p.scheme + "://" + p.addr
}

// parseProxy reads one entry of the proxy key (BtcAgent's formats).
func parseProxy(s string) (proxySpec, error) {
	s = strings.TrimSpace(s)
	if s == "system" {
		return proxySpec{scheme: "system"}, nil
	}
	if len(s) > 512 {
		return proxySpec{}, errors.New("longer than 512 characters")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s // BtcAgent's default scheme
	}
	u, err := url.Parse(s)
	if err != nil {
		return proxySpec{}, fmt.Errorf("%q: %v", s, err)
	}
	p := proxySpec{scheme: strings.ToLower(u.Scheme), addr: u.Host}
	switch p.scheme {
	case "socks5", "socks5h":
		p.scheme = "socks5"
	case "http", "https":
	case "socks4", "socks4a":
		return proxySpec{}, fmt.Errorf("%q: SOCKS4 is not supported (no authentication, IPv4 only): use socks5://", s)
	default:
		return proxySpec{}, fmt.Errorf("%q: scheme %q: want socks5, http or https", s, u.Scheme)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return proxySpec{}, fmt.Errorf("%q: want scheme://host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return proxySpec{}, fmt.Errorf("%q: port %q", s, port)
	}
	if u.User != nil {
		p.user = u.User.Username()
		p.pass, _ = u.User.Password()
		p.hasAuth = true
		if len(p.user) > 255 || len(p.pass) > 255 {
			return proxySpec{}, fmt.Errorf("%q: user and password at most 255 bytes each", s)
		}
	}
	if u.Path != "" && u.Path != "/" {
		return proxySpec{}, fmt.Errorf("%q: a proxy URL has no path", s)
	}
	return p, nil
}

// systemProxy returns the proxy named by the environment, as BtcAgent
// looks it up (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, each in either case).
func systemProxy() (proxySpec, bool) {
	for _, k := range []string{"ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if v := os.Getenv(k); v != "" {
			p, err := parseProxy(v)
			return p, err == nil && p.scheme != "system"
		}
	}
	return proxySpec{}, false
}

// parsePin reads a certificate fingerprint: 64 hex digits, colons allowed.
func parsePin(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("want the 64 hex digits of a SHA-256 fingerprint (colons allowed)")
	}
	return b, nil
}

// dialer connects to pools: directly or through the configured proxies
// (raced), then TLS when pool_use_tls.
type dialer struct {
	cfg     *Config
	proxies []proxySpec
	tls     *tls.Config // nil without pool_use_tls; ServerName set per pool
	pin     []byte
}

// newDialer checks and loads what dialing needs (the CA file is read once).
func newDialer(cfg *Config) (*dialer, error) {
	d := &dialer{cfg: cfg}
	if cfg.UseProxy {
		for _, s := range cfg.Proxy {
			p, err := parseProxy(s)
			if err != nil {
				return nil, fmt.Errorf("agent: proxy: %w", err)
			}
			d.proxies = append(d.proxies, p)
		}
	}
	if !cfg.PoolUseTLS {
		return d, nil
	}
	d.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.PoolTLSCAFile != "" {
		pem, err := os.ReadFile(cfg.PoolTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("agent: pool_tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("agent: pool_tls_ca_file %s: no PEM certificate in it", cfg.PoolTLSCAFile)
		}
		d.tls.RootCAs = pool
	}
	switch {
	case cfg.PoolTLSSkipVerify:
		d.tls.InsecureSkipVerify = true
	case cfg.PoolTLSCertSHA256 != "":
		pin, err := parsePin(cfg.PoolTLSCertSHA256)
		if err != nil {
			return nil, fmt.Errorf("agent: pool_tls_cert_sha256: %w", err)
		}
		d.pin = pin
		// The pin replaces the chain check: crypto/tls still checks that
		// the peer holds the certificate's key.
		d.tls.InsecureSkipVerify = true
		d.tls.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("pool sent no certificate")
			}
			sum := sha256.Sum256(raw[0])
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("pool certificate sha256 %x does not match pool_tls_cert_sha256", sum)
			}
			return nil
		}
	}
	return d, nil
}

// conn is a dialed pool connection: c carries the protocol (TLS or
// plain), raw is the TCP socket under it (for TCP_INFO), via names the
// proxy used ("" direct).
type dialed struct {
	c, raw net.Conn
	via    string
}

// dial connects to p: through the proxies (all at once, the first that
// connects wins, like BtcAgent), direct alongside them with
// direct_connect_with_proxy or after them with direct_connect_after_proxy.
func (d *dialer) dial(ctx context.Context, p Pool) (dialed, error) {
	timeout := time.Duration(d.cfg.DialTimeoutSec) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var routes []*proxySpec
	for i := range d.proxies {
		pr := &d.proxies[i]
		if pr.scheme == "system" {
			sp, ok := systemProxy()
			if !ok {
				continue
			}
			pr = &sp
		}
		routes = append(routes, pr)
	}
	if len(routes) == 0 {
		return d.dialVia(ctx, p, nil)
	}
	if d.cfg.DirectConnectWithProxy {
		routes = append(routes, nil)
	}
	type result struct {
		c   dialed
		err error
	}
	res := make(chan result, len(routes))
	raceCtx, stopRace := context.WithCancel(ctx)
	for _, r := range routes {
		go func() {
			c, err := d.dialVia(raceCtx, p, r)
			res <- result{c, err}
		}()
	}
	var errs []error
	var won dialed
	for range routes {
		r := <-res
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case won.c == nil:
			won = r.c
			stopRace() // the others give up; any that still connect are closed below
		default:
			r.c.c.Close()
		}
	}
	stopRace()
	if won.c != nil {
		return won, nil
	}
	if d.cfg.DirectConnectAfterProxy && !d.cfg.DirectConnectWithProxy {
		c, err := d.dialVia(ctx, p, nil)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return dialed{}, errors.Join(errs...)
}

// dialVia connects to p through proxy pr (nil: directly), then TLS.
func (d *dialer) dialVia(ctx context.Context, p Pool, pr *proxySpec) (dialed, error) {
	var nd net.Dialer
	target := p.Addr()
	addr, via := target, ""
	if pr != nil {
		addr, via = pr.addr, pr.String()
	}
	raw, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		if pr != nil {
			return dialed{}, fmt.Errorf("proxy %s: %w", via, err)
		}
		return dialed{}, err
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAlive(true)
		tc.SetKeepAlivePeriod(60 * time.Second)
	}
	c := raw
	fail := func(err error) (dialed, error) {
		c.Close()
		raw.Close()
		if pr != nil {
			return dialed{}, fmt.Errorf("proxy %s: %w", via, err)
		}
		return dialed{}, err
	}
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if pr != nil {
		if pr.scheme == "https" {
			tc := tls.Client(raw, &tls.Config{MinVersion: tls.VersionTLS12, ServerName: hostOf(pr.addr),
				InsecureSkipVerify: d.cfg.PoolTLSSkipVerify})
			if err := tc.HandshakeContext(ctx); err != nil {
				return fail(fmt.Errorf("TLS to the proxy: %w", err))
			}
			c = tc
		}
		switch pr.scheme {
		case "socks5":
			err = socks5Connect(c, pr, p.Host, uint16(p.Port))
		default:
			err = httpConnect(c, pr, target)
		}
		if err != nil {
			return fail(err)
		}
	}
	if d.tls != nil {
		tcfg := d.tls.Clone()
		tcfg.ServerName = d.cfg.PoolTLSServerName
		if tcfg.ServerName == "" {
			tcfg.ServerName = p.Host
		}
		tc := tls.Client(c, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("TLS: %w", err))
		}
		c = tc
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	raw.SetDeadline(time.Time{})
	return dialed{c: c, raw: raw, via: via}, nil
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// Proxy protocol errors.
var (
	errSocks = errors.New("socks5")
	errHTTP  = errors.New("http proxy")
)

// socks5Connect asks a SOCKS5 proxy (RFC 1928, user/password RFC 1929)
// on c for a connection to host:port; the host goes as a domain name
// unless it is an IP address, so the proxy resolves it.
func socks5Connect(c net.Conn, pr *proxySpec, host string, port uint16) error {
	methods := []byte{5, 1, 0}
	if pr.hasAuth {
		methods = []byte{5, 2, 0, 2}
	}
	if _, err := c.Write(methods); err != nil {
		return fmt.Errorf("%w: %v", errSocks, err)
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return fmt.Errorf("%w: greeting: %v", errSocks, err)
	}
	if b[0] != 5 {
		return fmt.Errorf("%w: not a SOCKS5 proxy (version %d)", errSocks, b[0])
	}
	switch b[1] {
	case 0:
	case 2:
		if !pr.hasAuth {
			return fmt.Errorf("%w: proxy wants a user and password", errSocks)
		}
		req := append([]byte{1, byte(len(pr.user))}, pr.user...)
		req = append(append(req, byte(len(pr.pass))), pr.pass...)
		if _, err := c.Write(req); err != nil {
			return fmt.Errorf("%w: %v", errSocks, err)
		}
		if _, err := io.ReadFull(c, b[:2]); err != nil {
			return fmt.Errorf("%w: auth: %v", errSocks, err)
		}
		if b[1] != 0 {
			return fmt.Errorf("%w: user/password refused", errSocks)
		}
	default:
		return fmt.Errorf("%w: no acceptable authentication method", errSocks)
	}
	req := []byte{5, 1, 0}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		a := ip.As4()
		req = append(append(req, 1), a[:]...)
	} else if err == nil {
		a := ip.As16()
		req = append(append(req, 4), a[:]...)
	} else {
		if len(host) > 255 {
			return fmt.Errorf("%w: host name too long", errSocks)
		}
		req = append(append(req, 3, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("%w: %v", errSocks, err)
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil {
		return fmt.Errorf("%w: connect reply: %v", errSocks, err)
	}
	if b[1] != 0 {
		return fmt.Errorf("%w: connect refused (reply %d)", errSocks, b[1])
	}
	var skip int
	switch b[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return fmt.Errorf("%w: connect reply: %v", errSocks, err)
		}
		skip = int(b[0])
	default:
		return fmt.Errorf("%w: bad address type %d", errSocks, b[3])
	}
	var rest [258]byte
	if _, err := io.ReadFull(c, rest[:skip+2]); err != nil {
		return fmt.Errorf("%w: connect reply: %v", errSocks, err)
	}
	return nil
}

// maxProxyReply bounds an HTTP proxy's CONNECT answer.
const maxProxyReply = 8 << 10

// httpConnect asks an HTTP proxy on c for a tunnel to target. The answer
// is read byte by byte up to its blank line, so nothing of the pool's
// first bytes is consumed.
func httpConnect(c net.Conn, pr *proxySpec, target string) error {
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if pr.hasAuth {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(pr.user+":"+pr.pass)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return fmt.Errorf("%w: %v", errHTTP, err)
	}
	var resp []byte
	var one [1]byte
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) && !bytes.HasSuffix(resp, []byte("\n\n")) {
		if len(resp) >= maxProxyReply {
			return fmt.Errorf("%w: answer longer than %d bytes", errHTTP, maxProxyReply)
		}
		if _, err := io.ReadFull(c, one[:]); err != nil {
			return fmt.Errorf("%w: %v", errHTTP, err)
		}
		resp = append(resp, one[0])
	}
	status, _, _ := bytes.Cut(resp, []byte("\n"))
	f := strings.Fields(string(status))
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return fmt.Errorf("%w: not an HTTP answer: %q", errHTTP, bytes.TrimSpace(status))
	}
	if f[1] != "200" {
		return fmt.Errorf("%w: CONNECT refused: %s", errHTTP, bytes.TrimSpace(status))
	}
	return nil
}

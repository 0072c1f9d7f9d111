package tlsfront

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Front. NewOptions fills the defaults.
type Options struct {
	Listen   string // TLS address for miners, e.g. "0.0.0.0:3443"
	Backend  string // the engine's plaintext listener that requires PROXY v1, e.g. "127.0.0.1:3334"
	CertFile string // PEM certificate chain (leaf first)
	KeyFile  string // PEM private key

	HandshakeTimeout time.Duration // 10 s: a TLS handshake must complete within this
	DialTimeout      time.Duration // 5 s: connecting to Backend
	WriteTimeout     time.Duration // 60 s: one write to either side must finish within this
	MaxSessions      int           // 100000 sessions at once; more are closed at accept
	MaxHandshakes    int           // 256 handshakes in progress at once
	// BufferSize is each direction's copy buffer per session (bytes). A
	// stratum line is at most a few KiB; a longer one is simply copied in
	// several pieces.
	BufferSize int // 2048
	// ReloadCheck: this often the certificate and key files are checked
	// for a change (size or modification time) and reloaded; 0: only Reload.
	ReloadCheck time.Duration // 1 min
}

// NewOptions returns Options with the defaults (Listen, Backend, CertFile
// and KeyFile empty: the caller must set them).
func NewOptions() Options {
	return Options{
		HandshakeTimeout: 10 * time.Second,
		DialTimeout:      5 * time.Second,
		WriteTimeout:     60 * time.Second,
		MaxSessions:      100000,
		MaxHandshakes:    256,
		BufferSize:       2048,
		ReloadCheck:      time.Minute,
	}
}

// Validate reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		bad("tls listen %q: want host:port", o.Listen)
	}
	if _, _, err := net.SplitHostPort(o.Backend); err != nil {
		bad("tls backend %q: want host:port", o.Backend)
	}
	if o.CertFile == "" || o.KeyFile == "" {
		bad("tls certificate and key files are required")
	}
	if o.HandshakeTimeout < 100*time.Millisecond || o.HandshakeTimeout > 5*time.Minute {
		bad("tls handshake timeout %v: want 100ms..5m", o.HandshakeTimeout)
	}
	if o.DialTimeout < 100*time.Millisecond || o.DialTimeout > time.Minute {
		bad("tls backend dial timeout %v: want 100ms..1m", o.DialTimeout)
	}
	if o.WriteTimeout < time.Second || o.WriteTimeout > time.Hour {
		bad("tls write timeout %v: want 1s..1h", o.WriteTimeout)
	}
	if o.MaxSessions < 1 || o.MaxSessions > 10_000_000 {
		bad("tls max sessions %d: want 1..10000000", o.MaxSessions)
	}
	if o.MaxHandshakes < 1 || o.MaxHandshakes > 100_000 {
		bad("tls max handshakes %d: want 1..100000", o.MaxHandshakes)
	}
	if o.BufferSize < 512 || o.BufferSize > 1<<20 {
		bad("tls buffer size %d: want 512..1048576", o.BufferSize)
	}
	if o.ReloadCheck < 0 {
		bad("tls reload check %v: want ≥ 0", o.ReloadCheck)
	}
	return errors.Join(errs...)
}

// Stats are the Front's counters.
type Stats struct {
	Sessions      int64 // sessions piping now
	Accepted      int64 // connections accepted
	Handshakes    int64 // handshakes completed
	HandshakeErrs int64 // handshakes failed or timed out
	BackendErrs   int64 // backend dials failed
	Refused       int64 // closed at accept: MaxSessions reached
	Reloads       int64 // certificate pairs loaded (the first included)
}

// Front is a running TLS terminator.
type Front struct {
	o   Options
	log *slog.Logger

	cert    atomic.Pointer[tls.Certificate]
	certSig atomic.Value // fileSig of the loaded pair
	tlsCfg  *tls.Config
	bufs    sync.Pool

	ln    net.Listener
	ready chan struct{}
	hs    chan struct{} // handshake slots

	sessions, accepted, handshakes, hsErrs, backendErrs, refused, reloads atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open miner connections, closed at shutdown
	wg    sync.WaitGroup
}

// New checks o, loads the certificate and returns a Front; Serve runs it.
// log may be nil (silent).
func New(o Options, log *slog.Logger) (*Front, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Front{o: o, log: log, ready: make(chan struct{}), hs: make(chan struct{}, o.MaxHandshakes),
		conns: make(map[net.Conn]struct{})}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	f.tlsCfg = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return f.cert.Load(), nil },
	}
	f.bufs.New = func() any { b := make([]byte, o.BufferSize); return &b }
	return f, nil
}

// fileSig identifies a version of the certificate and key files.
type fileSig struct {
	certSize, keySize int64
	certMod, keyMod   time.Time
}

func sigOf(cert, key string) (fileSig, error) {
	c, err := os.Stat(cert)
	if err != nil {
		return fileSig{}, err
	}
	k, err := os.Stat(key)
	if err != nil {
		return fileSig{}, err
	}
	return fileSig{c.Size(), k.Size(), c.ModTime(), k.ModTime()}, nil
}

// Reload loads the certificate and key files again; new handshakes use
// them, sessions in progress are not touched. On error the old pair stays.
func (f *Front) Reload() error {
	sig, _ := sigOf(f.o.CertFile, f.o.KeyFile)
	c, err := tls.LoadX509KeyPair(f.o.CertFile, f.o.KeyFile)
	if err != nil {
		return fmt.Errorf("tlsfront: certificate %s / key %s: %w", f.o.CertFile, f.o.KeyFile, err)
	}
	f.cert.Store(&c)
	f.certSig.Store(sig)
	f.reloads.Add(1)
	return nil
}

// Ready is closed once the listener is up.
func (f *Front) Ready() <-chan struct{} { return f.ready }

// Addr returns the listener's address once Ready.
func (f *Front) Addr() net.Addr { return f.ln.Addr() }

// Stats returns the counters.
func (f *Front) Stats() Stats {
	return Stats{Sessions: f.sessions.Load(), Accepted: f.accepted.Load(), Handshakes: f.handshakes.Load(),
		HandshakeErrs: f.hsErrs.Load(), BackendErrs: f.backendErrs.Load(), Refused: f.refused.Load(), Reloads: f.reloads.Load()}
}

// Serve listens and runs until ctx ends; then it closes the listener and
// every session and waits for them.
func (f *Front) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", f.o.Listen)
	if err != nil {
		return fmt.Errorf("tlsfront: listen %s: %w", f.o.Listen, err)
	}
	f.ln = ln
	close(f.ready)
	f.log.Info("stratum TLS listening", "addr", ln.Addr().String(), "backend", f.o.Backend)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	defer stop()
	if f.o.ReloadCheck > 0 {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.watch(ctx) }()
	}
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				// EMFILE and friends: back off instead of spinning.
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				f.log.Warn("tls accept", "err", err, "retry_in", tempDelay)
				select {
				case <-time.After(tempDelay):
				case <-ctx.Done():
				}
				continue
			}
			f.wg.Wait()
			return fmt.Errorf("tlsfront: accept: %w", err)
		}
		tempDelay = 0
		f.accepted.Add(1)
		if !f.track(c) {
			f.refused.Add(1)
			c.Close()
			continue
		}
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.session(ctx, c) }()
	}
	f.wg.Wait()
	return nil
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// track registers a miner connection; false when MaxSessions are open.
func (f *Front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.conns) >= f.o.MaxSessions {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Front) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// watch reloads the pair when either file changes.
func (f *Front) watch(ctx context.Context) {
	t := time.NewTicker(f.o.ReloadCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sig, err := sigOf(f.o.CertFile, f.o.KeyFile)
		if err != nil || sig == f.certSig.Load() {
			continue
		}
		if err := f.Reload(); err != nil {
			f.log.Warn("tls certificate reload failed; keeping the old one", "err", err)
			f.certSig.Store(sig) // do not retry the same bad files every tick
			continue
		}
		f.log.Info("tls certificate reloaded", "cert", f.o.CertFile)
	}
}

// session handshakes, connects to the backend with a PROXY v1 header and
// pipes until either side ends.
func (f *Front) session(ctx context.Context, c net.Conn) {
	handedOff := false
	defer func() {
		if !handedOff { // untrack first: a peer that sees the close may reconnect at once
			f.untrack(c)
			c.Close()
		}
	}()
	select {
	case f.hs <- struct{}{}:
	case <-ctx.Done():
		return
	}
	tc := tls.Server(c, f.tlsCfg)
	c.SetDeadline(time.Now().Add(f.o.HandshakeTimeout))
	err := tc.HandshakeContext(ctx)
	<-f.hs
	if err != nil {
		f.hsErrs.Add(1)
		f.log.Debug("tls handshake", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	f.handshakes.Add(1)
	d := net.Dialer{Timeout: f.o.DialTimeout}
	b, err := d.DialContext(ctx, "tcp", f.o.Backend)
	if err != nil {
		f.backendErrs.Add(1)
		f.log.Warn("tls backend unreachable", "backend", f.o.Backend, "err", err)
		return
	}
	if tcp, ok := b.(*net.TCPConn); ok {
		tcp.SetNoDelay(true)
	}
	hdr := AppendProxyHeader(nil, c.RemoteAddr(), c.LocalAddr())
	b.SetWriteDeadline(time.Now().Add(f.o.DialTimeout))
	if _, err := b.Write(hdr); err != nil {
		f.backendErrs.Add(1)
		b.Close()
		return
	}
	b.SetWriteDeadline(time.Time{})
	c.SetDeadline(time.Time{})
	// The pipes run on two fresh goroutines and this one ends: its stack
	// grew during the handshake, and a session lives for days.
	f.sessions.Add(1)
	handedOff = true
	var left atomic.Int32
	left.Store(2)
	end := func() {
		if left.Add(-1) == 1 { // the first pipe to end ends the session; untrack before closing
			f.untrack(c)
			f.sessions.Add(-1)
		}
		tc.Close() // breaks a write in progress without blocking (crypto/tls)
		b.Close()
		f.wg.Done()
	}
	f.wg.Add(2)
	go func() { defer end(); f.pipe(tc, c, b) }() // engine → miner
	go func() { defer end(); f.pipe(b, b, tc) }() // miner → engine
}

// pipe copies src to dst with one pooled buffer until either fails; each
// write must finish within WriteTimeout (set on dl, dst's socket), so a
// miner that stopped reading cannot hold a session forever.
func (f *Front) pipe(dst io.Writer, dl net.Conn, src io.Reader) {
	bp := f.bufs.Get().(*[]byte)
	defer f.bufs.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			dl.SetWriteDeadline(time.Now().Add(f.o.WriteTimeout))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// AppendProxyHeader appends the PROXY protocol v1 line for a connection
// from src to dst ("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n", TCP6 for
// IPv6; "PROXY UNKNOWN\r\n" when either is not a TCP address).
func AppendProxyHeader(dst []byte, src, to net.Addr) []byte {
	s, ok1 := src.(*net.TCPAddr)
	d, ok2 := to.(*net.TCPAddr)
	if !ok1 || !ok2 {
		return append(dst, "PROXY UNKNOWN\r\n"...)
	}
	sa, _ := netip.AddrFromSlice(s.IP)
	da, _ := netip.AddrFromSlice(d.IP)
	sa, da = sa.Unmap(), da.Unmap()
	fam := "TCP4"
	if !sa.Is4() || !da.Is4() {
		fam = "TCP6" // both as IPv6 (an IPv4 one as ::ffff:a.b.c.d)
		sa, da = netip.AddrFrom16(sa.As16()), netip.AddrFrom16(da.As16())
	}
	dst = append(dst, "PROXY "...)
	dst = append(dst, fam...)
	dst = append(dst, ' ')
	dst = sa.AppendTo(dst)
	dst = append(dst, ' ')
	dst = da.AppendTo(dst)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(s.Port), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(d.Port), 10)
	return append(dst, "\r\n"...)
}

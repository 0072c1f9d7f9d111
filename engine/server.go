package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/internal/gnetlog"
	"github.com/hashpool/hashpool/sha"
)

// loop is the per-event-loop state: scratch space for parsing, hashing and
// encoding, the loop's sessions and its batch of share records. Only the
// loop's goroutine touches it.
type loop struct {
	srv *Server
	idx int
	el  gnet.EventLoop

	hasher sha.Hasher
	out    []byte // replies for the session being served; written then reset
	msg    stratum.Message
	sub    stratum.Submit
	asub   agent.Submit
	share  btcpool.Share
	en2    [8]byte
	cfg    []stratum.ConfigureEntry
	iov    [2][]byte

	zdec *zstd.Decoder // agents' ZSTD_BATCH frames (created on first use)
	zbuf []byte

	diffGroups [MaxDiffExp + 1][]uint16
	usedExps   []int8

	batch    recordBatch
	sessions []*Session
	lastJob  uint64 // id of the newest job broadcast on this loop
	submits  uint64 // shares validated on this loop (SubmitNanos sampling)

	sv2 sv2Loop // SV2 connections (sv2.go)
}

func newLoop(srv *Server, idx int) *loop {
	return &loop{srv: srv, idx: idx, out: make([]byte, 0, 4096),
		batch: recordBatch{buf: make([]byte, 0, recordBatchSize+btcpool.MaxShareProtoSize+4), ends: make([]int32, 0, 1024)}}
}

// Deps are the things a Server talks to.
type Deps struct {
	Producer bus.Producer // share records, solved shares, common events
	Bus      bus.Bus      // job consumer; nil when jobs come only from AddJob
	Users    Users
	Log      *slog.Logger // nil: silent
}

// Server is the stratum server (btcpool's sserver) on gnet.
type Server struct {
	gnet.BuiltinEventEngine

	opts    Options
	log     *slog.Logger
	vdcfg   VarDiffConfig
	en2Mask uint64
	longRe  *regexp.Regexp

	ids     *SessionIDs
	repo    *JobRepo
	users   Users
	bus     bus.Bus
	out     *outputs
	metrics *Metrics

	loopsMu sync.Mutex
	loops   []*loop

	eng       gnet.Engine
	ready     chan struct{}
	addr      atomic.Value // net.Addr once listening
	proxyAddr atomic.Value // net.Addr of the PROXY listener once listening
	listenSAs []syscall.Sockaddr
	draining  atomic.Bool
	nowSec    atomic.Int64
	newUsers  *newUserLimiter
	pace      chan paced // loop tasks queued by the pacer goroutine (broadcast.go)
	sv2       sv2State   // the SV2 listener (sv2.go)

	shutOnce      sync.Once
	shutStart     chan struct{} // closed by Shutdown
	shutCtx       context.Context
	served        chan struct{} // closed when Serve returned
	listenStopped chan struct{} // closed once the listeners are closed (tests)
}

// New checks opts and builds a Server; Serve runs it.
func New(opts Options, deps Deps) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if deps.Producer == nil || deps.Users == nil {
		return nil, errors.New("engine: Deps.Producer and Deps.Users are required")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log, vdcfg: opts.varDiffConfig(), ids: NewSessionIDs(opts.ServerID),
		repo:  NewJobRepo(opts.MaxJobLifetime, opts.MiningNotifyPeriod, opts.ExtraNonce2Size, opts.EventLoops),
		users: deps.Users, bus: deps.Bus, metrics: &Metrics{}, ready: make(chan struct{}),
		shutStart: make(chan struct{}), served: make(chan struct{}), listenStopped: make(chan struct{}),
		pace: make(chan paced, 1024)}
	if s.opts.NewUsersPerConn == 0 {
		s.opts.NewUsersPerConn = 10
	}
	if s.opts.NewUsersPerIP == 0 {
		s.opts.NewUsersPerIP = 100
	}
	s.newUsers = newNewUserLimiter(s.opts.NewUsersPerIP, time.Hour)
	s.en2Mask = ^uint64(0) >> (64 - 8*uint(opts.ExtraNonce2Size))
	if opts.LongTimeoutAgent != "" {
		s.longRe = regexp.MustCompile("(?i)" + opts.LongTimeoutAgent)
	}
	out, err := newOutputs(deps.Producer, opts.Topics, opts.DataDir, s.metrics, log)
	if err != nil {
		return nil, err
	}
	s.out = out
	out.answered = s.releaseHeld
	s.nowSec.Store(time.Now().Unix())
	return s, nil
}

// Metrics returns the server's counters.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Jobs returns the job repository.
func (s *Server) Jobs() *JobRepo { return s.repo }

func (s *Server) longTimeout(agentName string) bool {
	switch {
	case isNiceHashAgent(agentName):
		return true
	case agentName == "__PoolWatcher__":
		return true
	}
	return s.longRe != nil && s.longRe.MatchString(agentName)
}

// Addr returns the listening address once Serve is ready (nil before).
func (s *Server) Addr() net.Addr {
	a, _ := s.addr.Load().(net.Addr)
	return a
}

// ProxyAddr returns the PROXY listener's address once Serve is ready (nil
// before, or without Options.ProxyListen).
func (s *Server) ProxyAddr() net.Addr {
	a, _ := s.proxyAddr.Load().(net.Addr)
	return a
}

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Serve runs the server until ctx ends or Shutdown is called, then shuts
// down in order (see Shutdown; when ctx ends, the shutdown is bounded by
// GracePeriod + SolvedWait). It returns the first fatal error: the
// listener could not be opened, or the job consumer met a permanent bus
// error. Call it once.
func (s *Server) Serve(ctx context.Context) error {
	defer close(s.served)
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	fatal := make(chan error, 1)
	if s.bus != nil {
		cons, err := s.bus.NewConsumer(s.opts.Topics.Job, bus.Start{Tail: 1})
		if err != nil {
			s.out.close()
			return fmt.Errorf("engine: job consumer: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cons.Close()
			if err := s.consumeJobs(runCtx, cons); err != nil {
				fatal <- fmt.Errorf("engine: job consumer: %w", err)
			}
		}()
	}
	runErr := make(chan error, 1)
	go func() {
		opts := []gnet.Option{gnet.WithNumEventLoop(s.opts.EventLoops), gnet.WithReusePort(s.opts.ReusePort),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithTCPKeepAlive(5 * time.Minute), gnet.WithLogLevel(logging.ErrorLevel),
			gnet.WithLogger(gnetlog.Logger(s.log))}
		addrs := []string{"tcp://" + s.opts.Listen}
		if s.opts.ProxyListen != "" {
			addrs = append(addrs, "tcp://"+s.opts.ProxyListen)
		}
		if s.opts.SV2Listen != "" {
			addrs = append(addrs, "tcp://"+s.opts.SV2Listen)
		}
		runErr <- gnet.Rotate(s, addrs, opts...)
	}()
	select {
	case err := <-runErr:
		cancel()
		wg.Wait()
		s.out.close()
		return fmt.Errorf("engine: listen %s: %w", s.listenList(), err)
	case <-s.ready:
	}
	wg.Add(2)
	go func() { defer wg.Done(); s.tick(runCtx) }()
	go func() { defer wg.Done(); s.runPacer(runCtx.Done()) }()
	if s.opts.SV2Listen != "" {
		wg.Add(1)
		go func() { defer wg.Done(); s.sv2Run(runCtx.Done()) }()
	}

	var shutCtx context.Context
	var result error
	select {
	case <-ctx.Done():
		c, stop := context.WithTimeout(context.Background(), s.opts.GracePeriod+s.opts.SolvedWait)
		defer stop()
		shutCtx = c
	case <-s.shutStart:
		shutCtx = s.shutCtx
	case result = <-fatal:
		s.log.Error("sserver stopping", "err", result)
		c, stop := context.WithTimeout(context.Background(), s.opts.GracePeriod+s.opts.SolvedWait)
		defer stop()
		shutCtx = c
	}
	s.shutdown(shutCtx, cancel, &wg)
	if err := <-runErr; err != nil && result == nil {
		result = err
	}
	s.out.close()
	return result
}

func (s *Server) listenList() string {
	l := s.opts.Listen
	if s.opts.ProxyListen != "" {
		l += " and " + s.opts.ProxyListen
	}
	if s.opts.SV2Listen != "" {
		l += " and " + s.opts.SV2Listen
	}
	return l
}

// OnBoot implements gnet.EventHandler. It learns the listening addresses
// (for Addr, ProxyAddr and for closing the listeners at shutdown).
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	if fd, err := eng.DupListener("tcp", s.opts.Listen); err == nil {
		if sa, a := fdAddr(fd); a != nil {
			s.addr.Store(a)
			s.listenSAs = append(s.listenSAs, sa)
		}
	}
	if s.opts.ProxyListen != "" {
		if fd, err := eng.DupListener("tcp", s.opts.ProxyListen); err == nil {
			if sa, a := fdAddr(fd); a != nil {
				s.proxyAddr.Store(a)
				s.listenSAs = append(s.listenSAs, sa)
			}
		}
	}
	if s.opts.SV2Listen != "" {
		if fd, err := eng.DupListener("tcp", s.opts.SV2Listen); err == nil {
			if sa, a := fdAddr(fd); a != nil {
				s.sv2.addr.Store(a)
				s.listenSAs = append(s.listenSAs, sa)
			}
		}
	}
	close(s.ready)
	return gnet.None
}

func (s *Server) loopOf(el gnet.EventLoop) *loop {
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	for _, lp := range s.loops {
		if lp.el == el {
			return lp
		}
	}
	lp := newLoop(s, len(s.loops))
	lp.el = el
	s.loops = append(s.loops, lp)
	return lp
}

// OnOpen implements gnet.EventHandler: a session id is taken at once and the
// connection refused when none is left (or while draining).
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if s.isSV2(c) {
		return s.sv2Open(c)
	}
	if s.draining.Load() {
		s.metrics.Rejected.Add(1)
		return nil, gnet.Close
	}
	id, ok := s.ids.Alloc()
	if !ok {
		s.metrics.Rejected.Add(1)
		return nil, gnet.Close
	}
	lp := s.loopOf(c.EventLoop())
	if lp.idx >= s.opts.EventLoops { // more loops than configured: cannot index job sets
		s.ids.Free(id)
		return nil, gnet.Close
	}
	var ip netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
		ip = ip.Unmap()
	}
	sess := newSession(s, lp, id, ip, s.nowSec.Load())
	sess.conn = c
	if pa := s.ProxyAddr(); pa != nil && sameAddr(c.LocalAddr(), pa) {
		sess.proxyRequired = true
	}
	sess.lpIndex = len(lp.sessions)
	lp.sessions = append(lp.sessions, sess)
	c.SetContext(sess)
	_ = c.SetLinger(0)
	s.metrics.Sessions.Add(1)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (s *Server) OnClose(c gnet.Conn, _ error) gnet.Action {
	sess, _ := c.Context().(*Session)
	if sess == nil {
		if sc, ok := c.Context().(*sv2Conn); ok {
			c.SetContext(nil)
			s.sv2Close(sc)
		}
		return gnet.None
	}
	c.SetContext(nil)
	sess.closed = true
	lp := sess.lp
	last := len(lp.sessions) - 1
	if sess.lpIndex <= last && lp.sessions[sess.lpIndex] == sess {
		lp.sessions[sess.lpIndex] = lp.sessions[last]
		lp.sessions[sess.lpIndex].lpIndex = sess.lpIndex
		lp.sessions[last] = nil
		lp.sessions = lp.sessions[:last]
	}
	s.ids.FreeOn(sess.id, lp.idx)
	s.metrics.Sessions.Add(-1)
	if sess.state == stateAuthorized {
		for _, w := range sess.workers {
			s.out.event(btcpool.ActionMinerDead, btcpool.DescFromBtcAgent, sess, w)
		}
		s.out.event(btcpool.ActionMinerDead, btcpool.DescDelConn, sess, &sess.m)
	}
	return gnet.None
}

// OnTraffic implements gnet.EventHandler. The peeked buffer is only valid
// inside this call: the session copies what it keeps (see doc.go).
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	sess, _ := c.Context().(*Session)
	if sess == nil {
		if sc, ok := c.Context().(*sv2Conn); ok {
			return s.sv2Traffic(sc)
		}
		return gnet.Close
	}
	buf, _ := c.Peek(-1)
	if sess.stalled {
		_, _ = c.Discard(len(buf)) // btcpool stops reading; we drop input until the timeout
		return gnet.None
	}
	now := s.nowSec.Load()
	if sess.state == stateAuthorized {
		sess.deadline = now + int64(sess.readTimeout().Seconds())
	}
	lp := sess.lp
	lp.out = lp.out[:0]
	holding := sess.holdN > 0
	sess.holdAt = -1
	n, closeNow := sess.feed(buf, now)
	if n > 0 {
		_, _ = c.Discard(n)
	}
	if len(lp.out) > 0 {
		out := lp.out
		if sess.holdN > 0 {
			// A block-solving share's answer, and every answer after it,
			// waits for the share's journal record (solved.go).
			at := 0
			if !holding {
				at = max(sess.holdAt, 0)
			}
			sess.held = append(sess.held, out[at:]...)
			out = out[:at]
			s.metrics.HeldAnswers.Add(1)
			if len(sess.held) > s.opts.MaxOutbound {
				s.metrics.SlowClosed.Add(1)
				return gnet.Close
			}
		}
		if len(out) > 0 {
			_, _ = c.Write(out)
		}
		lp.out = lp.out[:0]
	}
	if closeNow || sess.closed {
		return gnet.Close
	}
	if c.OutboundBuffered() > s.opts.MaxOutbound {
		s.metrics.SlowClosed.Add(1)
		return gnet.Close
	}
	return gnet.None
}

func (sess *Session) readTimeout() time.Duration {
	if sess.isAgent || sess.srv.longTimeout(sess.m.agent) {
		return sess.srv.opts.LongTimeout
	}
	return sess.srv.opts.TCPReadTimeout
}

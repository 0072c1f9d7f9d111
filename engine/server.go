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

	eng      gnet.Engine
	ready    chan struct{}
	addr     atomic.Value // net.Addr once listening
	draining atomic.Bool
	nowSec   atomic.Int64
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
		users: deps.Users, bus: deps.Bus, metrics: &Metrics{}, ready: make(chan struct{})}
	s.en2Mask = ^uint64(0) >> (64 - 8*uint(opts.ExtraNonce2Size))
	if opts.LongTimeoutAgent != "" {
		s.longRe = regexp.MustCompile("(?i)" + opts.LongTimeoutAgent)
	}
	out, err := newOutputs(deps.Producer, opts.Topics, opts.DataDir, s.metrics, log)
	if err != nil {
		return nil, err
	}
	s.out = out
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

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Serve runs the server until ctx ends, then shuts down gracefully: it stops
// accepting, closes sessions spread over GracePeriod, flushes records and
// waits for solved shares to be published. It returns the first fatal error.
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if s.bus != nil {
		cons, err := s.bus.NewConsumer(s.opts.Topics.Job, bus.Start{Tail: 1})
		if err != nil {
			return fmt.Errorf("engine: job consumer: %w", err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); defer cons.Close(); s.consumeJobs(ctx, cons) }()
	}
	runErr := make(chan error, 1)
	go func() {
		runErr <- gnet.Run(s, "tcp://"+s.opts.Listen,
			gnet.WithNumEventLoop(s.opts.EventLoops), gnet.WithReusePort(s.opts.ReusePort),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithTCPKeepAlive(5*time.Minute), gnet.WithLogLevel(logging.ErrorLevel),
			gnet.WithLogger(gnetlog.Logger(s.log)))
	}()
	select {
	case err := <-runErr:
		cancel()
		wg.Wait()
		s.out.close()
		return fmt.Errorf("engine: listen %s: %w", s.opts.Listen, err)
	case <-s.ready:
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.tick(ctx) }()
	<-ctx.Done()
	wg.Wait()
	s.drain()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := s.eng.Stop(stopCtx)
	stopCancel()
	<-runErr
	s.out.close()
	return err
}

// OnBoot implements gnet.EventHandler.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	if fd, err := eng.Dup(); err == nil {
		if f := fdAddr(fd); f != nil {
			s.addr.Store(f)
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
	n, closeNow := sess.feed(buf, now)
	if n > 0 {
		_, _ = c.Discard(n)
	}
	if len(lp.out) > 0 {
		_, _ = c.Write(lp.out)
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

// AddJob inserts a job (the job consumer calls it; tests may too) and
// broadcasts it when btcpool's rules say so.
func (s *Server) AddJob(p *JobParams) error {
	now := time.Now().Unix()
	j, send, err := s.repo.Add(p, now)
	if err != nil {
		return err
	}
	if send {
		s.broadcast(j, j.Clean)
	}
	return nil
}

func (s *Server) consumeJobs(ctx context.Context, cons bus.Consumer) {
	var sj btcpool.StratumJob
	for ctx.Err() == nil {
		msgs, err := cons.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
				return
			}
			s.log.Warn("job consumer", "err", err)
			time.Sleep(time.Second)
			continue
		}
		for _, m := range msgs {
			if err := btcpool.DecodeStratumJob(m.Value, &sj); err != nil {
				s.log.Warn("bad stratum job", "err", err)
				continue
			}
			p, err := jobParamsFrom(&sj)
			if err != nil {
				s.log.Warn("bad stratum job", "id", sj.JobID, "err", err)
				continue
			}
			if err := s.AddJob(p); err != nil {
				s.log.Warn("job dropped", "id", sj.JobID, "height", sj.Height, "err", err)
			}
		}
	}
}

// jobParamsFrom converts a decoded BtcJob message.
func jobParamsFrom(sj *btcpool.StratumJob) (*JobParams, error) {
	prev, err := sj.PrevHashBytes()
	if err != nil {
		return nil, err
	}
	cb1, err := sj.Coinbase1Bytes()
	if err != nil {
		return nil, err
	}
	cb2, err := sj.Coinbase2Bytes()
	if err != nil {
		return nil, err
	}
	branch, err := sj.Branch()
	if err != nil {
		return nil, err
	}
	p := &JobParams{ID: sj.JobID, Height: sj.Height, PrevHash: prev, Coinbase1: cb1, Coinbase2: cb2, Branch: branch,
		Version: uint32(sj.NVersion), Bits: sj.NBits, Time: sj.NTime, MinTime: sj.MinTime}
	if sj.ProxyJobDifficulty > 0 {
		p.NetworkTarget = sha.DiffToTarget(float64(sj.ProxyJobDifficulty))
	}
	return p, nil
}

// broadcast sends j to every session, one task per event loop; each loop
// writes the shared notify line to its own sessions.
func (s *Server) broadcast(j *Job, clean bool) {
	start := time.Now()
	s.loopsMu.Lock()
	loops := append([]*loop(nil), s.loops...)
	s.loopsMu.Unlock()
	var pending atomic.Int32
	pending.Store(int32(len(loops)))
	done := func() {
		if pending.Add(-1) == 0 {
			d := time.Since(start).Nanoseconds()
			s.metrics.Broadcasts.Add(1)
			s.metrics.BroadcastNanos.Add(d)
			s.metrics.LastBroadcastNanos.Store(d)
		}
	}
	for _, lp := range loops {
		lp := lp
		err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			lp.broadcast(j, clean, s.nowSec.Load(), done)
			return nil
		}))
		if err != nil {
			done()
		}
	}
}

// broadcastChunk is how many sessions a loop writes a notify to before it lets the loop serve
// reads again: a broadcast costs about 10 µs of loop time per session (one write syscall), so
// with 100,000 sessions a new block would otherwise hold every submit of a loop for about a
// second.
const broadcastChunk = 512

// broadcast runs on the loop: per session, what precedes the notify goes to lp.out and both are
// written with one writev. It works through a snapshot of the loop's sessions in chunks, each a
// task of its own, and calls done after the last.
func (lp *loop) broadcast(j *Job, clean bool, now int64, done func()) {
	// A re-send of an older job can reach the loop after a newer job (they
	// are broadcast from different goroutines): it must not replace it.
	if j.ID < lp.lastJob {
		done()
		return
	}
	lp.lastJob = j.ID
	lp.broadcastFrom(j, clean, now, append([]*Session(nil), lp.sessions...), done)
}

func (lp *loop) broadcastFrom(j *Job, clean bool, now int64, sessions []*Session, done func()) {
	if j.ID < lp.lastJob { // a newer job's broadcast took over
		done()
		return
	}
	n := min(len(sessions), broadcastChunk)
	notify := j.Notify(clean)
	for _, sess := range sessions[:n] {
		if sess.state != stateAuthorized || sess.closed {
			continue
		}
		lp.out = lp.out[:0]
		sess.pushJob(j, now)
		c := sess.conn.(gnet.Conn)
		if sess.isNiceHash {
			lp.out = j.AppendNotifyWithID(lp.out, clean, niceHashJobID(j, now))
			_, _ = c.Write(lp.out)
		} else if len(lp.out) > 0 {
			lp.iov[0], lp.iov[1] = lp.out, notify
			_, _ = c.Writev(lp.iov[:])
			lp.iov[0], lp.iov[1] = nil, nil
		} else {
			_, _ = c.Write(notify)
		}
		if c.OutboundBuffered() > lp.srv.opts.MaxOutbound {
			lp.srv.metrics.SlowClosed.Add(1)
			sess.closed = true
			_ = lp.el.Close(c) // OnClose runs now and removes sess from lp.sessions
		}
	}
	lp.out = lp.out[:0]
	rest := sessions[n:]
	if len(rest) == 0 {
		done()
		return
	}
	err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		lp.broadcastFrom(j, clean, now, rest, done)
		return nil
	}))
	if err != nil {
		done()
	}
}

// tick runs the once-a-second timers: job refresh and expiry, read
// timeouts, and handing share records to the publisher.
func (s *Server) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	rec := time.NewTicker(200 * time.Millisecond)
	defer rec.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rec.C:
			s.eachLoop(func(lp *loop) { lp.flushRecords() })
		case now := <-t.C:
			sec := now.Unix()
			s.nowSec.Store(sec)
			resend, expired := s.repo.Tick(sec)
			if resend != nil {
				s.broadcast(resend, resend.Clean)
			}
			s.eachLoop(func(lp *loop) {
				for _, j := range expired {
					j.seen[lp.idx] = dupSet{}
				}
				lp.sweep(sec)
			})
		}
	}
}

func (s *Server) eachLoop(f func(lp *loop)) {
	s.loopsMu.Lock()
	loops := append([]*loop(nil), s.loops...)
	s.loopsMu.Unlock()
	for _, lp := range loops {
		lp := lp
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { f(lp); return nil }))
	}
}

// sweep closes the loop's sessions whose read deadline passed.
func (lp *loop) sweep(now int64) {
	for i := 0; i < len(lp.sessions); i++ {
		sess := lp.sessions[i]
		if now > sess.deadline {
			lp.srv.metrics.TimedOut.Add(1)
			sess.closed = true
			_ = lp.el.Close(sess.conn.(gnet.Conn))
			i--
		}
	}
}

// drain stops accepting and closes the sessions spread over GracePeriod,
// then flushes every loop's share records.
func (s *Server) drain() {
	s.draining.Store(true)
	deadline := time.Now().Add(s.opts.GracePeriod)
	const rounds = 10
	for r := 1; r <= rounds; r++ {
		if s.metrics.Sessions.Load() == 0 {
			break
		}
		frac := float64(r) / rounds
		s.eachLoopWait(func(lp *loop) {
			n := int(float64(len(lp.sessions)) * frac)
			if r == rounds {
				n = len(lp.sessions)
			}
			for i := 0; i < n && len(lp.sessions) > 0; i++ {
				sess := lp.sessions[len(lp.sessions)-1]
				sess.closed = true
				_ = lp.el.Close(sess.conn.(gnet.Conn))
			}
		})
		if r < rounds {
			time.Sleep(time.Until(deadline) / time.Duration(rounds-r+1))
		}
	}
	s.eachLoopWait(func(lp *loop) { lp.flushRecords() })
}

func (s *Server) snapshotLoops() []*loop {
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	return append([]*loop(nil), s.loops...)
}

// eachLoopWait runs f on every loop and waits (at most 5 s) for all of them.
func (s *Server) eachLoopWait(f func(lp *loop)) {
	loops := s.snapshotLoops()
	var wg sync.WaitGroup
	for _, lp := range loops {
		lp := lp
		wg.Add(1)
		if lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { f(lp); wg.Done(); return nil })) != nil {
			wg.Done()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// solved is called on the loop for a share that meets the network target:
// the SolvedShare message goes to the publisher (journal first) and every
// job at or below its height is marked stale.
func (s *Server) solved(sess *Session, m *miner, j *Job, en2 []byte, in *shareInput, now int64) {
	hdr := sess.lp.hasher.ShareHeader(j.Hash, sess.en1[:], en2, in.ntime, in.nonce, in.versionMask)
	msg := btcpool.SolvedShare{JobID: j.ID, WorkerID: m.workerID, UserID: sess.userID, Height: j.Height, Header: hdr,
		WorkerFullName: sess.userName + "." + m.worker, Coinbase: j.Hash.AppendCoinbase(nil, sess.en1[:], en2)}
	s.out.solved <- btcpool.AppendSolvedShare(nil, &msg)
	s.repo.MarkStale(j.Height)
	s.log.Info("block found", "height", j.Height, "job", j.ID, "worker", msg.WorkerFullName)
}

// fdAddr returns the local address of a (dup'ed) listener fd and closes it.
func fdAddr(fd int) net.Addr {
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return nil
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return nil
}

package loadgen

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sha"
)

// env is what every simulated client of one process shares.
type env struct {
	s     *Scenario
	rec   *recorder
	d     *dialer
	sem   chan struct{} // bounds concurrent grinding to the CPU count
	grind sync.Pool     // *grinder
	// stopCtx ends when the run's time is up: clients stop submitting (and
	// grinding), and the runner waits for outstanding replies before
	// closing the connections. stop is its Done channel.
	stopCtx context.Context
	stop    <-chan struct{}

	// submitters counts submit loops running; the runner waits for zero
	// after stop so that no share is sent after the count is taken.
	mu         sync.Mutex
	submitters int
	idle       chan struct{} // closed when submitters drops to 0 after stop

	authority [32]byte // the pool's authority key (SV2 miners)
}

func newEnv(s *Scenario, rec *recorder, d *dialer, stopCtx context.Context) *env {
	e := &env{s: s, rec: rec, d: d, sem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		stopCtx: stopCtx, stop: stopCtx.Done(), idle: make(chan struct{})}
	e.grind.New = func() any { return new(grinder) }
	if s.SV2 != "" {
		e.authority, _ = noise.ParseAuthorityKey(s.AuthorityKey) // checked by Validate
	}
	return e
}

// enter registers a submit loop; false once the run is stopping.
func (e *env) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped() {
		return false
	}
	e.submitters++
	return true
}

func (e *env) leave() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.submitters--
	if e.submitters == 0 && e.stopped() {
		select {
		case <-e.idle:
		default:
			close(e.idle)
		}
	}
}

// waitSubmitters waits (at most d) for every submit loop to end after stop.
func (e *env) waitSubmitters(d time.Duration) {
	e.mu.Lock()
	n := e.submitters
	e.mu.Unlock()
	if n == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-e.idle:
	case <-t.C:
	}
}

// dial connects, counting the attempt (attempts cut short by the end of
// the run are not counted).
func (e *env) dial(ctx context.Context) (*net.TCPConn, error) {
	c, err := e.d.dial(ctx)
	if ctx.Err() != nil {
		if c != nil {
			_ = c.Close()
		}
		return nil, ctx.Err()
	}
	e.rec.dials.Add(1)
	if err != nil {
		e.rec.dialFails.Add(1)
	}
	return c, err
}

// stopped reports whether the run's time is up.
func (e *env) stopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// solve returns a nonce for the share described by the arguments: a ground
// one meeting diff, or (simulator mode) any nonce. ok is false when grinding
// gave up (MaxGrindHashes) or ctx ended.
func (e *env) solve(ctx context.Context, w *Work, en1, en2 []byte, ntime, vbits uint32, diff float64) (uint32, bool) {
	if e.s.SimulatorMode {
		return rand.Uint32(), true
	}
	g := e.grind.Get().(*grinder)
	hdr := g.h.ShareHeader(w.Job, en1, en2, ntime, 0, vbits)
	e.grind.Put(g)
	target := sha.DiffToTarget(diff)
	return e.solveHeader(ctx, &hdr, &target)
}

// solveHeader is solve for a header whose every field but the nonce is
// set (Stratum V2 standard channels get the merkle root from the pool):
// a nonce whose hash meets target, any nonce in simulator mode, or one that
// misses in LowDifficulty mode.
func (e *env) solveHeader(ctx context.Context, hdr *[80]byte, target *sha.Target) (uint32, bool) {
	start := rand.Uint32()
	if e.s.SimulatorMode {
		return start, true
	}
	if e.s.LowDifficulty {
		return e.miss(hdr, target, start)
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, false
	}
	g := e.grind.Get().(*grinder)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.stopCtx, cancel)
	defer stop()
	g.hdr = *hdr
	nonce, tried, ok := g.search(gctx, target, start, e.s.MaxGrindHashes)
	e.grind.Put(g)
	<-e.sem
	e.rec.hashes.Add(int64(tried))
	if !ok && gctx.Err() == nil {
		e.rec.grindGiveUps.Add(1)
	}
	return nonce, ok
}

// miss returns a nonce whose header hash meets neither the share target
// nor the header's network target (LowDifficulty). A random hash misses
// both with probability ≥ ½ on any chain (regtest's target is 2^255), so
// the 64 tries never all fail in practice; ok is false if they do.
func (e *env) miss(hdr *[80]byte, share *sha.Target, start uint32) (uint32, bool) {
	target := sha.CompactToTarget(binary.LittleEndian.Uint32(hdr[72:]))
	if share.Cmp(&target) > 0 {
		target = *share // the easier (larger) of the two
	}
	h80 := *hdr
	for i := uint32(0); i < 64; i++ {
		binary.LittleEndian.PutUint32(h80[76:], start+i)
		h := sha.DoubleSHA256(h80[:])
		if !sha.HashMeetsTarget(&h, &target) {
			e.rec.hashes.Add(int64(i + 1))
			return start + i, true
		}
	}
	e.rec.hashes.Add(64)
	e.rec.grindGiveUps.Add(1)
	return 0, false
}

// heldWork is a job with the difficulty that applies to it.
type heldWork struct {
	*Work
	diff float64
}

// First ids of requests; submits count up from submitID0.
const (
	idConfigure = 1
	idSubscribe = 2
	idAuthorize = 3
	submitID0   = 100
	// maxPending bounds unanswered submits per connection.
	maxPending = 1024
)

// miner is one stratum miner session: one TCP connection.
type miner struct {
	e      *env
	worker string
	c      *net.TCPConn

	// Set by the reader before it signals the handshake reply.
	en1     []byte
	en2Size int
	jobFeed

	hs chan hsReply

	mu      sync.Mutex
	pending map[int64]int64 // submit id → unix ns sent
}

type hsReply struct {
	id   int64
	ok   bool
	code int64
}

// runMiner keeps miner idx connected until ctx ends, reconnecting after
// churn or errors (with a bounded backoff).
func runMiner(ctx context.Context, e *env, idx int) {
	worker := fmt.Sprintf("%s.m%06d", e.s.User, idx)
	session := runMinerSession
	if e.s.SV2 != "" {
		session = runSV2Session
	}
	backoff := 100 * time.Millisecond
	for round := 0; round < 1_000_000 && ctx.Err() == nil; round++ {
		if round > 0 {
			e.rec.reconnects.Add(1)
		}
		err := session(ctx, e, worker)
		if ctx.Err() != nil {
			return
		}
		if err == nil { // churn: reconnect at once
			backoff = 100 * time.Millisecond
			continue
		}
		e.rec.err("miner "+worker, err)
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// sleepStop is sleepCtx that also returns false when stop is closed.
func sleepStop(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

var errChurn = errors.New("churn")

// runMinerSession runs one connection: handshake, then submits at the
// scenario's rate. It returns nil when the churn timer ended the session.
func runMinerSession(parent context.Context, e *env, worker string) error {
	return runSession(parent, e, func(c *net.TCPConn) (sessionClient, error) {
		m := &miner{e: e, worker: worker, c: c, hs: make(chan hsReply, 4), pending: make(map[int64]int64)}
		m.first = make(chan struct{})
		return m, nil
	})
}

// sessionClient is one miner's protocol on one connection, as runSession
// drives it.
type sessionClient interface {
	// read handles the server's messages until the connection fails; it
	// runs on its own goroutine from after open to the session's end.
	read() error
	handshake(ctx context.Context) error
	// firstJob is closed when the first job has arrived.
	firstJob() <-chan struct{}
	submitLoop(ctx context.Context) error
	// pendingCount is the shares still unanswered (called after read ended).
	pendingCount() int64
}

// runSession runs one miner connection: dial, open (a transport handshake
// such as Noise; counted as a handshake failure when it fails), the
// client's reader, its handshake, the setup mark at the first job, then
// its submit loop; churn or the end of the run close it. It returns nil
// when the churn timer ended the session.
func runSession(parent context.Context, e *env, open func(*net.TCPConn) (sessionClient, error)) error {
	c, err := e.dial(parent)
	if err != nil {
		return err
	}
	var mark setupMark
	defer closeConnAfter(e.rec, c, &mark)
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if e.s.Churn > 0 {
		life := time.Duration(float64(e.s.Churn) * (0.5 + rand.Float64()))
		t := time.AfterFunc(life, func() { cancel(errChurn) })
		defer t.Stop()
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()

	m, err := open(c)
	if err != nil {
		e.rec.handshakeFails.Add(1)
		return sessionErr(ctx, err)
	}
	if ctx.Err() != nil { // open may have cleared the deadline stop had set
		return sessionErr(ctx, context.Cause(ctx))
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		cancel(m.read())
	}()
	defer func() {
		cancel(nil)
		<-readerDone
		e.rec.unanswered.Add(m.pendingCount())
	}()

	if err := m.handshake(ctx); err != nil {
		e.rec.handshakeFails.Add(1)
		return sessionErr(ctx, err)
	}
	e.rec.up()
	defer e.rec.sessionsUp.Add(-1)
	if waitClosed(ctx, m.firstJob(), e.s.ResponseTimeout) {
		mark.take(c)
	}
	return sessionErr(ctx, submitting(ctx, e, m.submitLoop))
}

func (m *miner) firstJob() <-chan struct{} { return m.first }

func (m *miner) pendingCount() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.pending))
}

var errStopped = errors.New("run stopped")

// submitting runs a submit loop registered with e; when the run stops it
// waits for ctx (the connection stays open for late replies).
func submitting(ctx context.Context, e *env, loop func(context.Context) error) error {
	var err error
	if e.enter() {
		err = loop(ctx)
		e.leave()
	} else {
		err = errStopped
	}
	if errors.Is(err, errStopped) {
		<-ctx.Done()
		return context.Cause(ctx)
	}
	return err
}

// sessionErr maps the end of a session to runMiner's convention.
func sessionErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errChurn) {
		return nil
	} else if cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

func (m *miner) write(b []byte) error {
	_ = m.c.SetWriteDeadline(time.Now().Add(m.e.s.ResponseTimeout))
	_, err := m.c.Write(b)
	return err
}

// call writes a request and waits for its reply.
func (m *miner) call(ctx context.Context, id int64, line string) (hsReply, error) {
	if err := m.write([]byte(line)); err != nil {
		return hsReply{}, err
	}
	r, ok, err := awaitReply(ctx, m.hs, m.e.s.ResponseTimeout, func(r hsReply) bool { return r.id == id })
	if err == nil && !ok {
		err = fmt.Errorf("no reply to request %d within %v", id, m.e.s.ResponseTimeout)
	}
	return r, err
}

// awaitReply waits at most d for a reply on ch that match accepts (others
// are dropped); ok is false when d passed, err set when ctx ended.
func awaitReply[T any](ctx context.Context, ch <-chan T, d time.Duration, match func(T) bool) (r T, ok bool, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case r = <-ch:
			if match(r) {
				return r, true, nil
			}
		case <-t.C:
			return r, false, nil
		case <-ctx.Done():
			return r, false, context.Cause(ctx)
		}
	}
}

func (m *miner) handshake(ctx context.Context) error {
	s := m.e.s
	if s.VersionRolling {
		line := fmt.Sprintf(`{"id":%d,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"%08x","version-rolling.min-bit-count":2}]}`+"\n", idConfigure, s.VersionMask)
		if _, err := m.call(ctx, idConfigure, line); err != nil {
			return fmt.Errorf("configure: %w", err)
		}
	}
	r, err := m.call(ctx, idSubscribe, fmt.Sprintf(`{"id":%d,"method":"mining.subscribe","params":["loadgen/1.0"]}`+"\n", idSubscribe))
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if !r.ok {
		return fmt.Errorf("subscribe: error %d", r.code)
	}
	r, err = m.call(ctx, idAuthorize, fmt.Sprintf(`{"id":%d,"method":"mining.authorize","params":["%s","%s"]}`+"\n", idAuthorize, m.worker, s.Password))
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if !r.ok {
		return fmt.Errorf("authorize %s: error %d", m.worker, r.code)
	}
	return nil
}

// submitLoop submits one share every 1/Rate seconds (random phase) until
// ctx ends.
func (m *miner) submitLoop(ctx context.Context) error {
	s := m.e.s
	if s.Rate == 0 {
		return errStopped
	}
	p := newPacer(m.e)
	en2 := rand.Uint64() & 0xffffffff << 16
	id := int64(submitID0)
	var line, en2b []byte
	for {
		if !p.wait(ctx) {
			return errStopped
		}
		w := m.work.Load()
		if w == nil {
			continue
		}
		en2++
		en2b = appendEn2(en2b[:0], en2, m.en2Size)
		var vbits uint32
		if vm := m.vmask.Load(); vm != 0 {
			vbits = rand.Uint32() & vm
		}
		nonce, ok := m.e.solve(ctx, w.Work, m.en1, en2b, w.Time, vbits, w.diff)
		if m.e.stopped() {
			return errStopped
		}
		if !ok {
			continue
		}
		m.mu.Lock()
		full := len(m.pending) >= maxPending
		if !full {
			m.pending[id] = time.Now().UnixNano()
		}
		m.mu.Unlock()
		if full {
			continue
		}
		line = appendSubmit(line[:0], id, m.worker, w.JobID, en2b, w.Time, nonce, vbits, m.vmask.Load() != 0)
		id++
		m.e.rec.submitted.Add(1)
		if err := m.write(line); err != nil {
			return err
		}
	}
}

// pacer spaces one miner's submits 1/Rate apart (Rate > 0), with a random
// phase, none before SubmitDelay has passed.
type pacer struct {
	e        *env
	interval time.Duration
	next     time.Time
}

func newPacer(e *env) pacer {
	interval := time.Duration(float64(time.Second) / e.s.Rate)
	next := time.Now().Add(time.Duration(rand.Int64N(int64(interval))))
	if at := e.rec.start.Add(e.s.SubmitDelay); next.Before(at) {
		next = at.Add(time.Duration(rand.Int64N(int64(interval))))
	}
	return pacer{e: e, interval: interval, next: next}
}

// wait sleeps until the next submit is due; false when ctx ended or the
// run is stopping.
func (p *pacer) wait(ctx context.Context) bool {
	if !sleepStop(ctx, p.e.stop, time.Until(p.next)) {
		return false
	}
	p.next = p.next.Add(p.interval)
	if lag := time.Since(p.next); lag > 10*p.interval {
		p.next = time.Now() // fell far behind (slow grinding): do not burst
	}
	return true
}

// appendSubmit appends a mining.submit line.
func appendSubmit(dst []byte, id int64, worker, jobID string, en2 []byte, ntime, nonce, vbits uint32, withMask bool) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"method":"mining.submit","params":["`...)
	dst = append(dst, worker...)
	dst = append(dst, `","`...)
	dst = append(dst, jobID...)
	dst = append(dst, `","`...)
	dst = hex.AppendEncode(dst, en2)
	dst = append(dst, `","`...)
	dst = stratum.AppendHex32(dst, ntime)
	dst = append(dst, `","`...)
	dst = stratum.AppendHex32(dst, nonce)
	if withMask {
		dst = append(dst, `","`...)
		dst = stratum.AppendHex32(dst, vbits)
	}
	return append(dst, "\"]}\n"...)
}

// read handles everything the server sends until the connection fails.
func (m *miner) read() error {
	r := newReader(m.c)
	var msg stratum.Message
	for {
		line, isFrame, err := r.next()
		if err != nil {
			return err
		}
		if isFrame {
			return errors.New("agent frame on a stratum miner connection")
		}
		if stratum.Parse(line, &msg) != nil {
			m.e.rec.err("miner "+m.worker, fmt.Errorf("server sent a line that is not JSON: %.80q", line))
			continue
		}
		if msg.Method.Kind == stratum.KindString {
			m.jobFeed.notification(&msg, m.e.rec, "miner ", m.worker)
			continue
		}
		id, ok := msg.ID.Number()
		if !ok {
			continue
		}
		code, accepted := replyStatus(&msg)
		if id >= submitID0 {
			m.submitReply(id, accepted, code)
			continue
		}
		switch id {
		case idConfigure:
			if mask, ok := msg.Result.Get("version-rolling.mask").Str(); ok {
				if v, ok := parseHex32(mask); ok {
					m.vmask.Store(v)
				}
			}
			accepted = msg.Result.Kind == stratum.KindObject
		case idSubscribe:
			en1, ok1 := msg.Result.Index(1).Str()
			size, ok2 := msg.Result.Index(2).Int64()
			b, err := hex.DecodeString(string(en1))
			if !ok1 || !ok2 || err != nil || len(b) == 0 || len(b) > 16 || size < 1 || size > 8 {
				accepted = false
			} else {
				m.en1, m.en2Size = b, int(size)
			}
		}
		select {
		case m.hs <- hsReply{id: id, ok: accepted, code: code}:
		default:
		}
	}
}

// replyStatus reads a response: accepted when result is true or a non-null
// non-false value; code is the error array's first element.
func replyStatus(msg *stratum.Message) (code int64, accepted bool) {
	if msg.Error.Kind == stratum.KindArray {
		code, _ = msg.Error.Index(0).Int64()
		return code, false
	}
	switch msg.Result.Kind {
	case stratum.KindTrue, stratum.KindArray, stratum.KindObject:
		return 0, true
	}
	return 0, false
}

func (m *miner) submitReply(id int64, accepted bool, code int64) {
	now := time.Now().UnixNano()
	m.mu.Lock()
	sent, ok := m.pending[id]
	delete(m.pending, id)
	m.mu.Unlock()
	if !ok {
		return
	}
	m.e.rec.submitLat.Record(time.Duration(now - sent))
	m.e.rec.answered.Add(1)
	if accepted {
		m.e.rec.accepted.Add(1)
	} else {
		m.e.rec.reject(code)
	}
}

// jobFeed is what the server pushes to a stratum connection: its difficulty, version mask and
// newest job. Miners and agent farms embed it; notification runs on the connection's reader.
type jobFeed struct {
	vmask   atomic.Uint32
	diff    atomic.Uint64 // float64 bits
	work    atomic.Pointer[heldWork]
	lastKey string // reader only
	nJobs   int    // reader only
	// first, when not nil, is closed at the first job.
	first chan struct{}
}

// waitClosed waits (at most d) for ch to be closed; false if it was not.
func waitClosed(ctx context.Context, ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// notification applies a server notification; kind+name names the connection in error records
// (joined only on the error path).
func (f *jobFeed) notification(msg *stratum.Message, rec *recorder, kind, name string) {
	switch {
	case msg.IsMethod("mining.set_difficulty"):
		if d, ok := msg.Param(0).Float64(); ok && d > 0 && !math.IsInf(d, 0) {
			f.diff.Store(math.Float64bits(d))
			rec.setDiffs.Add(1)
		}
	case msg.IsMethod("mining.notify"):
		w, err := ParseNotify(msg)
		if err != nil {
			rec.err(kind+name, err)
			return
		}
		now := time.Now()
		rec.notifies.Add(1)
		f.work.Store(&heldWork{Work: w, diff: math.Float64frombits(f.diff.Load())})
		f.nJobs++
		if f.nJobs == 1 && f.first != nil {
			close(f.first)
		}
		// The first job after authorize is a join, not a broadcast; a
		// periodic re-send of the same job is not a new one.
		if f.nJobs > 1 && w.Key != f.lastKey {
			rec.jobReceived(w.Key, now)
		}
		f.lastKey = w.Key
	case msg.IsMethod("mining.set_version_mask"):
		if s, ok := msg.Param(0).Str(); ok {
			if v, ok := parseHex32(s); ok {
				f.vmask.Store(v)
			}
		}
	}
}

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
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/stratum"
)

// AgentString is the subscribe agent a farm sends: the "btccom-agent/"
// prefix is how btcpool (and the engine) recognise an agent (spec §5.1).
const AgentString = "btccom-agent/2.0.0-loadgen"

// Agent handshake request ids (btcagent's own string ids) and the numbers
// the reader maps them to.
var farmIDs = map[string]int64{"conf": idConfigure, "sub": idSubscribe, "auth": idAuthorize, "caps": 10, "caps_again": 11}

// farm is one agent connection with MinersPerAgent miners behind it.
type farm struct {
	e       *env
	c       *net.TCPConn
	n       int // miners
	name    string
	en1     []byte
	size    int
	jobFeed // the connection's set_difficulty, version mask and job
	// exps holds each miner's MINING_SET_DIFF exponent + expBias, 0 = none yet.
	exps []atomic.Int32
	sent []atomic.Int64 // submit index → unix ns sent (0: not outstanding)
	hs   chan hsReply
}

const expBias = 1000

// runFarm keeps agent idx connected until ctx ends.
func runFarm(ctx context.Context, e *env, idx int) {
	name := fmt.Sprintf("agent%04d", idx)
	backoff := 100 * time.Millisecond
	for round := 0; round < 1_000_000 && ctx.Err() == nil; round++ {
		if round > 0 {
			e.rec.reconnects.Add(1)
		}
		err := runFarmSession(ctx, e, name)
		if ctx.Err() != nil {
			return
		}
		e.rec.err(name, err)
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func runFarmSession(parent context.Context, e *env, name string) error {
	c, err := e.dial(parent)
	if err != nil {
		return err
	}
	defer closeConn(e.rec, c)
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()

	f := &farm{e: e, c: c, n: e.s.MinersPerAgent, name: name, exps: make([]atomic.Int32, e.s.MinersPerAgent),
		sent: make([]atomic.Int64, 1<<16), hs: make(chan hsReply, 8)}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		cancel(f.read())
	}()
	var submitted int64
	defer func() {
		cancel(nil)
		<-readerDone
		var out int64
		for i := range f.sent {
			if f.sent[i].Load() != 0 {
				out++
			}
		}
		e.rec.unanswered.Add(min(out, submitted))
	}()
	if err := f.handshake(ctx); err != nil {
		e.rec.handshakeFails.Add(1)
		return sessionErr(ctx, err)
	}
	e.rec.up()
	defer e.rec.sessionsUp.Add(-1)
	if err := f.register(ctx); err != nil {
		return sessionErr(ctx, err)
	}
	e.rec.workersUp.Add(int64(f.n))
	e.rec.workersEver.Add(int64(f.n))
	defer e.rec.workersUp.Add(-int64(f.n))
	return sessionErr(ctx, submitting(ctx, e, func(ctx context.Context) error { return f.submitLoop(ctx, &submitted) }))
}

func (f *farm) write(b []byte) error {
	_ = f.c.SetWriteDeadline(time.Now().Add(f.e.s.ResponseTimeout))
	_, err := f.c.Write(b)
	return err
}

func (f *farm) call(ctx context.Context, id int64, line string) (hsReply, error) {
	m := miner{e: f.e, c: f.c, hs: f.hs}
	return m.call(ctx, id, line)
}

// handshake is btcagent's bootstrap (spec §5.1).
func (f *farm) handshake(ctx context.Context) error {
	s := f.e.s
	if _, err := f.call(ctx, farmIDs["caps"], `{"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres"]]}`+"\n"); err != nil {
		return fmt.Errorf("agent.get_capabilities: %w", err)
	}
	if s.VersionRolling {
		if _, err := f.call(ctx, idConfigure, `{"id":"conf","method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":0}]}`+"\n"); err != nil {
			return fmt.Errorf("configure: %w", err)
		}
	}
	r, err := f.call(ctx, idSubscribe, `{"id":"sub","method":"mining.subscribe","params":["`+AgentString+`"]}`+"\n")
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if !r.ok {
		return fmt.Errorf("subscribe: error %d (btcagent needs extranonce2 size 8)", r.code)
	}
	r, err = f.call(ctx, idAuthorize, `{"id":"auth","method":"mining.authorize","params":["`+s.User+`",""]}`+"\n")
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if !r.ok {
		return fmt.Errorf("authorize %s: error %d", s.User, r.code)
	}
	if _, err := f.call(ctx, farmIDs["caps_again"], `{"id":"caps_again","method":"agent.get_capabilities","params":[["verrol","subres"]]}`+"\n"); err != nil {
		return fmt.Errorf("agent.get_capabilities again: %w", err)
	}
	return nil
}

// register sends REGISTER_WORKER for every miner, RegisterRate a second
// (batched 10 times a second) or all at once.
func (f *farm) register(ctx context.Context) error {
	var buf []byte
	batch := f.n
	tick := 100 * time.Millisecond
	if r := f.e.s.RegisterRate; r > 0 {
		batch = max(1, int(r/10))
	}
	for i := 0; i < f.n; {
		buf = buf[:0]
		for k := 0; k < batch && i < f.n; k, i = k+1, i+1 {
			var err error
			buf, err = agent.AppendRegisterWorker(buf, uint16(i), "loadgen-miner/1.0", fmt.Sprintf("%s-%05d", f.name, i))
			if err != nil {
				return err
			}
		}
		if err := f.write(buf); err != nil {
			return err
		}
		if i < f.n && f.e.s.RegisterRate > 0 && !sleepCtx(ctx, tick) {
			return context.Cause(ctx)
		}
	}
	return nil
}

// minerDiff is the difficulty miner sid grinds to. The engine tells agents
// fractional difficulties as exponent 0 (the frame's u8 cannot say less),
// so exponent 0 falls back to the connection's own set_difficulty when that
// is below 1; without any MINING_SET_DIFF the connection's difficulty applies
// too (workers start there).
func (f *farm) minerDiff(sid int, connDiff float64) float64 {
	v := f.exps[sid].Load()
	if v == 0 {
		return connDiff
	}
	e := int(v - expBias)
	if e == 0 && connDiff > 0 && connDiff < 1 {
		return connDiff
	}
	return math.Ldexp(1, e)
}

// farmShare is one due submit.
type farmShare struct {
	sid   uint16
	en2   uint32
	vbits uint32
	nonce uint32
	ok    bool
}

// submitLoop submits n×Rate shares a second, round robin over the miners,
// waking every 10 ms and writing each batch in one write.
func (f *farm) submitLoop(ctx context.Context, submitted *int64) error {
	s := f.e.s
	if s.Rate == 0 {
		return errStopped
	}
	total := float64(f.n) * s.Rate
	start := time.Now()
	var done, next uint64
	var index uint16
	en2s := make([]uint32, f.n)
	var shares []farmShare
	var buf []byte
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-f.e.stop:
			return errStopped
		case <-tick.C:
		}
		due := uint64(time.Since(start).Seconds() * total)
		if due-done > 10000 { // far behind: skip rather than burst
			done = due - 10000
		}
		w := f.work.Load()
		if w == nil || due <= done {
			continue
		}
		if due-done > uint64(f.n) { // never more than one share per miner per wake
			done = due - uint64(f.n)
		}
		connDiff := math.Float64frombits(f.diff.Load())
		vm := f.vmask.Load()
		shares = shares[:0]
		for skipped := 0; done < due && skipped < f.n; {
			sid := int(next % uint64(f.n))
			next++
			// A miner may submit once the pool has told it its difficulty:
			// btcpool and the engine record a registered miner's difficulty
			// per job only from the next notify on (and send MINING_SET_DIFF
			// with it); shares before that are "job not found".
			if f.exps[sid].Load() == 0 {
				skipped++
				continue
			}
			skipped = 0
			done++
			en2s[sid]++
			sh := farmShare{sid: uint16(sid), en2: en2s[sid]}
			if vm != 0 {
				sh.vbits = rand.Uint32() & vm
			}
			shares = append(shares, sh)
		}
		done = due // shares of miners not ready yet are dropped, not queued
		f.solveAll(ctx, w, shares, connDiff)
		if f.e.stopped() {
			return errStopped
		}
		buf = buf[:0]
		now := time.Now().UnixNano()
		for _, sh := range shares {
			if !sh.ok {
				continue
			}
			sub := agent.Submit{JobID: w.ShortID, SessionID: sh.sid, ExtraNonce2: sh.en2, Nonce: sh.nonce,
				Time: w.Time, HasTime: true, VersionMask: sh.vbits, HasVersionMask: vm != 0}
			buf = agent.AppendSubmit(buf, &sub)
			f.sent[index].Store(now)
			index++
			*submitted++
			f.e.rec.submitted.Add(1)
		}
		if len(buf) > 0 {
			if err := f.write(buf); err != nil {
				return err
			}
		}
	}
}

// solveAll finds nonces for shares, spread over the CPUs.
func (f *farm) solveAll(ctx context.Context, w *heldWork, shares []farmShare, connDiff float64) {
	one := func(sh *farmShare) {
		var en2 [8]byte
		binary.BigEndian.PutUint64(en2[:], uint64(sh.sid)<<32|uint64(sh.en2))
		sh.nonce, sh.ok = f.e.solve(ctx, w.Work, f.en1, en2[:], w.Time, sh.vbits, f.minerDiff(int(sh.sid), connDiff))
	}
	workers := runtime.GOMAXPROCS(0)
	if f.e.s.SimulatorMode || len(shares) < 2 || workers < 2 {
		for i := range shares {
			one(&shares[i])
		}
		return
	}
	var wg sync.WaitGroup
	var nextIdx atomic.Int64
	for range min(workers, len(shares)) {
		wg.Go(func() {
			for {
				i := int(nextIdx.Add(1) - 1)
				if i >= len(shares) {
					return
				}
				one(&shares[i])
			}
		})
	}
	wg.Wait()
}

// read handles lines and frames from the pool.
func (f *farm) read() error {
	r := newReader(f.c)
	var msg stratum.Message
	for {
		b, isFrame, err := r.next()
		if err != nil {
			return err
		}
		if isFrame {
			f.frame(b)
			continue
		}
		if stratum.Parse(b, &msg) != nil {
			f.e.rec.err(f.name, fmt.Errorf("server sent a line that is not JSON: %.80q", b))
			continue
		}
		if msg.Method.Kind == stratum.KindString {
			f.jobFeed.notification(&msg, f.e.rec, "", f.name)
			continue
		}
		var id int64
		if sid, ok := msg.ID.String(); ok {
			id = farmIDs[string(sid)]
		} else if n, ok := msg.ID.Number(); ok {
			id = n
		}
		if id == 0 {
			continue
		}
		code, accepted := replyStatus(&msg)
		switch id {
		case idConfigure:
			if mask, ok := msg.Result.Get("version-rolling.mask").Str(); ok {
				if v, ok := parseHex32(mask); ok {
					f.vmask.Store(v)
				}
			}
		case idSubscribe:
			en1, ok1 := msg.Result.Index(1).Str()
			size, ok2 := msg.Result.Index(2).Int64()
			b, err := hex.DecodeString(string(en1))
			if !ok1 || !ok2 || err != nil || len(b) != 4 || size != 8 {
				accepted = false
			} else {
				f.en1, f.size = b, int(size)
			}
		}
		select {
		case f.hs <- hsReply{id: id, ok: accepted, code: code}:
		default:
		}
	}
}

func (f *farm) frame(b []byte) {
	switch agent.FrameCmd(b) {
	case agent.CmdSubmitResponse:
		index, status, err := agent.DecodeSubmitResponse(b)
		if err != nil {
			f.e.rec.err(f.name, err)
			return
		}
		sent := f.sent[index].Swap(0)
		if sent == 0 {
			f.e.rec.err(f.name, fmt.Errorf("SUBMIT_RESPONSE for index %d that is not outstanding", index))
			return
		}
		f.e.rec.submitLat.Record(time.Duration(time.Now().UnixNano() - sent))
		f.e.rec.answered.Add(1)
		if st := stratum.Status(status); st.IsAccepted() {
			f.e.rec.accepted.Add(1)
		} else {
			f.e.rec.reject(int64(status))
		}
	case agent.CmdMiningSetDiff:
		var d agent.SetDiff
		if err := agent.DecodeSetDiff(b, &d); err != nil {
			f.e.rec.err(f.name, err)
			return
		}
		f.e.rec.agentSetDiffs.Add(1)
		for i := 0; i < d.Count(); i++ {
			if sid := int(d.SessionID(i)); sid < f.n {
				f.exps[sid].Store(int32(d.DiffExp) + expBias)
			}
		}
	default:
		f.e.rec.err(f.name, errors.New("unexpected frame "+agent.FrameCmd(b).String()))
	}
}

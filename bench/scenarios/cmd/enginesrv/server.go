package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashpool/hashpool/bench/baseline"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/engine/userlist"
	"golang.org/x/sys/unix"
)

// stratumServer is what main drives: hashpool's engine or the baseline.
type stratumServer interface {
	// serve runs until ctx ends; ready is closed once it listens.
	serve(ctx context.Context, ready chan<- struct{}) error
	// publish hands the server a job and waits (at most 30 s) until it has
	// been written to every session; it returns the server's own measure
	// of that broadcast.
	publish(j *syntheticJob) (time.Duration, error)
	// add hands the server a job at the current height without waiting
	// for a broadcast (the engine sends it at its periodic notify).
	add(j *syntheticJob) error
	// counters fills the server's counters into st.
	counters(st *stats)
}

// engineServer is hashpool's engine on bus/mem with embedded users.
type engineServer struct {
	srv      *engine.Server
	bus      *mem.Bus
	prod     bus.Producer
	records  atomic.Int64 // share records drained from the bus
	solved   atomic.Int64 // solved-share messages drained
	events   atomic.Int64 // common events drained
	consumed chan struct{}
}

// Retention of the in-process bus: a real deployment ships records to Kafka
// at once, so the process should not hold more than a few seconds of them.
const (
	busMaxRecords = 1 << 16
	busMaxBytes   = 16 << 20
)

func newEngineServer(cfg *config, dir string) (*engineServer, error) {
	o := engine.NewOptions()
	o.ServerID = uint8(cfg.serverID)
	o.Listen = cfg.listen
	o.ReusePort = cfg.reusePort
	o.DataDir = dir
	o.DefaultDifficulty = cfg.difficulty
	o.MinDifficulty = min(cfg.difficulty, o.MinDifficulty)
	o.Simulator = cfg.simulator
	if cfg.fixedDiff {
		o.DevFixedDifficulty = cfg.difficulty
	}
	o.VersionMask = cfg.versionMask
	o.GracePeriod = 500 * time.Millisecond
	if cfg.loops > 0 {
		o.EventLoops = cfg.loops
	}
	b := mem.New(mem.Options{Retention: mem.Retention{MaxRecords: busMaxRecords, MaxBytes: busMaxBytes}})
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		return nil, err
	}
	users, err := userlist.OpenEmbedded(dir, nil)
	if err != nil {
		prod.Close()
		return nil, err
	}
	srv, err := engine.New(o, engine.Deps{Producer: prod, Users: users})
	if err != nil {
		prod.Close()
		return nil, err
	}
	return &engineServer{srv: srv, bus: b, prod: prod, consumed: make(chan struct{})}, nil
}

func (e *engineServer) serve(ctx context.Context, ready chan<- struct{}) error {
	topics := bus.DefaultTopics()
	drainers := 0
	for _, t := range []struct {
		topic string
		n     *atomic.Int64
	}{{topics.Share, &e.records}, {topics.SolvedShare, &e.solved}, {topics.CommonEvents, &e.events}} {
		cons, err := e.bus.NewConsumer(t.topic, bus.Start{})
		if err != nil {
			return err
		}
		drainers++
		go func() {
			defer func() { e.consumed <- struct{}{} }()
			defer cons.Close()
			for ctx.Err() == nil {
				msgs, err := cons.Poll(ctx)
				if err != nil {
					return
				}
				t.n.Add(int64(len(msgs)))
			}
		}()
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx) }()
	select {
	case <-e.srv.Ready():
		close(ready)
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("engine did not start listening within 30 s")
	}
	err := <-done
	for range drainers {
		<-e.consumed
	}
	e.prod.Close()
	e.bus.Close()
	return err
}

func (e *engineServer) add(j *syntheticJob) error {
	return e.srv.AddJob(&engine.JobParams{ID: j.ID, Height: j.Height, PrevHash: j.PrevHash, Coinbase1: j.Coinbase1,
		Coinbase2: j.Coinbase2, Branch: j.Branch, Version: j.Version, Bits: j.Bits, Time: j.Time, MinTime: j.MinTime})
}

func (e *engineServer) publish(j *syntheticJob) (time.Duration, error) {
	m := e.srv.Metrics()
	before := m.Broadcasts.Load()
	if err := e.add(j); err != nil {
		return 0, err
	}
	// The broadcast runs on the event loops; Broadcasts counts it once the
	// last loop is done. Before the first connection there is no loop and
	// the engine never counts the broadcast: then give up after 100 ms.
	start := time.Now()
	for m.Broadcasts.Load() == before {
		switch waited := time.Since(start); {
		case waited > 30*time.Second:
			return 0, errors.New("broadcast not done within 30 s")
		case waited > 100*time.Millisecond && m.Sessions.Load() == 0:
			return 0, nil
		}
		time.Sleep(200 * time.Microsecond)
	}
	return time.Duration(m.LastBroadcastNanos.Load()), nil
}

func (e *engineServer) counters(st *stats) {
	m := e.srv.Metrics()
	st.Sessions = m.Sessions.Load()
	st.Authorized = m.Authorized.Load()
	st.Accepted = m.SharesAccepted.Load()
	st.Solved = m.SharesSolved.Load()
	st.Rejected = m.SharesStale.Load() + m.SharesDuplicate.Load() + m.SharesLowDiff.Load() + m.SharesOther.Load()
	st.Broadcasts = m.Broadcasts.Load()
	st.LastBroadcastUs = m.LastBroadcastNanos.Load() / 1000
	st.RecordsConsumed = e.records.Load()
	st.SolvedConsumed = e.solved.Load()
	st.EventsConsumed = e.events.Load()
	st.RefusedConns = m.Rejected.Load()
	st.SlowClosed = m.SlowClosed.Load()
	st.TimedOut = m.TimedOut.Load()
}

// baselineServer is the goroutine-per-connection server of bench/baseline.
type baselineServer struct {
	srv *baseline.Server
	cfg *config
}

func newBaselineServer(cfg *config) *baselineServer {
	return &baselineServer{cfg: cfg, srv: baseline.New(baseline.Options{Difficulty: cfg.difficulty,
		VersionMask: cfg.versionMask, NoVersionRolling: cfg.versionMask == 0})}
}

func (b *baselineServer) serve(ctx context.Context, ready chan<- struct{}) error {
	lc := net.ListenConfig{}
	if b.cfg.reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
			return errors.Join(err, serr)
		}
	}
	ln, err := lc.Listen(ctx, "tcp", b.cfg.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", b.cfg.listen, err)
	}
	close(ready)
	return b.srv.Serve(ctx, ln)
}

func (b *baselineServer) publish(j *syntheticJob) (time.Duration, error) {
	b.srv.Broadcast(&baseline.Job{ID: j.ID, Height: j.Height, PrevHash: j.PrevHash, Coinbase1: j.Coinbase1,
		Coinbase2: j.Coinbase2, Branch: j.Branch, Version: j.Version, Bits: j.Bits, Time: j.Time, MinTime: j.MinTime})
	return time.Duration(b.srv.Metrics().LastBroadcastNanos.Load()), nil
}

// add broadcasts at once: the baseline has no periodic notify.
func (b *baselineServer) add(j *syntheticJob) error {
	_, err := b.publish(j)
	return err
}

func (b *baselineServer) counters(st *stats) {
	m := b.srv.Metrics()
	st.Sessions = m.Sessions.Load()
	st.Accepted = m.Accepted.Load()
	st.Solved = m.Solved.Load()
	st.Rejected = m.Rejected.Load()
	st.Broadcasts = m.Broadcasts.Load()
	st.LastBroadcastUs = m.LastBroadcastNanos.Load() / 1000
}

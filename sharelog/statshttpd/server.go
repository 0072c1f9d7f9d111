package statshttpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/store"
)

// Defaults, as btcpool's statshttpd.cfg.
const (
	DefaultListenAddr            = "0.0.0.0:8080"
	DefaultExpectedOnlineWorkers = 100000
	DefaultFlushInterval         = 15 * time.Second
	DefaultExpireInterval        = 30 * time.Minute
	// catchUpIdle is how long the share consumer must find nothing new before the service
	// counts as caught up with the topic and stops answering "initializing".
	catchUpIdle = time.Second
)

// Options configures a [Server].
type Options struct {
	Topics bus.Topics
	// ListenAddr is the HTTP API's address; empty disables the listener (Handler still works).
	ListenAddr string
	// ExpectedOnlineWorkers sizes how far back the share topic is read at start: the last
	// ExpectedOnlineWorkers*3600/10 records, about an hour at one share per 10 s per worker.
	ExpectedOnlineWorkers int
	// FlushInterval is how often mining_workers is written.
	FlushInterval time.Duration
	// ExpireInterval is how often workers silent for an hour are dropped.
	ExpireInterval time.Duration
	// FileLastFlushTime, if set, gets the unix time of each successful flush (monitoring).
	FileLastFlushTime string
	// ShareLogDir, when set, is the sharelogger's directory: at start the windows (and each
	// worker's accept count, last share time and IP) are rebuilt from the last hour of its
	// files before the share topic is consumed, and records of the topic the files already
	// hold are not counted again (see DurableOffsets). Empty: only the topic's tail is read.
	ShareLogDir string
	// ShareLogChain names the share-log files (sharelog<Chain>-YYYY-MM-DD.bin; default "BTC").
	ShareLogChain string
	// DurableOffsets must match the sharelogger's: true when the bus keeps offsets across
	// process restarts (Kafka), false for the in-process bus.
	DurableOffsets bool
	// DrainIdle is how long the share topic must stay silent after Drain before Run makes
	// its last flush and returns (default 500 ms).
	DrainIdle time.Duration
	Logger    *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Validate fills defaults and reports every problem at once.
func (o *Options) Validate() error {
	if o.Topics == (bus.Topics{}) {
		o.Topics = bus.DefaultTopics()
	}
	if o.ExpectedOnlineWorkers == 0 {
		o.ExpectedOnlineWorkers = DefaultExpectedOnlineWorkers
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.ExpireInterval == 0 {
		o.ExpireInterval = DefaultExpireInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ShareLogChain == "" {
		o.ShareLogChain = "BTC"
	}
	if o.DrainIdle == 0 {
		o.DrainIdle = 500 * time.Millisecond
	}
	var errs []error
	if err := o.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.ExpectedOnlineWorkers < 0 {
		errs = append(errs, errors.New("statshttpd: expected_online_workers must not be negative"))
	}
	if o.FlushInterval < time.Second {
		errs = append(errs, errors.New("statshttpd: flush interval below 1s"))
	}
	if o.ExpireInterval < time.Second {
		errs = append(errs, errors.New("statshttpd: expire interval below 1s"))
	}
	if !chainName.MatchString(o.ShareLogChain) {
		errs = append(errs, fmt.Errorf("statshttpd: share-log chain %q must be 1-16 letters, digits or _", o.ShareLogChain))
	}
	if o.DrainIdle < 10*time.Millisecond || o.DrainIdle > time.Minute {
		errs = append(errs, fmt.Errorf("statshttpd: drain idle %v out of range 10ms..1m", o.DrainIdle))
	}
	return errors.Join(errs...)
}

var chainName = regexp.MustCompile(`^[A-Za-z0-9_]{1,16}$`)

// WorkerStore is where the live statistics go; *store.Store implements it.
type WorkerStore interface {
	UpsertMiningWorkers(ctx context.Context, workers []store.MiningWorker) error
	UpdateWorkerName(ctx context.Context, w store.WorkerName) error
}

// Server is btcpool's statshttpd: live share windows per worker, user and pool, flushed to
// mining_workers and served over HTTP.
type Server struct {
	opts  Options
	bus   bus.Bus
	db    WorkerStore
	stats *Stats
	h     *handler

	initializing atomic.Bool
	flushTime    atomic.Int64
	ignored      atomic.Int64
	rebuilt      atomic.Int64
	replayed     atomic.Int64
	addr         atomic.Pointer[net.Addr]

	drainOnce sync.Once
	drain     chan struct{}
}

// New checks the options; db may be nil (no database output).
func New(opts Options, b bus.Bus, db WorkerStore) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, bus: b, db: db, stats: NewStats(opts.Now), drain: make(chan struct{})}
	s.initializing.Store(true)
	s.h = &handler{stats: s.stats, started: opts.Now(), initializing: &s.initializing, flushTime: &s.flushTime}
	return s, nil
}

// Handler is the HTTP API (/, /worker_status, /flush_db_time).
func (s *Server) Handler() http.Handler { return s.h }

// Stats are the live windows.
func (s *Server) Stats() *Stats { return s.stats }

// Ready reports whether the service has caught up with the share topic.
func (s *Server) Ready() bool { return !s.initializing.Load() }

// Rebuilt is the number of shares counted from the share-log files at start.
func (s *Server) Rebuilt() int64 { return s.rebuilt.Load() }

// Replayed is the number of share messages the topic delivered that the rebuilt windows
// already held, and that were therefore not counted again.
func (s *Server) Replayed() int64 { return s.replayed.Load() }

// Drain asks Run to finish once the share topic is exhausted: as soon as a poll finds
// nothing for Options.DrainIdle (and the bus is not failing), Run flushes mining_workers
// and returns nil. For an ordered shutdown: stop sserver, call Drain, wait for Run (bounded
// by its ctx). It may be called before or during Run, from any goroutine, more than once.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.drain) }) }

// Addr is the HTTP listener's address once Run has started it, else nil.
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// Run consumes shares and events, flushes and serves HTTP until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	tail := int64(s.opts.ExpectedOnlineWorkers) * 3600 / 10
	shares, err := s.bus.NewConsumer(s.opts.Topics.Share, bus.Start{Tail: tail})
	if err != nil {
		return fmt.Errorf("statshttpd: %w", err)
	}
	defer shares.Close()
	events, err := s.bus.NewConsumer(s.opts.Topics.CommonEvents, bus.Start{Tail: tail})
	if err != nil {
		return fmt.Errorf("statshttpd: %w", err)
	}
	defer events.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	n := 3
	go func() { errc <- s.consumeShares(ctx, shares) }()
	go func() { errc <- s.consumeEvents(ctx, events) }()
	go func() { errc <- s.housekeeping(ctx) }()
	if s.opts.ListenAddr != "" {
		ln, err := net.Listen("tcp", s.opts.ListenAddr)
		if err != nil {
			cancel()
			for range n {
				<-errc
			}
			return fmt.Errorf("statshttpd: listen: %w", err)
		}
		a := ln.Addr()
		s.addr.Store(&a)
		srv := &http.Server{Handler: s.h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		n++
		go func() {
			err := srv.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			defer c()
			srv.Shutdown(sctx)
		}()
	}
	first := <-errc
	cancel()
	for range n - 1 {
		<-errc
	}
	if errors.Is(first, context.Canceled) || errors.Is(first, bus.ErrClosed) || errors.Is(first, errDrained) {
		first = nil
	}
	// A last flush so a clean shutdown loses nothing of the last interval.
	if s.db != nil {
		fctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		s.flush(fctx)
		c()
	}
	return first
}

// errDrained ends Run after Drain once the share topic is exhausted.
var errDrained = errors.New("statshttpd: drained")

func (s *Server) consumeShares(ctx context.Context, c bus.Consumer) error {
	start := s.opts.Now().Unix()
	skip := resume{}
	if s.opts.ShareLogDir != "" {
		var n int64
		skip, n = s.rebuild()
		s.rebuilt.Store(n)
		s.opts.Logger.Info("statshttpd: windows rebuilt from the share log", "dir", s.opts.ShareLogDir, "shares", n, "resume_offsets", skip)
	}
	inc := bus.Incident{Log: s.opts.Logger, What: "statshttpd: polling " + s.opts.Topics.Share}
	// A poll waiting for shares that will never come (sserver has stopped) must end when Drain
	// is called: dctx is cancelled then.
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	go func() {
		select {
		case <-s.drain:
			dcancel()
		case <-dctx.Done():
		}
	}()
	var sh btcpool.Share
	for {
		pctx, cancel := dctx, context.CancelFunc(func() {})
		draining := false
		select {
		case <-s.drain:
			draining = true
			pctx, cancel = context.WithTimeout(ctx, s.opts.DrainIdle)
		default:
			if s.initializing.Load() {
				pctx, cancel = context.WithTimeout(dctx, catchUpIdle)
			}
		}
		msgs, err := bus.Poll(pctx, c, &inc)
		cancel()
		if err != nil && ctx.Err() == nil && !draining && dctx.Err() != nil {
			continue // Drain was called during the poll: poll again in draining mode
		}
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				if !inc.Failing() {
					s.caughtUp()
					if draining {
						return errDrained
					}
				}
				continue
			}
			return err
		}
		for i := range msgs {
			m := &msgs[i]
			if skip.has(m) {
				s.replayed.Add(1)
				continue
			}
			if err := btcpool.DecodeShareMessage(m.Value, &sh); err != nil || !sh.Valid() {
				s.ignored.Add(1)
				continue
			}
			if !s.stats.AddShare(&sh) {
				s.ignored.Add(1)
			}
			if sh.Timestamp >= start {
				s.caughtUp()
			}
		}
	}
}

func (s *Server) caughtUp() {
	if s.initializing.CompareAndSwap(true, false) {
		s.opts.Logger.Info("statshttpd: caught up with the share topic", "ignored", s.ignored.Load())
	}
}

func (s *Server) consumeEvents(ctx context.Context, c bus.Consumer) error {
	var ev btcpool.CommonEvent
	inc := bus.Incident{Log: s.opts.Logger, What: "statshttpd: polling " + s.opts.Topics.CommonEvents}
	for {
		msgs, err := bus.Poll(ctx, c, &inc)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := btcpool.DecodeCommonEvent(m.Value, &ev); err != nil {
				s.opts.Logger.Warn("statshttpd: bad common event", "err", err)
				continue
			}
			if ev.Type != btcpool.EventTypeWorkerUpdate || s.db == nil || ev.UserID <= 0 {
				continue
			}
			err := s.db.UpdateWorkerName(ctx, store.WorkerName{PUID: ev.UserID, WorkerID: ev.WorkerID, WorkerName: ev.WorkerName, MinerAgent: ev.MinerAgent})
			if err != nil && ctx.Err() == nil {
				s.opts.Logger.Warn("statshttpd: worker update", "puid", ev.UserID, "worker_id", ev.WorkerID, "err", err)
			}
		}
	}
}

func (s *Server) housekeeping(ctx context.Context) error {
	flush := time.NewTicker(s.opts.FlushInterval)
	defer flush.Stop()
	expire := time.NewTicker(s.opts.ExpireInterval)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-flush.C:
			if s.db != nil && s.Ready() {
				s.flush(ctx)
			}
		case <-expire.C:
			if n := s.stats.Expire(); n > 0 {
				s.opts.Logger.Debug("statshttpd: expired idle workers", "count", n)
			}
		}
	}
}

// Flush writes every worker's windows to mining_workers now.
func (s *Server) Flush(ctx context.Context) error { return s.flush(ctx) }

func (s *Server) flush(ctx context.Context) error {
	rows := s.stats.Rows()
	if len(rows) > 0 {
		if err := s.db.UpsertMiningWorkers(ctx, rows); err != nil {
			s.opts.Logger.Error("statshttpd: flush mining_workers", "rows", len(rows), "err", err)
			return err
		}
	}
	now := s.opts.Now().Unix()
	s.flushTime.Store(now)
	if s.opts.FileLastFlushTime != "" {
		if err := os.WriteFile(s.opts.FileLastFlushTime, strconv.AppendInt(nil, now, 10), 0o644); err != nil {
			s.opts.Logger.Warn("statshttpd: file_last_flush_time", "err", err)
		}
	}
	return nil
}

package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/store"
)

// Defaults for Options.
const (
	DefaultSampleInterval = 2 * time.Second
	DefaultMaxClients     = 64
	DefaultBlockRows      = 20
	historyLength         = 24 * 60 // one point a minute for a day
	shortLength           = 150     // one point per sample for the 5-minute chart
)

// Rows is where the live windows come from: statshttpd's Stats implements it (the rows it
// writes to mining_workers; WorkerID 0 is a user's aggregate).
type Rows interface {
	Rows() []store.MiningWorker
}

// Blocks is the found-blocks table and the per-worker names; *store.Store implements it.
type Blocks interface {
	FoundBlocks(ctx context.Context, limit int) ([]store.FoundBlock, error)
	MiningWorkers(ctx context.Context, puid int32) ([]store.MiningWorker, error)
	StatsPoolHours(ctx context.Context, from, to int32) ([]store.PoolHour, error)
}

// Chain answers how many confirmations a block has (-1: not on the best chain). A node client
// adapter implements it; nil leaves confirmations out.
type Chain interface {
	Confirmations(ctx context.Context, hash string) (int64, error)
}

// Counter is one engine counter shown on the page (shares by status, sessions, agents).
type Counter struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Options configure a [Server].
type Options struct {
	// Bus and JobTopic, when set, let the page show the current job (read from the job topic).
	Bus      bus.Bus
	JobTopic string
	// Subsidy, when set, is the block subsidy at a height, to show a job's fees.
	Subsidy func(height int32) int64
	// Counters, when set, returns the engine's counters (only inside `hashpool run`).
	Counters func() []Counter
	// SampleInterval is how often the summary is recomputed and pushed (default 2 s).
	SampleInterval time.Duration
	// MaxClients bounds the live connections (default 64); more get 503.
	MaxClients int
	// Token, when not empty, is required: "Authorization: Bearer <token>", or ?token=<token>
	// once (which sets a cookie).
	Token string
	// BasicUser and BasicPassword, when set, require HTTP basic auth.
	BasicUser, BasicPassword string
	Logger                   *slog.Logger
	Now                      func() time.Time
}

// Validate fills defaults and reports every problem at once.
func (o *Options) Validate() error {
	if o.SampleInterval == 0 {
		o.SampleInterval = DefaultSampleInterval
	}
	if o.MaxClients == 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var errs []error
	if o.SampleInterval < 100*time.Millisecond {
		errs = append(errs, errors.New("dashboard: sample interval below 100 ms"))
	}
	if o.MaxClients < 0 {
		errs = append(errs, errors.New("dashboard: max clients must not be negative"))
	}
	if (o.BasicUser == "") != (o.BasicPassword == "") {
		errs = append(errs, errors.New("dashboard: basic auth needs both a user and a password"))
	}
	if o.Bus != nil && o.JobTopic == "" {
		errs = append(errs, errors.New("dashboard: a bus without a job topic"))
	}
	return errors.Join(errs...)
}

// Server serves the dashboard. Create it with [New], serve [Server.Handler] and run
// [Server.Run] for the live data.
type Server struct {
	opts   Options
	rows   Rows
	blocks Blocks
	chain  Chain

	mu       sync.Mutex
	summary  []byte        // the newest summary JSON
	changed  chan struct{} // closed and replaced when summary changes
	short    []point       // one point per sample, shortLength of them
	history  []point       // one point a minute, historyLength of them
	job      *jobView
	found    []blockView
	names    map[workerKey]string
	rowsNow  []store.MiningWorker // the rows of the last sample: pages of the table read these
	clients  int
	lastHist int64
}

type workerKey struct {
	puid     int32
	workerID int64
}

type point struct {
	T  int64   `json:"t"`  // unix seconds
	HR float64 `json:"hr"` // hashes per second
}

// New checks the options. rows is required; blocks and chain may be nil.
func New(opts Options, rows Rows, blocks Blocks, chain Chain) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if rows == nil {
		return nil, errors.New("dashboard: no statistics source")
	}
	s := &Server{opts: opts, rows: rows, blocks: blocks, chain: chain, changed: make(chan struct{}), names: map[workerKey]string{}}
	s.summary = s.buildSummary()
	return s, nil
}

// Run samples the statistics and pushes them to the live clients until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.seedHistory(ctx)
	if s.opts.Bus != nil {
		c, err := s.opts.Bus.NewConsumer(s.opts.JobTopic, bus.Start{Tail: 1})
		if err != nil {
			return err
		}
		defer c.Close()
		go s.consumeJobs(ctx, c)
	}
	t := time.NewTicker(s.opts.SampleInterval)
	defer t.Stop()
	slow := 0
	for {
		if slow%5 == 0 { // blocks, confirmations and names every 5 samples
			s.refreshBlocks(ctx)
			s.refreshNames(ctx)
		}
		slow++
		s.sample()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sample adds a hashrate point and publishes a new summary.
func (s *Server) sample() {
	now := s.opts.Now().Unix()
	rows := s.rows.Rows()
	p := point{T: now, HR: hashrate(poolRows(rows).accept5m, 300)}
	s.mu.Lock()
	s.rowsNow = rows
	s.short = appendBounded(s.short, p, shortLength)
	if now-s.lastHist >= 60 {
		s.history = appendBounded(s.history, p, historyLength)
		s.lastHist = now
	}
	s.mu.Unlock()
	b := s.buildSummary()
	s.mu.Lock()
	s.summary = b
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func appendBounded(ps []point, p point, n int) []point {
	if len(ps) >= n {
		copy(ps, ps[len(ps)-n+1:])
		ps = ps[:n-1]
	}
	return append(ps, p)
}

// hashrate converts accepted difficulty over a window into hashes per second.
func hashrate(diff uint64, seconds float64) float64 { return float64(diff) * 4294967296 / seconds }

// seedHistory fills the day chart from slparser's hourly pool statistics, so a restart does
// not blank it.
func (s *Server) seedHistory(ctx context.Context) {
	if s.blocks == nil {
		return
	}
	now := s.opts.Now().UTC()
	from := now.Add(-24 * time.Hour)
	hours, err := s.blocks.StatsPoolHours(ctx, hourKey(from), hourKey(now))
	if err != nil {
		s.opts.Logger.Warn("dashboard: cannot read stats_pool_hour for the day chart", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hours {
		t, err := time.Parse("2006010215", strconv.Itoa(int(h.Hour)))
		if err != nil {
			continue
		}
		s.history = appendBounded(s.history, point{T: t.Add(time.Hour).Unix(), HR: hashrate(uint64(max(h.Accept, 0)), 3600)}, historyLength)
	}
}

func hourKey(t time.Time) int32 {
	y, m, d := t.Date()
	return int32(y*1000000 + int(m)*10000 + d*100 + t.Hour())
}

func (s *Server) consumeJobs(ctx context.Context, c bus.Consumer) {
	inc := &bus.Incident{Log: s.opts.Logger, What: "dashboard: reading the job topic"}
	var j btcpool.StratumJob
	for {
		msgs, err := bus.Poll(ctx, c, inc)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if btcpool.DecodeStratumJob(m.Value, &j) != nil {
				continue
			}
			v := &jobView{Height: j.Height, PrevHash: j.PrevHash, CoinbaseValue: j.CoinbaseValue, Created: int64(j.JobID >> 32), NTime: int64(j.NTime), Bits: j.NBits}
			if s.opts.Subsidy != nil {
				v.Fees = max(j.CoinbaseValue-s.opts.Subsidy(j.Height), 0)
			}
			s.mu.Lock()
			s.job = v
			s.mu.Unlock()
		}
	}
}

func (s *Server) refreshBlocks(ctx context.Context) {
	if s.blocks == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := s.blocks.FoundBlocks(ctx, DefaultBlockRows)
	if err != nil {
		s.opts.Logger.Warn("dashboard: cannot read found_blocks", "err", err)
		return
	}
	out := make([]blockView, 0, len(rows))
	for _, r := range rows {
		b := blockView{Height: r.Height, Hash: r.Hash, Worker: r.WorkerFullName, Rewards: r.Rewards, Size: r.Size,
			Orphaned: r.IsOrphaned, Found: r.CreatedAt.Unix(), Confirmations: nil}
		if s.chain != nil {
			if c, err := s.chain.Confirmations(ctx, r.Hash); err == nil {
				b.Confirmations = &c
			}
		}
		out = append(out, b)
	}
	s.mu.Lock()
	s.found = out
	s.mu.Unlock()
}

// refreshNames reads worker names (from worker_update events, kept in mining_workers) for the
// users that have live workers.
func (s *Server) refreshNames(ctx context.Context) {
	if s.blocks == nil {
		return
	}
	users := map[int32]bool{}
	for _, r := range s.currentRows() {
		if r.WorkerID == 0 {
			users[r.PUID] = true
		}
	}
	names := make(map[workerKey]string, len(s.names))
	for puid := range users {
		ws, err := s.blocks.MiningWorkers(ctx, puid)
		if err != nil {
			s.opts.Logger.Warn("dashboard: cannot read worker names", "puid", puid, "err", err)
			return
		}
		for _, w := range ws {
			if w.WorkerName != "" {
				names[workerKey{w.PUID, w.WorkerID}] = w.WorkerName
			}
		}
	}
	s.mu.Lock()
	s.names = names
	s.mu.Unlock()
}

// poolTotals are the pool's windows: the sum of every user's aggregate row.
type poolTotals struct {
	accept5m, accept15m, accept1h uint64
	stale15m, reject15m           uint64
	acceptCount                   int64
	users, workers                int
	rejects                       map[string]uint64 // reject status → difficulty, 15 min
}

// currentRows returns the rows of the last sample (read once per sample, however many
// clients page through the table).
func (s *Server) currentRows() []store.MiningWorker {
	s.mu.Lock()
	rows := s.rowsNow
	s.mu.Unlock()
	if rows == nil {
		rows = s.rows.Rows()
	}
	return rows
}

func poolRows(rows []store.MiningWorker) poolTotals {
	t := poolTotals{rejects: map[string]uint64{}}
	for _, r := range rows {
		if r.WorkerID != 0 {
			t.workers++
			continue
		}
		t.users++
		t.accept5m += uint64(max(r.Accept5m, 0))
		t.accept15m += uint64(max(r.Accept15m, 0))
		t.accept1h += uint64(max(r.Accept1h, 0))
		t.stale15m += uint64(max(r.Stale15m, 0))
		t.reject15m += uint64(max(r.Reject15m, 0))
		t.acceptCount += int64(r.AcceptCount)
		var d map[string]uint64
		if json.Unmarshal([]byte(r.RejectDetail15m), &d) == nil {
			for k, v := range d {
				t.rejects[k] += v
			}
		}
	}
	return t
}

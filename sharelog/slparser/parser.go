package slparser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/store"
)

// Defaults, as btcpool's slparser.cfg.
const (
	DefaultListenAddr    = "0.0.0.0:8081"
	DefaultFlushInterval = 15 * time.Second
	DefaultChain         = "BTC"
	// daySwitchDelay is how long after midnight the old day's file is still read before the
	// parser moves to the new day (btcpool waits 5 s too).
	daySwitchDelay = 5 * time.Second
	pollInterval   = 500 * time.Millisecond
)

// RecordReader reads share records from one share-log file, also while it grows.
type RecordReader interface {
	// Next reads the next complete record into s. It returns io.EOF when no complete record
	// is available yet; a later call may return more.
	Next(s *btcpool.Share) error
	Close() error
}

// OpenFunc opens a share-log file for reading; the error wraps fs.ErrNotExist when the file
// does not exist yet.
type OpenFunc func(path string) (RecordReader, error)

// Options configures a [Parser].
type Options struct {
	// DataDir holds the share-log files; Chain names them (sharelog<Chain>-YYYY-MM-DD.bin).
	DataDir string
	Chain   string
	// FileSuffix follows the date in file names (".bin"; ".bin.zst" for zstd files).
	FileSuffix string
	// Open opens a share-log file (required).
	Open OpenFunc
	// ListenAddr is the HTTP API's address; empty disables the listener.
	ListenAddr    string
	FlushInterval time.Duration
	// AcceptStale is slparserhttpd.accept_stale: count accepted-stale shares as accepted.
	AcceptStale bool
	// SubsidyInterval is the network's halving interval in blocks (210000; regtest 150).
	SubsidyInterval int32
	// Retention of the stats tables (store.DefaultRetention when zero).
	Retention store.Retention
	Logger    *slog.Logger
	Now       func() time.Time
}

// Validate fills defaults and reports every problem at once.
func (o *Options) Validate() error {
	if o.Chain == "" {
		o.Chain = DefaultChain
	}
	if o.FileSuffix == "" {
		o.FileSuffix = ".bin"
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.SubsidyInterval == 0 {
		o.SubsidyInterval = 210000
	}
	if o.Retention == (store.Retention{}) {
		o.Retention = store.DefaultRetention
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var errs []error
	if o.DataDir == "" {
		errs = append(errs, errors.New("slparser: data_dir is empty"))
	}
	if o.Open == nil {
		errs = append(errs, errors.New("slparser: no file opener"))
	}
	if o.FlushInterval < time.Second {
		errs = append(errs, errors.New("slparser: flush interval below 1s"))
	}
	if o.SubsidyInterval < 0 {
		errs = append(errs, errors.New("slparser: negative subsidy interval"))
	}
	return errors.Join(errs...)
}

// FileName is the share-log file of the UTC day containing t.
func FileName(dir, chain, suffix string, t time.Time) string {
	return filepath.Join(dir, "sharelog"+chain+"-"+t.UTC().Format("2006-01-02")+suffix)
}

// Parser is btcpool's slparser: it follows today's share-log file, aggregates it per hour and
// day for the pool, each user and each worker, writes the stats_* tables and serves the HTTP API.
type Parser struct {
	opts   Options
	db     StatsStore
	retain interface {
		DeleteOlder(ctx context.Context, now time.Time, r store.Retention) (int64, error)
	}
	h *handler

	mu  sync.Mutex
	day *Day

	addr atomic.Pointer[net.Addr]
}

// New checks the options; db may be nil (no database output). When db also implements
// DeleteOlder (as *store.Store does) retention is applied hourly.
func New(opts Options, db StatsStore) (*Parser, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Parser{opts: opts, db: db}
	if r, ok := db.(interface {
		DeleteOlder(ctx context.Context, now time.Time, r store.Retention) (int64, error)
	}); ok {
		p.retain = r
	}
	p.day = NewDay(opts.Now(), opts.SubsidyInterval, opts.AcceptStale)
	p.h = &handler{p: p, started: opts.Now()}
	return p, nil
}

// Handler is the HTTP API ("/" and "/share_stats").
func (p *Parser) Handler() http.Handler { return p.h }

// Addr is the HTTP listener's address once Run has started it.
func (p *Parser) Addr() net.Addr {
	if a := p.addr.Load(); a != nil {
		return *a
	}
	return nil
}

func (p *Parser) poolBuckets(now time.Time) (today Bucket, hours [24]Bucket, date time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ks := p.day.keys[Key{}]
	if ks != nil {
		today = ks.day
		for h := range hours {
			hours[h] = ks.hour(h)
		}
	}
	return today, hours, p.day.date
}

func (p *Parser) bucket(k Key, idx int) Bucket {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, _ := p.day.Hour(k, idx)
	return b
}

// Run follows the share-log files day after day until ctx ends.
func (p *Parser) Run(ctx context.Context) error {
	if p.opts.ListenAddr != "" {
		ln, err := net.Listen("tcp", p.opts.ListenAddr)
		if err != nil {
			return fmt.Errorf("slparser: listen: %w", err)
		}
		a := ln.Addr()
		p.addr.Store(&a)
		srv := &http.Server{Handler: p.h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	flush := time.NewTicker(p.opts.FlushInterval)
	defer flush.Stop()
	lastRetention := time.Time{}
	var r RecordReader
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	var sh btcpool.Share
	for {
		if r == nil {
			var err error
			r, err = p.opts.Open(p.fileOf(p.currentDate()))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("slparser: %w", err)
			}
		}
		n := 0
		for r != nil && n < 100000 {
			err := r.Next(&sh)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("slparser: %s: %w", p.fileOf(p.currentDate()), err)
			}
			p.mu.Lock()
			p.day.Add(&sh)
			p.mu.Unlock()
			n++
		}
		if n > 0 {
			continue // more may be buffered
		}
		if p.dayOver() {
			// One more pass over the old file: a share of the old day written just before
			// the new file appeared must still count.
			if err := p.drain(r, &sh); err != nil {
				return err
			}
			if p.switchDay(ctx) {
				if r != nil {
					r.Close()
					r = nil
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			if p.db != nil {
				fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				p.Flush(fctx)
				cancel()
			}
			return nil
		case <-flush.C:
			if p.db != nil {
				p.Flush(ctx)
				if now := p.opts.Now(); p.retain != nil && now.Sub(lastRetention) >= time.Hour {
					if _, err := p.retain.DeleteOlder(ctx, now, p.opts.Retention); err != nil {
						p.opts.Logger.Warn("slparser: retention", "err", err)
					}
					lastRetention = now
				}
			}
		case <-time.After(pollInterval):
		}
	}
}

func (p *Parser) currentDate() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.day.date
}

func (p *Parser) fileOf(date time.Time) string {
	return FileName(p.opts.DataDir, p.opts.Chain, p.opts.FileSuffix, date)
}

// dayOver reports whether the next day has begun (plus a grace period) and its file exists and
// is not empty (or the day is an hour over: the writer has nothing for the new day).
func (p *Parser) dayOver() bool {
	next := p.currentDate().Add(24 * time.Hour)
	if p.opts.Now().Before(next.Add(daySwitchDelay)) {
		return false
	}
	if fi, err := os.Stat(p.fileOf(next)); err != nil || fi.Size() == 0 {
		return !p.opts.Now().Before(next.Add(time.Hour))
	}
	return true
}

// drain reads what is left in r (nil: nothing).
func (p *Parser) drain(r RecordReader, sh *btcpool.Share) error {
	for r != nil {
		err := r.Next(sh)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("slparser: %s: %w", p.fileOf(p.currentDate()), err)
		}
		p.mu.Lock()
		p.day.Add(sh)
		p.mu.Unlock()
	}
	return nil
}

// switchDay flushes the old day and starts the next one; it reports false (and keeps the old
// day) when the flush fails.
func (p *Parser) switchDay(ctx context.Context) bool {
	next := p.currentDate().Add(24 * time.Hour)
	if p.db != nil {
		if _, err := p.Flush(ctx); err != nil {
			return false // keep the old day until its numbers are stored
		}
	}
	p.mu.Lock()
	old := p.day
	p.day = NewDay(next, p.opts.SubsidyInterval, p.opts.AcceptStale)
	p.mu.Unlock()
	p.opts.Logger.Info("slparser: day done", "day", old.date.Format("2006-01-02"), "shares", old.shares, "ignored", old.ignored)
	return true
}

// Flush writes the modified hours and days to the database now.
func (p *Parser) Flush(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, err := p.day.Flush(ctx, p.db)
	if err != nil {
		p.opts.Logger.Error("slparser: flush stats tables", "err", err)
	}
	return n, err
}

// ParseFile reads a whole share-log file into the statistics of its day (one-shot mode, e.g.
// re-parsing yesterday) and returns them; shares of other days are ignored.
func ParseFile(path string, date time.Time, open OpenFunc, subsidyInterval int32, acceptStale bool) (*Day, error) {
	r, err := open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	d := NewDay(date, subsidyInterval, acceptStale)
	var sh btcpool.Share
	for {
		err := r.Next(&sh)
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return d, fmt.Errorf("slparser: %s: %w", path, err)
		}
		d.Add(&sh)
	}
}

// Dump writes one line per share of the file to w (puid < 0: every user), for operators
// checking a user's shares by hand.
func Dump(w io.Writer, path string, open OpenFunc, puid int64) (int, error) {
	r, err := open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var sh btcpool.Share
	n := 0
	for {
		err := r.Next(&sh)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("slparser: %s: %w", path, err)
		}
		if puid >= 0 && int64(sh.UserID) != puid {
			continue
		}
		n++
		_, err = fmt.Fprintf(w, "%s puid=%d worker=%d status=%d(%s) diff=%d job=%d height=%d ip=%s session=%08x nonce=%08x bits=%08x\n",
			time.Unix(sh.Timestamp, 0).UTC().Format(time.DateTime), sh.UserID, sh.WorkerHashID, int32(sh.Status), sh.Status,
			sh.ShareDiff, sh.JobID, sh.Height, sh.IP, sh.SessionID, sh.Nonce, sh.BlkBits)
		if err != nil {
			return n, err
		}
	}
}

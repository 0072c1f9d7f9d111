package logger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
)

// Options configure a Logger. Zero fields get the defaults in SetDefaults.
type Options struct {
	// Dir is the share-log directory (btcpool: data_dir). Required.
	Dir string
	// Chain goes into the file names (default "BTC").
	Chain string
	// Compression is logfile.Gzip (btcpool's format, default) or logfile.Zstd.
	Compression logfile.Compression
	// GzipLevel is the deflate level (default -1, zlib's default, as btcpool).
	GzipLevel int
	// Topic is the share topic (default "BtcShare").
	Topic string
	// Group is the consumer group (default "sharelog_write_btc").
	Group string
	// StartTail is where a group without a committed offset begins, in
	// records before the end (default math.MaxInt64: everything retained).
	StartTail int64
	// FlushInterval is how often buffered shares are flushed (default 2 s).
	FlushInterval time.Duration
	// MaxPending flushes early when this many shares are buffered, bounding
	// memory under a burst (default 4,000,000, about 20 s at 200k shares/s).
	MaxPending int
	// CloseTimeout bounds the final flush and commit on shutdown (default 10 s).
	CloseTimeout time.Duration
	// Logger receives start, stop and error messages; nil is silent.
	Logger *slog.Logger
}

// SetDefaults fills the zero fields.
func (o *Options) SetDefaults() {
	if o.Chain == "" {
		o.Chain = "BTC"
	}
	if o.Topic == "" {
		o.Topic = bus.DefaultTopics().Share
	}
	if o.Group == "" {
		o.Group = "sharelog_write_btc"
	}
	if o.StartTail == 0 {
		o.StartTail = math.MaxInt64
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 2 * time.Second
	}
	if o.MaxPending == 0 {
		o.MaxPending = 4_000_000
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o Options) writerOptions() logfile.WriterOptions {
	return logfile.WriterOptions{Dir: o.Dir, Chain: o.Chain, Compression: o.Compression, GzipLevel: o.GzipLevel, Logger: o.Logger}
}

// Validate reports every problem at once (call after SetDefaults).
func (o Options) Validate() error {
	wo := o.writerOptions()
	wo.SetDefaults()
	errs := []error{wo.Validate()}
	if o.Topic == "" || o.Group == "" {
		errs = append(errs, errors.New("logger: Topic and Group must not be empty"))
	}
	if o.StartTail < 0 {
		errs = append(errs, fmt.Errorf("logger: StartTail %d is negative", o.StartTail))
	}
	if o.FlushInterval < 10*time.Millisecond || o.FlushInterval > time.Hour {
		errs = append(errs, fmt.Errorf("logger: FlushInterval %v out of range 10ms..1h", o.FlushInterval))
	}
	if o.MaxPending < 1 {
		errs = append(errs, fmt.Errorf("logger: MaxPending %d must be positive", o.MaxPending))
	}
	if o.CloseTimeout < 0 {
		errs = append(errs, fmt.Errorf("logger: CloseTimeout %v is negative", o.CloseTimeout))
	}
	return errors.Join(errs...)
}

// Stats are the logger's counters; safe to read while it runs.
type Stats struct {
	Messages  int64 // messages consumed
	Written   int64 // valid shares made durable
	Invalid   int64 // messages dropped: undecodable, not Valid, or timestamp out of range
	Flushes   int64 // flushes that wrote at least one share
	Committed int64 // messages whose offsets were committed
}

// Logger is the sharelogger. Create it with New and start it with Run.
type Logger struct {
	bus  bus.Bus
	opts Options

	messages, written, invalid, flushes, committed atomic.Int64
}

// New checks opts and returns a logger that will consume from b.
func New(b bus.Bus, opts Options) (*Logger, error) {
	opts.SetDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Logger{bus: b, opts: opts}, nil
}

// Stats returns the current counters.
func (l *Logger) Stats() Stats {
	return Stats{Messages: l.messages.Load(), Written: l.written.Load(), Invalid: l.invalid.Load(),
		Flushes: l.flushes.Load(), Committed: l.committed.Load()}
}

// Run consumes shares until ctx ends, then flushes, commits and returns nil.
// It returns an error, after a best-effort flush and commit of what is
// durable, when the bus or the files fail.
func (l *Logger) Run(ctx context.Context) (err error) {
	cons, err := l.bus.NewConsumer(l.opts.Topic, bus.Start{Group: l.opts.Group, Tail: l.opts.StartTail})
	if err != nil {
		return fmt.Errorf("logger: consumer: %w", err)
	}
	defer cons.Close()
	w, err := logfile.OpenWriter(l.opts.writerOptions())
	if err != nil {
		return err
	}
	r := run{l: l, cons: cons, w: w, last: map[int32]bus.Message{}}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	l.opts.Logger.Info("sharelogger started", "dir", l.opts.Dir, "topic", l.opts.Topic, "group", l.opts.Group, "compression", l.opts.Compression)
	err = r.loop(ctx)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.CloseTimeout)
	defer cancel()
	if ferr := r.flush(fctx); err == nil {
		err = ferr
	}
	if err != nil {
		l.opts.Logger.Error("sharelogger stopped", "err", err)
		return err
	}
	l.opts.Logger.Info("sharelogger stopped", "written", l.written.Load(), "invalid", l.invalid.Load())
	return nil
}

// run is the state of one Run.
type run struct {
	l       *Logger
	cons    bus.Consumer
	w       *logfile.Writer
	last    map[int32]bus.Message // last consumed message per partition, not yet committed
	pending int64                 // valid shares appended since the last flush
	share   btcpool.Share
	buf     []byte
}

func (r *run) loop(ctx context.Context) error {
	next := time.Now().Add(r.l.opts.FlushInterval)
	for {
		if ctx.Err() != nil {
			return nil
		}
		pctx, cancel := context.WithDeadline(ctx, next)
		msgs, err := r.cons.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("logger: poll: %w", err)
		}
		for i := range msgs {
			if err := r.handle(&msgs[i]); err != nil {
				return err
			}
		}
		if now := time.Now(); !now.Before(next) || r.w.Pending() >= r.l.opts.MaxPending {
			if err := r.flush(ctx); err != nil {
				return err
			}
			next = now.Add(r.l.opts.FlushInterval)
		}
	}
}

// handle decodes one message and appends its share.
func (r *run) handle(m *bus.Message) error {
	r.l.messages.Add(1)
	keep := *m
	keep.Key, keep.Value = nil, nil // they are only valid until the next Poll
	r.last[m.Partition] = keep
	if err := btcpool.DecodeShareMessage(m.Value, &r.share); err != nil || !r.share.Valid() {
		r.l.invalid.Add(1)
		return nil
	}
	r.buf = btcpool.AppendShareProto(r.buf[:0], &r.share)
	if err := r.w.Append(r.share.Timestamp, r.buf); err != nil {
		if errors.Is(err, logfile.ErrBadTimestamp) {
			r.l.invalid.Add(1)
			return nil
		}
		return err
	}
	r.pending++
	return nil
}

// flush makes every appended share durable, then commits the offsets of
// every message consumed so far.
func (r *run) flush(ctx context.Context) error {
	if r.pending > 0 {
		if err := r.w.Flush(); err != nil {
			return err
		}
		r.l.written.Add(r.pending)
		r.l.flushes.Add(1)
		r.pending = 0
	}
	if len(r.last) == 0 {
		return nil
	}
	msgs := make([]bus.Message, 0, len(r.last))
	for _, m := range r.last {
		msgs = append(msgs, m)
	}
	if err := r.cons.Commit(ctx, msgs...); err != nil {
		return fmt.Errorf("logger: commit: %w", err)
	}
	n := r.l.messages.Load() - r.l.committed.Load()
	r.l.committed.Add(n)
	clear(r.last)
	return nil
}

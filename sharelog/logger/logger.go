package logger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"reflect"
	"strconv"
	"sync"
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
	// CommitTimeout bounds how long one group commit is retried through bus
	// errors before it is given up until the next flush (default 10 s). A
	// failed commit is only logged: the checkpoint, not the group, says what
	// the files hold.
	CommitTimeout time.Duration
	// DurableOffsets says the bus keeps its offsets across restarts of this
	// process (Kafka): the checkpoint's offsets then say which records the
	// files already hold, and those are skipped when the bus delivers them
	// again. False for the in-process bus, whose offsets begin at 0 in every
	// process: a checkpoint of an earlier process is then used only to cut
	// the files back, never to skip.
	DurableOffsets bool
	// DrainIdle is how long the topic must stay silent after Drain before
	// Run makes the last flush and returns (default 500 ms).
	DrainIdle time.Duration
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
	if o.CommitTimeout == 0 {
		o.CommitTimeout = 10 * time.Second
	}
	if o.DrainIdle == 0 {
		o.DrainIdle = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o Options) writerOptions() logfile.WriterOptions {
	return logfile.WriterOptions{Dir: o.Dir, Chain: o.Chain, Compression: o.Compression, GzipLevel: o.GzipLevel,
		Checkpoint: true, Logger: o.Logger}
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
	if o.CommitTimeout < 0 {
		errs = append(errs, fmt.Errorf("logger: CommitTimeout %v is negative", o.CommitTimeout))
	}
	if o.DrainIdle < 10*time.Millisecond || o.DrainIdle > time.Minute {
		errs = append(errs, fmt.Errorf("logger: DrainIdle %v out of range 10ms..1m", o.DrainIdle))
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
	// Skipped counts messages delivered again that the files already hold
	// (at or below the checkpointed or already written offset).
	Skipped        int64
	CommitFailures int64 // group commits given up (logged; retried at the next flush)
}

// Logger is the sharelogger. Create it with New and start it with Run.
type Logger struct {
	bus  bus.Bus
	opts Options

	drainOnce sync.Once
	drain     chan struct{}

	messages, written, invalid, flushes, committed, skipped, commitFailures atomic.Int64
}

// New checks opts and returns a logger that will consume from b.
func New(b bus.Bus, opts Options) (*Logger, error) {
	opts.SetDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Logger{bus: b, opts: opts, drain: make(chan struct{})}, nil
}

// Stats returns the current counters.
func (l *Logger) Stats() Stats {
	return Stats{Messages: l.messages.Load(), Written: l.written.Load(), Invalid: l.invalid.Load(),
		Flushes: l.flushes.Load(), Committed: l.committed.Load(), Skipped: l.skipped.Load(),
		CommitFailures: l.commitFailures.Load()}
}

// Drain asks Run to finish once the topic is exhausted: Run keeps consuming,
// and as soon as a poll finds nothing for Options.DrainIdle (and the bus is
// not failing) it flushes, checkpoints, commits and returns nil. Use it for an
// ordered shutdown: stop the producers (sserver), call Drain, and wait for Run
// to return, with ctx bounding the wait (ctx ending still makes the usual final
// flush of what was consumed). Drain may be called before or during Run, from
// any goroutine, more than once.
func (l *Logger) Drain() { l.drainOnce.Do(func() { close(l.drain) }) }

// Source is the name a logger on bus b and topic gives the positions in its
// checkpoint, and which a reader of the files (statshttpd) compares to learn
// whether those positions are offsets of the bus it consumes. With durable
// offsets (Kafka) it depends only on the topic; otherwise it names the bus
// instance, unique to this process.
func Source(b bus.Bus, topic string, durable bool) string {
	if durable {
		return "bus:" + topic
	}
	return "process:" + instance(b) + ":" + topic
}

var instances struct {
	sync.Mutex
	ids  map[any]string
	next int64
}

// instance names one bus value for the life of the process.
func instance(b bus.Bus) string {
	stamp := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(processStart, 36)
	if b == nil || !reflect.TypeOf(b).Comparable() {
		return stamp + "-anonymous"
	}
	instances.Lock()
	defer instances.Unlock()
	if instances.ids == nil {
		instances.ids = map[any]string{}
	}
	id, ok := instances.ids[b]
	if !ok {
		instances.next++
		id = stamp + "-" + strconv.FormatInt(instances.next, 10)
		instances.ids[b] = id
	}
	return id
}

var processStart = time.Now().UnixNano()

// Run consumes shares until ctx ends (or, after Drain, until the topic is
// exhausted), then flushes, checkpoints, commits and returns nil. Bus errors
// are ridden out (one log line per incident) and a failed commit is logged;
// Run returns an error only for a permanent bus error or when the files
// fail, after a best-effort flush of what was consumed.
func (l *Logger) Run(ctx context.Context) (err error) {
	// The directory lock comes first: a second logger on the same directory
	// must fail before it joins the group and takes partitions.
	w, err := logfile.OpenWriter(l.opts.writerOptions())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	src := Source(l.bus, l.opts.Topic, l.opts.DurableOffsets)
	cp := w.Restored()
	done := map[int32]int64{}
	if cp.Source == src {
		for p, off := range cp.Positions {
			done[p] = off
		}
	} else {
		if cp.Source != "" {
			l.opts.Logger.Info("sharelogger: the checkpoint counts another bus; its offsets are not used to skip records",
				"checkpoint_source", cp.Source, "source", src)
		}
		w.SetSource(src, nil)
	}
	// The checkpoint, not the group's commit, says where the files stand: a commit ahead of it
	// (another consumer in the group, offsets moved by hand) must not skip records.
	held := new(atomic.Pointer[map[int32]int64])
	initial := maps.Clone(done)
	held.Store(&initial)
	start := bus.Start{Group: l.opts.Group, Tail: l.opts.StartTail}
	if l.opts.DurableOffsets {
		start.Held = func(p int32, committed int64) (int64, bool) {
			off, ok := (*held.Load())[p]
			if ok && committed > off+1 {
				l.opts.Logger.Warn("sharelogger: the group's commit is ahead of the checkpoint; reading from the checkpoint (another consumer in this group, or offsets moved by hand?)",
					"partition", p, "committed", committed, "checkpointed", off)
			}
			return off, ok
		}
	}
	cons, err := l.bus.NewConsumer(l.opts.Topic, start)
	if err != nil {
		return fmt.Errorf("logger: consumer: %w", err)
	}
	defer cons.Close()
	r := run{l: l, cons: cons, w: w, last: map[int32]bus.Message{}, done: done, held: held,
		commitInc: bus.Incident{Log: l.opts.Logger, What: "sharelogger: committing " + l.opts.Topic}}
	l.opts.Logger.Info("sharelogger started", "dir", l.opts.Dir, "topic", l.opts.Topic, "group", l.opts.Group,
		"compression", l.opts.Compression, "checkpoint", cp.String(), "resume_offsets", done)
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
	l.opts.Logger.Info("sharelogger stopped", "written", l.written.Load(), "invalid", l.invalid.Load(), "skipped", l.skipped.Load())
	return nil
}

// run is the state of one Run.
type run struct {
	l         *Logger
	cons      bus.Consumer
	w         *logfile.Writer
	last      map[int32]bus.Message            // last consumed message per partition, not yet committed
	done      map[int32]int64                  // per partition: the files hold every record up to here
	held      *atomic.Pointer[map[int32]int64] // what the checkpoint holds, for bus.Start.Held
	pending   int64                            // valid shares appended since the last flush
	pollInc   bus.Incident
	commitInc bus.Incident
	share     btcpool.Share
	buf       []byte
}

func (r *run) loop(ctx context.Context) error {
	r.pollInc = bus.Incident{Log: r.l.opts.Logger, What: "sharelogger: polling " + r.l.opts.Topic}
	next := time.Now().Add(r.l.opts.FlushInterval)
	for {
		if ctx.Err() != nil {
			return nil
		}
		deadline, draining := next, false
		select {
		case <-r.l.drain:
			draining = true
			deadline = time.Now().Add(r.l.opts.DrainIdle)
		default:
		}
		pctx, cancel := context.WithDeadline(ctx, deadline)
		msgs, err := bus.Poll(pctx, r.cons, &r.pollInc)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("logger: poll: %w", err)
			}
			if draining && !r.pollInc.Failing() {
				return nil // the topic is exhausted: Run makes the last flush
			}
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

// handle decodes one message and appends its share, unless the files
// already hold it (a redelivery after a restart or a group rebalance).
func (r *run) handle(m *bus.Message) error {
	r.l.messages.Add(1)
	keep := *m
	keep.Key, keep.Value = nil, nil // they are only valid until the next Poll
	r.last[m.Partition] = keep
	if off, ok := r.done[m.Partition]; ok && m.Offset <= off {
		r.l.skipped.Add(1)
		return nil
	}
	r.done[m.Partition] = m.Offset
	if err := btcpool.DecodeShareMessage(m.Value, &r.share); err != nil || !r.share.Valid() {
		r.l.invalid.Add(1)
		r.w.Advance(m.Partition, m.Offset)
		return nil
	}
	r.buf = btcpool.AppendShareProto(r.buf[:0], &r.share)
	if err := r.w.Append(r.share.Timestamp, r.buf); err != nil {
		if errors.Is(err, logfile.ErrBadTimestamp) {
			r.l.invalid.Add(1)
			r.w.Advance(m.Partition, m.Offset)
			return nil
		}
		return err
	}
	r.w.Advance(m.Partition, m.Offset)
	r.pending++
	return nil
}

// flush makes every appended share durable together with the offsets it
// reaches (the checkpoint), then commits the offsets of every message
// consumed so far to the group. The commit is only a hint for where a new
// member starts; when it fails it is logged and tried again at the next
// flush.
func (r *run) flush(ctx context.Context) error {
	if err := r.w.Flush(); err != nil {
		return err
	}
	if pos := r.w.Positions(); !maps.Equal(pos, *r.held.Load()) {
		r.held.Store(&pos)
	}
	if r.pending > 0 {
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
	cctx, cancel := context.WithTimeout(ctx, r.l.opts.CommitTimeout)
	err := bus.Commit(cctx, r.cons, &r.commitInc, r.l.opts.CommitTimeout, msgs...)
	cancel()
	if err != nil {
		if bus.IsPermanent(err) && !errors.Is(err, bus.ErrClosed) {
			return fmt.Errorf("logger: commit: %w", err)
		}
		r.l.commitFailures.Add(1)
		r.l.opts.Logger.Warn("sharelogger: group commit failed; the checkpoint keeps the files exact, the commit is tried again at the next flush", "err", err)
		return nil
	}
	n := r.l.messages.Load() - r.l.committed.Load()
	r.l.committed.Add(n)
	clear(r.last)
	return nil
}

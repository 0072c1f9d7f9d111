package mem

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// Defaults for Options.
const (
	// DefaultMaxRecords and DefaultMaxBytes bound each topic of a memory-only
	// bus (no Dir). They were 1M records / 256 MiB until the RSS of `hashpool
	// run` was traced to them (issue 11); 256k records / 64 MiB still hold
	// minutes of shares at 20k/s for a consumer that restarts.
	DefaultMaxRecords = 1 << 18
	DefaultMaxBytes   = 64 << 20

	// DefaultDiskMaxBytes bounds each topic's segment files with a Dir.
	DefaultDiskMaxBytes = 1 << 30
	// DefaultCacheBytes bounds each topic's in-memory cache of recent records
	// with a Dir (counting CacheRecordOverhead per record).
	DefaultCacheBytes = 16 << 20
	// DefaultSegmentBytes is the size at which a segment file is closed and
	// a new one begun.
	DefaultSegmentBytes = 64 << 20

	DefaultMaxPoll            = 1024
	DefaultMaxBufferedRecords = 1 << 20

	// CacheRecordOverhead is what one cached record is charged besides its
	// key and value (the record struct and the slice headers).
	CacheRecordOverhead = 64
)

// Retention bounds what one topic keeps.
//
// Without a Dir it bounds memory: when either bound is exceeded the oldest
// records are dropped (the newest record is always kept). With a Dir it bounds
// the topic's segment files: whole old segments are deleted while the rest
// still holds at least MaxRecords records and MaxBytes bytes, and a segment
// whose newest record is older than MaxAge is deleted; the segment being
// written is never deleted.
type Retention struct {
	// MaxRecords: records kept; 0: DefaultMaxRecords without a Dir, no limit
	// with one.
	MaxRecords int
	// MaxBytes: without a Dir, key+value bytes kept (0: DefaultMaxBytes);
	// with a Dir, segment file bytes (0: DefaultDiskMaxBytes).
	MaxBytes int64
	// MaxAge: with a Dir, segments whose newest record is older are deleted
	// (checked after writes and every minute); 0: no age limit. Ignored
	// without a Dir.
	MaxAge time.Duration
}

// PoolRetention is the retention recommended for `hashpool run` with a Dir,
// per topic of t:
//
//   - RawGbt 2 GiB: Tail 100 of main-net templates (3–11 MB) needs up to
//     1.1 GiB, plus the segment being written.
//   - Job 512 MiB: Tail 120 of jobs (a few KB each) with years of margin.
//   - Share 4 GiB: about 25 min of 20k shares/s (≈130 B each on disk), hours
//     at farm rates, for a share logger that was down.
//   - SolvedShare and CommonEvents 256 MiB.
func PoolRetention(t bus.Topics) map[string]Retention {
	m := map[string]Retention{}
	set := func(name string, bytes int64) {
		if name != "" {
			m[name] = Retention{MaxBytes: bytes}
		}
	}
	set(t.RawGbt, 2<<30)
	set(t.Job, 512<<20)
	set(t.Share, 4<<30)
	set(t.SolvedShare, 256<<20)
	set(t.CommonEvents, 256<<20)
	set(t.AuxRawGw, 64<<20)
	set(t.AuxSolvedShare, 64<<20)
	set(t.RskRawGw, 64<<20)
	set(t.RskSolvedShare, 64<<20)
	return m
}

// Options configure a Bus. The zero value is a memory-only bus ready to use.
type Options struct {
	// Dir, when set, makes every topic a durable log in Dir/<topic>/ and
	// keeps consumer-group offsets in Dir/groups.log; open it with Open.
	// Topic names are then limited to Kafka's: 1–249 of [a-zA-Z0-9._-], not
	// "." or "..", and not LOCK, groups.log or groups.log.tmp.
	Dir string
	// Retention applies to every topic without an entry in Topics.
	Retention Retention
	// Topics overrides Retention per topic name.
	Topics map[string]Retention
	// MaxPoll bounds the records one Poll returns (0: DefaultMaxPoll).
	MaxPoll int
	// CacheBytes bounds each topic's in-memory cache of recent records with a
	// Dir (0: DefaultCacheBytes); older records are read from the files.
	CacheBytes int64
	// SegmentBytes is the segment file size with a Dir (0:
	// DefaultSegmentBytes). A record larger than it gets a segment of its own.
	SegmentBytes int64
	// Logger receives what opening cut from torn files, disk errors, and
	// deleted segments. nil: silent.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	durable := o.Dir != ""
	o.Retention.setDefaults(durable)
	for k, r := range o.Topics {
		r.setDefaults(durable)
		o.Topics[k] = r
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = DefaultMaxPoll
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

func (r *Retention) setDefaults(durable bool) {
	if r.MaxRecords <= 0 {
		r.MaxRecords = DefaultMaxRecords
		if durable {
			r.MaxRecords = math.MaxInt
		}
	}
	if r.MaxBytes <= 0 {
		r.MaxBytes = DefaultMaxBytes
		if durable {
			r.MaxBytes = DefaultDiskMaxBytes
		}
	}
}

// Validate reports every invalid option at once.
func (o Options) Validate() error {
	var errs []error
	check := func(name string, r Retention) {
		if r.MaxRecords < 0 {
			errs = append(errs, fmt.Errorf("mem: %s MaxRecords %d is negative", name, r.MaxRecords))
		}
		if r.MaxBytes < 0 {
			errs = append(errs, fmt.Errorf("mem: %s MaxBytes %d is negative", name, r.MaxBytes))
		}
		if r.MaxAge < 0 {
			errs = append(errs, fmt.Errorf("mem: %s MaxAge %v is negative", name, r.MaxAge))
		}
	}
	check("Retention", o.Retention)
	for k, r := range o.Topics {
		check("Topics["+k+"]", r)
		if o.Dir != "" {
			if err := checkTopicName(k); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if o.MaxPoll < 0 {
		errs = append(errs, fmt.Errorf("mem: MaxPoll %d is negative", o.MaxPoll))
	}
	if o.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("mem: CacheBytes %d is negative", o.CacheBytes))
	}
	if o.SegmentBytes < 0 {
		errs = append(errs, fmt.Errorf("mem: SegmentBytes %d is negative", o.SegmentBytes))
	} else if o.SegmentBytes > 0 && o.SegmentBytes < 4096 {
		errs = append(errs, fmt.Errorf("mem: SegmentBytes %d is below 4096", o.SegmentBytes))
	}
	return errors.Join(errs...)
}

// checkTopicName reports a topic name that cannot be a directory of Dir.
func checkTopicName(name string) error {
	if name == "" || len(name) > 249 || name == "." || name == ".." ||
		name == lockName || name == groupsName || name == groupsName+".tmp" {
		return fmt.Errorf("mem: topic name %q cannot be stored in a bus directory", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("mem: topic name %q has %q; a bus directory allows only [a-zA-Z0-9._-]", name, c)
		}
	}
	return nil
}

const (
	lockName   = "LOCK"
	groupsName = "groups.log"
)

// Bus is the in-process bus. Create a memory-only one with New, a durable one
// with Open; it implements bus.Bus.
type Bus struct {
	opts   Options
	log    *slog.Logger
	topics sync.Map // string -> *topic

	mu     sync.Mutex
	groups map[groupKey]*group

	closed    atomic.Bool
	closeOnce sync.Once
	closedCh  chan struct{}

	d *disk // nil without a Dir
}

var _ bus.Bus = (*Bus)(nil)

// New returns an empty memory-only bus. Zero or negative values in opts take
// their defaults; configuration loaders call opts.Validate first to report
// them. New panics if opts.Dir is set: a durable bus can fail to open, so it
// is made with Open.
func New(opts Options) *Bus {
	if opts.Dir != "" {
		panic("mem: New called with Options.Dir; use Open for a durable bus")
	}
	return newBus(opts)
}

func newBus(opts Options) *Bus {
	if opts.Topics != nil {
		m := make(map[string]Retention, len(opts.Topics))
		for k, v := range opts.Topics {
			m[k] = v
		}
		opts.Topics = m
	}
	opts.setDefaults()
	return &Bus{opts: opts, log: opts.Logger, groups: make(map[groupKey]*group), closedCh: make(chan struct{})}
}

// Open returns a bus. Without opts.Dir it is New. With it, Open locks Dir
// (failing if another live process or Bus holds it), reloads every topic's
// retained records, so that offsets continue where they ended, cuts a torn or
// corrupt tail left by a crash (logging what was cut), reloads the consumer
// groups' committed offsets (clamping any beyond its topic's end), and starts
// the writer. Options are validated first.
func Open(opts Options) (*Bus, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return newBus(opts), nil
	}
	b := newBus(opts)
	if err := b.openDisk(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Bus) openDisk() error {
	dir := b.opts.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mem: creating bus directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return err
	}
	d := newDisk(b, dir, lock)
	b.d = d
	fail := func(err error) error {
		d.closeFiles()
		lock.Close()
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail(fmt.Errorf("mem: reading bus directory: %w", err))
	}
	for _, e := range entries {
		if !e.IsDir() || checkTopicName(e.Name()) != nil {
			continue
		}
		if err := b.loadTopic(e.Name()); err != nil {
			return fail(err)
		}
	}
	if err := d.openGroups(); err != nil {
		return fail(err)
	}
	d.start()
	return nil
}

// loadTopic reloads one topic's segments.
func (b *Bus) loadTopic(name string) error {
	t := b.topic(name)
	tdir := filepath.Join(b.opts.Dir, name)
	entries, err := os.ReadDir(tdir)
	if err != nil {
		return fmt.Errorf("mem: reading topic %s: %w", name, err)
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	logf := func(msg string, args ...any) { b.log.Warn(msg, append(args, "topic", name)...) }
	for i, base := range bases {
		path := filepath.Join(tdir, segName(base))
		var s *segment
		sealed := i < len(bases)-1
		if sealed {
			s = loadSealed(path, base)
		}
		if s == nil {
			var err error
			if s, err = loadSegment(path, base, logf); err != nil {
				return fmt.Errorf("mem: loading topic %s: %w", name, err)
			}
			if s == nil {
				continue
			}
			if sealed {
				if err := writeSegIndex(s); err != nil {
					logf("bus segment summary could not be written", "file", path, "err", err)
				}
			}
		}
		if n := len(t.segs); n > 0 && s.base < t.segs[n-1].end {
			s.f.Close()
			return fmt.Errorf("mem: topic %s: segment %s starts at offset %d, inside the previous segment (ending at %d); the directory was tampered with",
				name, s.path, s.base, t.segs[n-1].end)
		}
		t.segs = append(t.segs, s)
		t.diskBytes += s.size
	}
	if len(t.segs) > 0 {
		last := t.segs[len(t.segs)-1]
		t.oldest = t.segs[0].base
		t.next = last.end
		t.base = t.next
		t.w.active = last
		t.w.next = last.end
	}
	return nil
}

// Close closes the bus. Without a Dir, pending and later Publish calls report
// bus.ErrClosed and Poll returns bus.ErrClosed. With a Dir, Close first lets
// the writer write and fsync every record already published (their done
// callbacks get the result), fails later ones with bus.ErrClosed, closes the
// files and releases the lock. Close is idempotent.
func (b *Bus) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		if b.d != nil {
			err = b.d.close()
		}
		close(b.closedCh)
	})
	return err
}

// End returns the offset the next record published to topic will get (0 for a
// topic never published to). Tests and statistics use it.
func (b *Bus) End(topic string) int64 {
	t := b.topic(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next
}

// Oldest returns the offset of the oldest record topic still retains (End if
// none).
func (b *Bus) Oldest(topic string) int64 {
	t := b.topic(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.oldest
}

// Committed returns the offset group will resume from on topic, and whether
// the group has one.
func (b *Bus) Committed(group, topic string) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[groupKey{group, topic}]
	if g == nil {
		return 0, false
	}
	return g.committed, true
}

func (b *Bus) topic(name string) *topic {
	if v, ok := b.topics.Load(name); ok {
		return v.(*topic)
	}
	r, ok := b.opts.Topics[name]
	if !ok {
		r = b.opts.Retention
	}
	t := &topic{name: name, ret: r, maxRecords: r.MaxRecords, maxBytes: r.MaxBytes}
	if b.d != nil {
		t.nameErr = checkTopicName(name)
		t.durable = true
		t.maxRecords, t.maxBytes = math.MaxInt, b.opts.CacheBytes
		t.w = &topicWriter{}
	}
	v, _ := b.topics.LoadOrStore(name, t)
	return v.(*topic)
}

// durableTopic returns the topic of a durable bus, or why name is not
// allowed.
func (b *Bus) durableTopic(name string) (*topic, error) {
	t := b.topic(name)
	return t, t.nameErr
}

// record is one retained (or cached) record; Message is built from it on Poll.
type record struct {
	key, value []byte
	nanos      int64
}

// topic is one single-partition log. recs[head:] are the records held in
// memory, offsets [base, next). Without a Dir that is the whole log (oldest ==
// base); with a Dir it is a cache of the newest records, and [oldest, base)
// are read from segs.
type topic struct {
	name       string
	ret        Retention
	durable    bool
	nameErr    error // with a Dir: why the name cannot be stored
	maxRecords int   // in memory
	maxBytes   int64 // in memory

	mu     sync.Mutex
	recs   []record
	head   int
	base   int64
	next   int64
	oldest int64
	bytes  int64
	wait   chan struct{} // closed on the next append; nil when nobody waits

	segs      []*segment // with a Dir; oldest first
	diskBytes int64

	// readers are the open consumers reading the topic (a group member
	// once it owns the partition). With a Dir the cache keeps only records
	// some reader has not taken yet: recs below every reader's taken offset
	// are on disk and already handed out, so they are dropped at once.
	readers []*consumer
	// dropped counts records the memory bound (maxRecords, maxBytes)
	// evicted before every open reader had taken them: with a Dir such a
	// reader reads them from the segment files, without one they are lost
	// to it.
	dropped int64

	w *topicWriter // with a Dir; owned by the writer goroutine
}

func (t *topic) charge(r *record) int64 {
	n := int64(len(r.key) + len(r.value))
	if t.durable {
		n += CacheRecordOverhead
	}
	return n
}

// push adds one record under t.mu and returns the channel to close to wake
// waiting consumers (nil if none).
func (t *topic) push(key, value []byte, nanos int64) chan struct{} {
	if t.head == len(t.recs) && cap(t.recs) > shrinkRecs {
		// Empty after a burst: let the grown slice go.
		t.recs, t.head = nil, 0
	}
	if len(t.recs) == cap(t.recs) && t.head > 0 && t.head >= len(t.recs)/2 {
		// Compact: the dropped half is reused instead of growing.
		n := copy(t.recs, t.recs[t.head:])
		clear(t.recs[n:])
		t.recs = t.recs[:n]
		t.head = 0
	}
	t.recs = append(t.recs, record{key: key, value: value, nanos: nanos})
	t.bytes += t.charge(&t.recs[len(t.recs)-1])
	t.next++
	t.evict()
	w := t.wait
	t.wait = nil
	return w
}

// shrinkRecs is the record-slot capacity above which an emptied cache lets
// its slice go instead of keeping it for the next burst.
const shrinkRecs = 4096

// minTaken returns the lowest offset an open reader has not taken yet
// (math.MaxInt64 without readers). Called under t.mu.
func (t *topic) minTaken() int64 {
	m := int64(math.MaxInt64)
	for _, c := range t.readers {
		m = min(m, c.taken)
	}
	return m
}

// evict drops the oldest in-memory records beyond the bounds (keeping the
// newest), any older than the oldest retained offset and, with a Dir, every
// record each open reader has already taken. Called under t.mu.
func (t *topic) evict() {
	taken := t.minTaken()
	for n := len(t.recs) - t.head; n > 0; n-- {
		over := n > 1 && (n > t.maxRecords || t.bytes > t.maxBytes)
		consumed := t.durable && t.base < taken
		if !over && !consumed && t.base >= t.oldest {
			break
		}
		if !consumed && t.base >= t.oldest && t.base >= taken && len(t.readers) > 0 {
			t.dropped++ // only the bound evicts it, before a reader took it
		}
		r := &t.recs[t.head]
		t.bytes -= t.charge(r)
		*r = record{}
		t.head++
		t.base++
	}
	if t.head == len(t.recs) {
		t.recs, t.head = t.recs[:0], 0
		if cap(t.recs) > shrinkRecs {
			t.recs = nil
		}
		t.base = t.next
	}
	if !t.durable {
		t.oldest = t.base
	}
}

// addReader registers c as reading t from offset from (under no lock).
func (t *topic) addReader(c *consumer, from int64) {
	t.mu.Lock()
	c.taken = from
	if !c.reading {
		c.reading = true
		t.readers = append(t.readers, c)
	}
	t.mu.Unlock()
}

// removeReader forgets c and drops what only c had left to take.
func (t *topic) removeReader(c *consumer) {
	t.mu.Lock()
	if c.reading {
		c.reading = false
		if i := slices.Index(t.readers, c); i >= 0 {
			t.readers = slices.Delete(t.readers, i, i+1)
		}
		t.evict()
	}
	t.mu.Unlock()
}

// append adds one record to a memory-only topic and wakes waiting consumers.
// Callers hold no lock.
func (t *topic) append(key, value []byte, nanos int64) {
	t.mu.Lock()
	w := t.push(key, value, nanos)
	t.mu.Unlock()
	if w != nil {
		close(w)
	}
}

type groupKey struct{ group, topic string }

// group is one consumer group's state on one topic: its committed offset and the
// member that currently owns the partition.
type group struct {
	key       groupKey
	committed int64
	owner     *consumer
	released  chan struct{} // closed when owner lets go; nil when nobody waits
}

package mem

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashpool/hashpool/bus"
)

// Defaults for Options.
const (
	DefaultMaxRecords         = 1 << 20
	DefaultMaxBytes           = 256 << 20
	DefaultMaxPoll            = 1024
	DefaultMaxBufferedRecords = 1 << 20
)

// Retention bounds what one topic keeps. When either bound is exceeded the oldest
// records are dropped (the newest record is always kept).
type Retention struct {
	MaxRecords int   // records kept; 0: DefaultMaxRecords
	MaxBytes   int64 // key+value bytes kept; 0: DefaultMaxBytes
}

// Options configure a Bus. The zero value is ready to use.
type Options struct {
	// Retention applies to every topic without an entry in Topics.
	Retention Retention
	// Topics overrides Retention per topic name.
	Topics map[string]Retention
	// MaxPoll bounds the records one Poll returns (0: DefaultMaxPoll).
	MaxPoll int
}

func (o *Options) setDefaults() {
	o.Retention.setDefaults()
	for k, r := range o.Topics {
		r.setDefaults()
		o.Topics[k] = r
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = DefaultMaxPoll
	}
}

func (r *Retention) setDefaults() {
	if r.MaxRecords <= 0 {
		r.MaxRecords = DefaultMaxRecords
	}
	if r.MaxBytes <= 0 {
		r.MaxBytes = DefaultMaxBytes
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
	}
	check("Retention", o.Retention)
	for k, r := range o.Topics {
		check("Topics["+k+"]", r)
	}
	if o.MaxPoll < 0 {
		errs = append(errs, fmt.Errorf("mem: MaxPoll %d is negative", o.MaxPoll))
	}
	return errors.Join(errs...)
}

// Bus is the in-process bus. Create it with New; it implements bus.Bus.
type Bus struct {
	opts   Options
	topics sync.Map // string -> *topic

	mu     sync.Mutex
	groups map[groupKey]*group

	closed   atomic.Bool
	closedCh chan struct{}
}

var _ bus.Bus = (*Bus)(nil)

// New returns an empty bus. Zero or negative values in opts take their defaults;
// configuration loaders call opts.Validate first to report them.
func New(opts Options) *Bus {
	if opts.Topics != nil {
		m := make(map[string]Retention, len(opts.Topics))
		for k, v := range opts.Topics {
			m[k] = v
		}
		opts.Topics = m
	}
	opts.setDefaults()
	return &Bus{opts: opts, groups: make(map[groupKey]*group), closedCh: make(chan struct{})}
}

// Close closes the bus: pending and later Publish calls report bus.ErrClosed,
// Poll returns bus.ErrClosed. Close is idempotent.
func (b *Bus) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		close(b.closedCh)
	}
	return nil
}

// End returns the offset the next record published to topic will get (0 for a
// topic never published to). Tests and statistics use it.
func (b *Bus) End(topic string) int64 {
	t := b.topic(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.end()
}

// Oldest returns the offset of the oldest record topic still retains (End if
// none).
func (b *Bus) Oldest(topic string) int64 {
	t := b.topic(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.base
}

func (b *Bus) topic(name string) *topic {
	if v, ok := b.topics.Load(name); ok {
		return v.(*topic)
	}
	r, ok := b.opts.Topics[name]
	if !ok {
		r = b.opts.Retention
	}
	v, _ := b.topics.LoadOrStore(name, &topic{name: name, maxRecords: r.MaxRecords, maxBytes: r.MaxBytes})
	return v.(*topic)
}

// record is one retained record; Message is built from it on Poll.
type record struct {
	key, value []byte
	nanos      int64
}

// topic is one single-partition log. recs[head:] are the retained records; the
// first of them has offset base.
type topic struct {
	name       string
	maxRecords int
	maxBytes   int64

	mu    sync.Mutex
	recs  []record
	head  int
	base  int64
	bytes int64
	wait  chan struct{} // closed on the next append; nil when nobody waits
}

func (t *topic) end() int64 { return t.base + int64(len(t.recs)-t.head) }

// append adds one record and wakes waiting consumers. Callers hold no lock.
func (t *topic) append(key, value []byte, nanos int64) {
	size := int64(len(key) + len(value))
	t.mu.Lock()
	if len(t.recs) == cap(t.recs) && t.head > 0 && t.head >= len(t.recs)/2 {
		// Compact: the dropped half is reused instead of growing.
		n := copy(t.recs, t.recs[t.head:])
		clear(t.recs[n:])
		t.recs = t.recs[:n]
		t.head = 0
	}
	t.recs = append(t.recs, record{key: key, value: value, nanos: nanos})
	t.bytes += size
	for n := len(t.recs) - t.head; n > 1 && (n > t.maxRecords || t.bytes > t.maxBytes); n-- {
		r := &t.recs[t.head]
		t.bytes -= int64(len(r.key) + len(r.value))
		*r = record{}
		t.head++
		t.base++
	}
	w := t.wait
	t.wait = nil
	t.mu.Unlock()
	if w != nil {
		close(w)
	}
}

type groupKey struct{ group, topic string }

// group is one consumer group's state on one topic: its committed offset and the
// member that currently owns the partition.
type group struct {
	committed int64
	owner     *consumer
	released  chan struct{} // closed when owner lets go; nil when nobody waits
}

package mem

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// NewProducer returns a producer. Linger has nothing to wait for: records are
// written as soon as possible.
//
// Without a Dir a record is appended to its topic inside Publish;
// MaxBufferedRecords bounds the done callbacks not yet run, and Publish blocks
// while that many are pending. With a Dir, Publish queues the record for the
// bus's writer; MaxBufferedRecords bounds the records queued and not yet
// acknowledged (with or without a done callback), and Publish blocks while
// that many are pending; DeliveryTimeout bounds how long Close waits for them.
func (b *Bus) NewProducer(opts bus.ProducerOptions) (bus.Producer, error) {
	if b.closed.Load() {
		return nil, bus.ErrClosed
	}
	limit := opts.MaxBufferedRecords
	if limit <= 0 {
		limit = DefaultMaxBufferedRecords
	}
	p := &producer{b: b, limit: limit, kick: make(chan struct{}, 1), stopped: make(chan struct{})}
	p.space = sync.NewCond(&p.mu)
	if b.d != nil {
		p.closeWait = opts.DeliveryTimeout
		if p.closeWait <= 0 {
			p.closeWait = DefaultCloseWait
		}
		close(p.stopped)
		return p, nil
	}
	go p.run()
	return p, nil
}

// DefaultCloseWait bounds how long Close of a producer on a durable bus waits
// for its records to be written (ProducerOptions.DeliveryTimeout overrides it).
const DefaultCloseWait = 30 * time.Second

// producer appends records at once and runs their done callbacks on its own
// goroutine, in Publish order. Holding mu across the append makes the order of
// callbacks the order of offsets.
type producer struct {
	b     *Bus
	limit int
	kick  chan struct{} // wakes run; capacity 1

	mu       sync.Mutex
	space    *sync.Cond // signalled when pending shrinks or the producer closes
	pending  []func(error)
	queued   uint64        // callbacks ever queued
	finished uint64        // callbacks ever returned
	flushed  chan struct{} // closed when finished advances; nil when nobody waits
	closing  bool
	stopped  chan struct{} // closed when run returns

	// With a Dir (the writer and completer replace run):
	inflight    int    // records queued and not yet finished
	flushTarget uint64 // lowest target of a waiting Flush
	closeWait   time.Duration
}

func (p *producer) Publish(topic string, key, value []byte, done func(error)) {
	if p.b.d != nil {
		p.publishDurable(topic, key, value, done)
		return
	}
	p.mu.Lock()
	for done != nil && len(p.pending) >= p.limit && !p.closing && !p.b.closed.Load() {
		p.space.Wait()
	}
	if p.closing || p.b.closed.Load() {
		p.mu.Unlock()
		if done != nil {
			go done(bus.ErrClosed)
		}
		return
	}
	p.b.topic(topic).append(key, value, time.Now().UnixNano())
	if done == nil {
		p.mu.Unlock()
		return
	}
	p.pending = append(p.pending, done)
	p.queued++
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// publishDurable queues the record for the bus's writer. Every record counts
// against the limit until the completer has run its callback, so the queue
// holding values not yet written is bounded.
func (p *producer) publishDurable(topic string, key, value []byte, done func(error)) {
	fail := func(err error) {
		if done != nil {
			go done(err)
		}
	}
	if len(key)+len(value) > MaxRecordBytes {
		fail(fmt.Errorf("mem: record of %d bytes exceeds MaxRecordBytes (%d)", len(key)+len(value), MaxRecordBytes))
		return
	}
	t, err := p.b.durableTopic(topic)
	if err != nil {
		fail(err)
		return
	}
	p.mu.Lock()
	for p.inflight >= p.limit && !p.closing && !p.b.closed.Load() {
		p.space.Wait()
	}
	if p.closing || p.b.closed.Load() {
		p.mu.Unlock()
		fail(bus.ErrClosed)
		return
	}
	if !p.b.d.enqueue(writeReq{t: t, key: key, value: value, nanos: time.Now().UnixNano(), done: done, p: p}) {
		p.mu.Unlock()
		fail(bus.ErrClosed)
		return
	}
	p.inflight++
	p.queued++
	p.mu.Unlock()
}

// finish is called by the completer after a record's callback returned.
func (p *producer) finish() {
	p.mu.Lock()
	p.inflight--
	p.finished++
	if p.inflight == p.limit-1 {
		p.space.Broadcast()
	}
	if p.flushed != nil && (p.finished >= p.flushTarget || p.inflight == 0) {
		close(p.flushed)
		p.flushed = nil
	}
	p.mu.Unlock()
}

func (p *producer) PublishSync(ctx context.Context, topic string, key, value []byte) error {
	return bus.PublishSync(ctx, p, topic, key, value)
}

func (p *producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	target := p.queued
	for p.finished < target {
		if p.flushed == nil {
			p.flushed = make(chan struct{})
			p.flushTarget = target
		}
		p.flushTarget = min(p.flushTarget, target)
		w := p.flushed
		durable := p.b.d != nil
		p.mu.Unlock()
		if durable {
			select {
			case <-w:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			select {
			case <-w:
			case <-ctx.Done():
				return ctx.Err()
			case <-p.stopped:
				// run drained everything before stopping.
			}
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
	return nil
}

// Close stops accepting records and returns once every queued callback ran.
// Without a Dir, records already published stay on the bus, so their callbacks
// get nil. With a Dir, Close waits up to the delivery timeout for the writer;
// records it could not wait for still get their callback exactly once.
func (p *producer) Close() error {
	p.mu.Lock()
	already := p.closing
	p.closing = true
	p.space.Broadcast()
	p.mu.Unlock()
	if p.b.d != nil {
		ctx, cancel := context.WithTimeout(context.Background(), p.closeWait)
		defer cancel()
		if err := p.Flush(ctx); err != nil {
			return fmt.Errorf("mem: producer closed with records still being written: %w", err)
		}
		return nil
	}
	if !already {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	<-p.stopped
	return nil
}

// run calls the pending callbacks in batches, swapping the slice so that
// Publish never waits for a callback to return.
func (p *producer) run() {
	defer close(p.stopped)
	var batch []func(error)
	for {
		p.mu.Lock()
		for len(p.pending) == 0 {
			if p.closing {
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			select {
			case <-p.kick:
				p.mu.Lock()
			case <-p.b.closedCh:
				// A closed bus stops its producers too.
				p.mu.Lock()
				p.closing = true
				p.space.Broadcast()
			}
		}
		batch, p.pending = p.pending, batch[:0]
		p.space.Broadcast()
		p.mu.Unlock()

		for i, done := range batch {
			done(nil)
			batch[i] = nil
		}

		p.mu.Lock()
		p.finished += uint64(len(batch))
		if p.flushed != nil {
			close(p.flushed)
			p.flushed = nil
		}
		p.mu.Unlock()
	}
}

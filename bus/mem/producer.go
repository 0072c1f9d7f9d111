package mem

import (
	"context"
	"sync"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// NewProducer returns a producer. A record is appended to its topic inside
// Publish, so Linger and DeliveryTimeout have nothing to wait for; only
// MaxBufferedRecords matters: it bounds the done callbacks not yet run, and
// Publish blocks while that many are pending.
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
	go p.run()
	return p, nil
}

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
}

func (p *producer) Publish(topic string, key, value []byte, done func(error)) {
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

func (p *producer) PublishSync(ctx context.Context, topic string, key, value []byte) error {
	res := make(chan error, 1)
	p.Publish(topic, key, value, func(err error) { res <- err })
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	target := p.queued
	for p.finished < target {
		if p.flushed == nil {
			p.flushed = make(chan struct{})
		}
		w := p.flushed
		p.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stopped:
			// run drained everything before stopping.
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
	return nil
}

// Close stops accepting records and returns once every queued callback ran.
// Records already published stay on the bus, so their callbacks get nil.
func (p *producer) Close() error {
	p.mu.Lock()
	already := p.closing
	p.closing = true
	p.space.Broadcast()
	p.mu.Unlock()
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

package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hashpool/hashpool/bus"
)

// NewProducer returns a producer with its own franz-go client. Linger 0 is
// passed to franz-go explicitly (its own default is 10 ms). Delivery uses
// acks=all with idempotent writes, unlimited retries bounded by
// DeliveryTimeout.
func (b *Bus) NewProducer(opts bus.ProducerOptions) (bus.Producer, error) {
	if opts.Linger < 0 || opts.MaxBufferedRecords < 0 || opts.DeliveryTimeout < 0 {
		return nil, errors.New("kafka: negative ProducerOptions value")
	}
	if opts.DeliveryTimeout == 0 {
		opts.DeliveryTimeout = b.cfg.DeliveryTimeout
	}
	if opts.DeliveryTimeout < time.Second {
		return nil, fmt.Errorf("kafka: DeliveryTimeout %v is under franz-go's minimum of 1s", opts.DeliveryTimeout)
	}
	if opts.MaxBufferedRecords == 0 {
		opts.MaxBufferedRecords = b.cfg.MaxBufferedRecords
	}
	kopts := append(b.cfg.baseOpts(),
		kgo.ProducerLinger(opts.Linger),
		kgo.MaxBufferedRecords(opts.MaxBufferedRecords),
		// The batch inherits its first record's timeout, so lingering
		// counts against it (see kgo.RecordDeliveryTimeout).
		kgo.RecordDeliveryTimeout(opts.DeliveryTimeout+opts.Linger),
		// One produce request waits at most this (plus franz-go's 10 s
		// RequestTimeoutOverhead) before it is retried, on a new
		// connection and possibly a new leader; the idempotent producer
		// makes the retry of a batch the broker did write a duplicate
		// the broker drops, not a second copy on the log.
		kgo.ProduceRequestTimeout(min(max(opts.DeliveryTimeout/2, time.Second), maxProduceRequestTimeout)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(b.cfg.MaxMessageBytes),
		// Without this an idempotent producer keeps a record whose request
		// may have reached the broker until it learns the outcome, however
		// long the broker is gone: done would never be called. A failed
		// record may thus have been written; re-publishing it may
		// duplicate it, which consumers of solved shares tolerate.
		kgo.AllowIdempotentProduceCancellation(),
	)
	if b.cfg.AllPartitions {
		kopts = append(kopts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	} else {
		// btcpool's layout: every record on partition 0 (Record.Partition
		// is left 0).
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	if b.cfg.CreateTopics {
		kopts = append(kopts, kgo.AllowAutoTopicCreation())
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &producer{b: b, cl: cl, opts: opts}, nil
}

type producer struct {
	b    *Bus
	cl   *kgo.Client
	opts bus.ProducerOptions

	mu      sync.RWMutex // held shared by Produce calls, exclusively by Close
	closed  atomic.Bool
	once    sync.Once
	purging atomic.Bool // see noted
}

// wrapErr makes a closed client's error match bus.ErrClosed and marks
// configuration errors (a record larger than the broker takes, no
// authorization to write the topic) with bus.Permanent. A delivery timeout,
// a broker that stayed away, or a topic that kept being unknown for
// franz-go's UnknownTopicRetries metadata refreshes is transient.
func wrapErr(err error) error {
	return classify("kafka: delivery failed", err)
}

func (p *producer) Publish(topic string, key, value []byte, done func(error)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed.Load() {
		if done != nil {
			go done(bus.ErrClosed)
		}
		return
	}
	r := &kgo.Record{Topic: topic, Key: key, Value: value}
	if done == nil {
		p.cl.Produce(context.Background(), r, p.noted)
		return
	}
	// franz-go runs promises on its own goroutine, in order per partition.
	p.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		p.noted(r, err)
		done(wrapErr(err))
	})
}

// noted watches delivery results for a topic that was deleted and created
// again (a new topic id: recreated by an operator, or a broker that lost its
// data). franz-go then fails every record of the topic with UNKNOWN_TOPIC_ID
// until the topic is purged from the client; noted purges it (once at a time,
// off franz-go's promise goroutine), so that later records go to the new
// topic. Records failed until then get transient errors.
func (p *producer) noted(r *kgo.Record, err error) {
	if err == nil || !errors.Is(err, kerr.UnknownTopicID) || !p.purging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.purging.Store(false)
		p.mu.RLock()
		defer p.mu.RUnlock()
		if !p.closed.Load() {
			p.cl.PurgeTopicsFromProducing(r.Topic)
		}
	}()
}

func (p *producer) PublishSync(ctx context.Context, topic string, key, value []byte) error {
	return bus.PublishSync(ctx, p, topic, key, value)
}

func (p *producer) Flush(ctx context.Context) error {
	if p.closed.Load() {
		return nil // Close already flushed and failed the rest
	}
	return p.cl.Flush(ctx)
}

// Close flushes for at most the delivery timeout, then closes the client,
// which fails whatever is still buffered with an error wrapping ErrClosed.
func (p *producer) Close() error {
	p.once.Do(func() {
		p.closed.Store(true)
		// Flush also waits for a Publish blocked on a full buffer.
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.DeliveryTimeout+p.opts.Linger)
		defer cancel()
		p.cl.Flush(ctx)
		// A Publish that passed the closed check is still in Produce:
		// wait for it, so that Close fails its record rather than
		// racing with it.
		p.mu.Lock()
		p.cl.Close()
		p.mu.Unlock()
	})
	return nil
}

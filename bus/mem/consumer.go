package mem

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// errNotOwner is returned by Commit from a group member that does not own the
// partition (another member is reading it).
var errNotOwner = errors.New("mem: commit from a group member that does not own the partition")

// NewConsumer returns a consumer of topic starting as start says. A new group's
// starting offset is recorded as the group's committed offset at once, so every
// later member of the group begins there too.
func (b *Bus) NewConsumer(topic string, start bus.Start) (bus.Consumer, error) {
	if b.closed.Load() {
		return nil, bus.ErrClosed
	}
	if start.Tail < 0 {
		return nil, errors.New("mem: negative Start.Tail")
	}
	t := b.topic(topic)
	t.mu.Lock()
	next := max(t.end()-start.Tail, t.base)
	t.mu.Unlock()

	c := &consumer{b: b, t: t, next: next, closed: make(chan struct{})}
	if start.Group != "" {
		b.mu.Lock()
		g := b.groups[groupKey{start.Group, topic}]
		if g == nil {
			g = &group{committed: next}
			b.groups[groupKey{start.Group, topic}] = g
		}
		b.mu.Unlock()
		c.g = g
	}
	return c, nil
}

type consumer struct {
	b *Bus
	t *topic
	g *group // nil without a group

	next   int64 // offset of the next record to return; owned by Poll
	owner  bool  // this member owns the group's partition; under b.mu
	buf    []bus.Message
	once   sync.Once
	closed chan struct{}
}

func (c *consumer) Poll(ctx context.Context) ([]bus.Message, error) {
	if c.g != nil {
		if err := c.acquire(ctx); err != nil {
			return nil, err
		}
	}
	t := c.t
	for {
		select {
		case <-c.closed:
			return nil, bus.ErrClosed
		case <-c.b.closedCh:
			return nil, bus.ErrClosed
		default:
		}
		t.mu.Lock()
		c.next = max(c.next, t.base)
		n := min(t.end()-c.next, int64(c.b.opts.MaxPoll))
		if n > 0 {
			clear(c.buf)
			c.buf = c.buf[:0]
			i := t.head + int(c.next-t.base)
			for j, r := range t.recs[i : i+int(n)] {
				c.buf = append(c.buf, bus.Message{
					Topic:  t.name,
					Offset: c.next + int64(j),
					Key:    r.key,
					Value:  r.value,
					Time:   time.Unix(0, r.nanos),
				})
			}
			c.next += n
			t.mu.Unlock()
			return c.buf, nil
		}
		if t.wait == nil {
			t.wait = make(chan struct{})
		}
		w := t.wait
		t.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closed:
			return nil, bus.ErrClosed
		case <-c.b.closedCh:
			return nil, bus.ErrClosed
		}
	}
}

// acquire waits until this member owns the group's partition, then continues
// from the group's committed offset.
func (c *consumer) acquire(ctx context.Context) error {
	b := c.b
	for {
		b.mu.Lock()
		if c.owner {
			b.mu.Unlock()
			return nil
		}
		select {
		case <-c.closed:
			b.mu.Unlock()
			return bus.ErrClosed
		default:
		}
		if c.g.owner == nil {
			c.g.owner = c
			c.owner = true
			c.next = c.g.committed
			b.mu.Unlock()
			return nil
		}
		if c.g.released == nil {
			c.g.released = make(chan struct{})
		}
		w := c.g.released
		b.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return bus.ErrClosed
		case <-b.closedCh:
			return bus.ErrClosed
		}
	}
}

func (c *consumer) Commit(ctx context.Context, msgs ...bus.Message) error {
	if c.g == nil {
		return nil
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-c.closed:
		return bus.ErrClosed
	default:
	}
	if !c.owner {
		return errNotOwner
	}
	for _, m := range msgs {
		if m.Topic == c.t.name && m.Partition == 0 && m.Offset+1 > c.g.committed {
			c.g.committed = m.Offset + 1
		}
	}
	return nil
}

func (c *consumer) Close() error {
	c.once.Do(func() {
		close(c.closed)
		if c.g == nil {
			return
		}
		c.b.mu.Lock()
		if c.owner {
			c.owner = false
			c.g.owner = nil
			if c.g.released != nil {
				close(c.g.released)
				c.g.released = nil
			}
		}
		c.b.mu.Unlock()
	})
	return nil
}

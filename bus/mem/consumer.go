package mem

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// errNotOwner is returned by Commit from a group member that does not own the
// partition (another member is reading it).
var errNotOwner = errors.New("mem: commit from a group member that does not own the partition")

// NewConsumer returns a consumer of topic name starting as start says. A new group's
// starting offset is recorded as the group's committed offset at once, so every
// later member of the group begins there too.
func (b *Bus) NewConsumer(name string, start bus.Start) (bus.Consumer, error) {
	if b.closed.Load() {
		return nil, bus.ErrClosed
	}
	if start.Tail < 0 {
		return nil, errors.New("mem: negative Start.Tail")
	}
	var t *topic
	if b.d != nil {
		var err error
		if t, err = b.durableTopic(name); err != nil {
			return nil, err
		}
		if len(start.Group) > MaxGroupNameBytes {
			return nil, fmt.Errorf("mem: group name of %d bytes is longer than %d", len(start.Group), MaxGroupNameBytes)
		}
	} else {
		t = b.topic(name)
	}
	t.mu.Lock()
	next := max(t.next-start.Tail, t.oldest)
	t.mu.Unlock()

	c := &consumer{b: b, t: t, next: next, closed: make(chan struct{})}
	if start.Group != "" {
		g, err := b.joinGroup(groupKey{start.Group, name}, next)
		if err != nil {
			return nil, err
		}
		c.g = g
	} else {
		t.addReader(c, next)
	}
	return c, nil
}

// joinGroup returns the group, creating it at offset next if new. With a Dir
// a new group's offset is written (and fsynced) first, so that a restart
// before the first Commit still resumes there instead of skipping what was
// published meanwhile.
func (b *Bus) joinGroup(k groupKey, next int64) (*group, error) {
	if b.d != nil {
		b.d.groupCreate.Lock()
		defer b.d.groupCreate.Unlock()
	}
	b.mu.Lock()
	g := b.groups[k]
	b.mu.Unlock()
	if g != nil {
		return g, nil
	}
	if b.d != nil {
		if err := b.d.groups.commit(k, next); err != nil {
			return nil, err
		}
	}
	g = &group{key: k, committed: next}
	b.mu.Lock()
	b.groups[k] = g
	b.mu.Unlock()
	return g, nil
}

type consumer struct {
	b *Bus
	t *topic
	g *group // nil without a group

	next  int64 // offset of the next record to return; owned by Poll
	owner bool  // this member owns the group's partition; under b.mu
	// taken and reading are under t.mu: reading says c is in t.readers, and
	// every record below taken has been returned by Poll, so the cache
	// need not keep it for c.
	taken   int64
	reading bool
	buf     []bus.Message
	dbuf    []byte   // records read from segment files; the last Poll's messages point into it
	dseg    *segment // dbuf[:dlen] holds bytes [dpos, dpos+dlen) of dseg
	dpos    int64
	dlen    int
	cur     position // where reading the files stopped
	once    sync.Once
	closed  chan struct{}
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
		c.next = max(c.next, t.oldest)
		if c.next < t.base {
			// Behind the cache: read the segment files.
			msgs, ok, err := c.readDisk() // unlocks t.mu
			if err != nil {
				return nil, err
			}
			if ok {
				return msgs, nil
			}
			continue
		}
		n := min(t.next-c.next, int64(c.b.opts.MaxPoll))
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
			if c.reading {
				c.taken = c.next
				t.evict()
			}
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
			c.t.addReader(c, c.next)
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
	if b.closed.Load() {
		return bus.ErrClosed
	}
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
	next := c.g.committed
	for _, m := range msgs {
		if m.Topic == c.t.name && m.Partition == 0 && m.Offset+1 > next {
			next = m.Offset + 1
		}
	}
	if next == c.g.committed {
		return nil
	}
	if b.d == nil {
		c.g.committed = next
		return nil
	}
	// Write and fsync the offset without holding b.mu; the offsets file
	// serializes commits.
	b.mu.Unlock()
	err := b.d.groups.commit(groupKey{c.g.key.group, c.t.name}, next)
	b.mu.Lock()
	if err != nil {
		if b.closed.Load() {
			return bus.ErrClosed
		}
		return err
	}
	c.g.committed = max(c.g.committed, next)
	return nil
}

func (c *consumer) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.t.removeReader(c)
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

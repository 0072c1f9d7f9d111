package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hashpool/hashpool/bus"
)

// NewConsumer resolves the starting offsets now (so Tail counts from the end
// as of this call), then starts a franz-go client: direct partition consuming
// without a group, a consumer group with auto-commit off with one. A topic
// that does not exist (and CreateTopics is off) or that the client may not
// read is a bus.Permanent error; an unreachable broker is a transient one.
func (b *Bus) NewConsumer(topic string, start bus.Start) (bus.Consumer, error) {
	if start.Tail < 0 {
		return nil, errors.New("kafka: negative Start.Tail")
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
	defer cancel()
	ps, topicID, err := b.partitions(ctx, topic, start.Group != "")
	if err != nil {
		return nil, err
	}
	earliest, end, err := b.offsets(ctx, topic, ps)
	if err != nil {
		return nil, err
	}
	from := make(map[int32]int64, len(ps))
	for _, p := range ps {
		from[p] = max(end[p]-start.Tail, earliest[p])
	}

	c := &consumer{b: b, topic: topic, group: start.Group, topicID: topicID, idleSince: time.Now(),
		done: make(map[int32]int64), owned: make(map[int32]bool)}
	kopts := append(b.cfg.baseOpts(),
		kgo.FetchMaxWait(b.cfg.FetchMaxWait),
		kgo.FetchMaxBytes(2*b.cfg.MaxMessageBytes),
		kgo.FetchMaxPartitionBytes(b.cfg.MaxMessageBytes),
		// Behind retention, or on a broker that lost its log (a new
		// empty broker on the same address): continue at the oldest
		// record kept.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if start.Group == "" {
		offs := make(map[int32]kgo.Offset, len(ps))
		for _, p := range ps {
			offs[p] = kgo.NewOffset().At(from[p])
		}
		kopts = append(kopts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	} else {
		have, err := b.committed(ctx, start.Group, topic, ps)
		if err != nil {
			return nil, err
		}
		missing := make(map[int32]int64)
		for _, p := range ps {
			if _, ok := have[p]; !ok {
				missing[p] = from[p]
			}
		}
		if len(missing) > 0 {
			// Refused while the group has live members: they hold the
			// positions then. Any other failure is reported.
			err := b.commitStart(ctx, start.Group, topic, topicID, missing)
			if err != nil && !errors.Is(err, kerr.UnknownMemberID) && !errors.Is(err, kerr.IllegalGeneration) &&
				!errors.Is(err, kerr.RebalanceInProgress) {
				return nil, classify(fmt.Sprintf("kafka: start offsets of new group %q on %q", start.Group, topic), err)
			}
		}
		kopts = append(kopts,
			kgo.ConsumerGroup(start.Group),
			kgo.ConsumeTopics(topic),
			kgo.DisableAutoCommit(),
			kgo.SessionTimeout(b.cfg.SessionTimeout),
			kgo.HeartbeatInterval(min(defaultHeartbeat, b.cfg.SessionTimeout/3)),
			kgo.OnPartitionsAssigned(c.assigned),
			kgo.OnPartitionsRevoked(c.revoked),
			kgo.OnPartitionsLost(c.revoked),
		)
		if start.Held != nil {
			kopts = append(kopts, kgo.AdjustFetchOffsetsFn(c.resumeAfterHeld(start.Held)))
		}
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	c.cl = cl
	return c, nil
}

type consumer struct {
	b     *Bus
	cl    *kgo.Client
	topic string
	group string

	buf    []bus.Message // owned by Poll
	closed atomic.Bool

	// Owned by Poll: the topic's id as last seen, and when Poll last had
	// records or last asked for the topic (see checkTopic).
	topicID   [16]byte
	idleSince time.Time
	lastCheck time.Time
	missing   int // consecutive checks that found the topic gone
	once      sync.Once

	mu   sync.Mutex      // serializes Commit
	done map[int32]int64 // highest offset+1 committed per partition

	omu   sync.Mutex     // never held across I/O: franz-go's rebalance callbacks take it
	owned map[int32]bool // partitions the group gave this member, as of the last callback
}

// assigned, revoked: franz-go's rebalance callbacks (revoked also serves for
// partitions lost when the member was dropped from the group, e.g. after a
// broker pause longer than the session timeout).
func (c *consumer) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.omu.Lock()
	defer c.omu.Unlock()
	for _, p := range m[c.topic] {
		c.owned[p] = true
	}
}

// resumeAfterHeld returns franz-go's hook between a join's offset fetch and consumption: a
// partition whose group commit is ahead of what the caller holds (or that has no commit)
// resumes right after the held offset, so a commit made by someone else, or moved by hand,
// never skips records the caller does not have.
func (c *consumer) resumeAfterHeld(held func(int32, int64) (int64, bool)) func(context.Context, map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	return func(_ context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
		for p, o := range offs[c.topic] {
			at := max(o.EpochOffset().Offset, -1) // franz-go's sentinels (no commit) are negative
			h, ok := held(p, at)
			if !ok || at >= 0 && at <= h+1 {
				continue // the caller skips what it holds
			}
			offs[c.topic][p] = kgo.NewOffset().At(h + 1).WithEpoch(-1)
		}
		return offs, nil
	}
}

func (c *consumer) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.omu.Lock()
	defer c.omu.Unlock()
	for _, p := range m[c.topic] {
		delete(c.owned, p)
	}
}

// Poll returns the next records. While the broker is unreachable it blocks
// (franz-go retries fetches itself); group-session errors (the member was
// dropped from the group and is rejoining, or cannot join) are returned,
// transient unless they are configuration errors (bus.Permanent).
func (c *consumer) Poll(ctx context.Context) ([]bus.Message, error) {
	for {
		if c.closed.Load() {
			return nil, bus.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, topicCheckInterval)
		fs := c.cl.PollRecords(pctx, c.b.cfg.MaxPoll)
		cancel()
		if fs.IsClientClosed() || c.closed.Load() {
			return nil, bus.ErrClosed
		}
		clear(c.buf)
		c.buf = c.buf[:0]
		fs.EachRecord(func(r *kgo.Record) {
			c.buf = append(c.buf, bus.Message{
				Topic:     r.Topic,
				Partition: r.Partition,
				Offset:    r.Offset,
				Key:       r.Key,
				Value:     r.Value,
				Time:      r.Timestamp,
			})
		})
		if len(c.buf) > 0 {
			c.idleSince = time.Now()
			return c.buf, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if time.Since(c.idleSince) >= topicCheckInterval && time.Since(c.lastCheck) >= topicCheckInterval {
			if err := c.checkTopic(ctx); err != nil {
				return nil, err
			}
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			if ge, ok := errors.AsType[*kgo.ErrGroupSession](fe.Err); ok {
				return nil, classify(fmt.Sprintf("kafka: group %q on %q", c.group, c.topic), ge)
			}
			return nil, classify(fmt.Sprintf("kafka: fetch %q partition %d", fe.Topic, fe.Partition), fe.Err)
		}
	}
}

// topicCheckInterval is how long Poll waits without records before it asks
// the cluster whether its topic still exists under the same id.
const topicCheckInterval = 10 * time.Second

// checkTopic asks the cluster for the topic. franz-go deliberately does not
// follow a topic that was deleted and created again (new topic id: an
// operator recreated it, or the broker lost its data and came back empty):
// it stops fetching it without an error reaching Poll. checkTopic then
// re-adds the topic, read from its start, and returns a transient error
// saying so. A topic found missing twice in a row (CreateTopics off) is a
// bus.Permanent error. An unreachable broker is not an error here: franz-go
// is retrying.
func (c *consumer) checkTopic(ctx context.Context) error {
	c.lastCheck = time.Now()
	cctx, cancel := context.WithTimeout(ctx, c.b.cfg.RequestTimeout)
	defer cancel()
	ps, id, err := c.b.partitions(cctx, c.topic, c.group != "")
	if err != nil {
		if bus.IsPermanent(err) {
			if c.missing++; c.missing >= 2 {
				return err
			}
		}
		return nil
	}
	c.missing = 0
	if id == c.topicID || id == [16]byte{} {
		return nil
	}
	c.topicID = id
	c.cl.PurgeTopicsFromConsuming(c.topic)
	c.mu.Lock()
	clear(c.done) // offsets of the old topic
	c.mu.Unlock()
	if c.group != "" {
		c.cl.AddConsumeTopics(c.topic)
	} else {
		offs := make(map[int32]kgo.Offset, len(ps))
		for _, p := range ps {
			offs[p] = kgo.NewOffset().AtStart()
		}
		c.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: offs})
	}
	return fmt.Errorf("kafka: topic %q was deleted and created again (new topic id; a broker that lost its data?): reading the new topic from its start", c.topic)
}

// Commit commits msgs for the partitions this member owns, in one request
// bounded by RequestTimeout. Records of partitions it does not own (a
// rebalance moved them) are not committed and make Commit return an error
// wrapping ErrNotAssigned, after the owned ones are committed.
func (c *consumer) Commit(ctx context.Context, msgs ...bus.Message) error {
	if c.group == "" {
		return nil
	}
	if c.closed.Load() {
		return bus.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	offs := make(map[int32]kgo.EpochOffset)
	for _, m := range msgs {
		if m.Topic != c.topic || m.Offset+1 <= c.done[m.Partition] || m.Offset+1 <= offs[m.Partition].Offset {
			continue
		}
		offs[m.Partition] = kgo.EpochOffset{Epoch: -1, Offset: m.Offset + 1}
	}
	var notOwned []int32
	c.omu.Lock()
	for p := range offs {
		if !c.owned[p] {
			notOwned = append(notOwned, p)
			delete(offs, p)
		}
	}
	c.omu.Unlock()
	what := fmt.Sprintf("kafka: commit group %q on %q", c.group, c.topic)
	var errNotOwned error
	if len(notOwned) > 0 {
		slices.Sort(notOwned)
		errNotOwned = fmt.Errorf("%s: partitions %v: %w", what, notOwned, ErrNotAssigned)
	}
	if len(offs) == 0 {
		return errNotOwned
	}
	ctx, cancel := context.WithTimeout(ctx, c.b.cfg.RequestTimeout)
	defer cancel()
	var cerr error
	c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.topic: offs},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				clear(offs)
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						if cerr == nil {
							cerr = fmt.Errorf("partition %d: %w", p.Partition, err)
						}
						delete(offs, p.Partition)
					}
				}
			}
		})
	for p, o := range offs { // what the broker took
		c.done[p] = o.Offset
	}
	if cerr != nil {
		if c.closed.Load() {
			return fmt.Errorf("%w: %s: %w", bus.ErrClosed, what, cerr)
		}
		return classify(what, cerr)
	}
	return errNotOwned
}

// Close leaves the group (if any) and closes the client; a blocked Poll
// returns ErrClosed.
func (c *consumer) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		c.cl.Close()
	})
	return nil
}

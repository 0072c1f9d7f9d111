package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hashpool/hashpool/bus"
)

// Defaults for Config.
const (
	DefaultClientID           = "hashpool"
	DefaultDeliveryTimeout    = 120 * time.Second // Kafka's delivery.timeout.ms; see doc.go
	DefaultSessionTimeout     = 45 * time.Second  // franz-go's and Kafka's session.timeout.ms
	DefaultMaxBufferedRecords = 1 << 20
	DefaultFetchMaxWait       = 10 * time.Millisecond // btcpool sserver: fetch.wait.max.ms=10
	DefaultMaxPoll            = 1024
	DefaultRequestTimeout     = 10 * time.Second
	DefaultDialTimeout        = 5 * time.Second

	// DefaultMaxMessageBytes bounds one record. A full main-net template is a RawGbt of
	// 3–11 MB (base64 of the whole getblocktemplate answer), far above Kafka's default of
	// about 1 MB; btcpool used 20 MB. Brokers need message.max.bytes (and topics
	// max.message.bytes) at least this large; topics this bus creates get it.
	DefaultMaxMessageBytes = 32 << 20

	defaultHeartbeat         = 3 * time.Second  // franz-go's heartbeat.interval.ms
	maxProduceRequestTimeout = 30 * time.Second // Kafka's request.timeout.ms
)

// Config configures a Bus. Brokers is required; New fills in the defaults.
type Config struct {
	// Brokers are the seed brokers, "host:port".
	Brokers []string
	// ClientID is sent to the brokers (default DefaultClientID).
	ClientID string
	// MaxMessageBytes bounds one record, produced or fetched (default DefaultMaxMessageBytes).
	MaxMessageBytes int32

	// CreateTopics creates missing topics: Topics at New, and any other
	// topic when a consumer or producer first names it. For tests and
	// `hashpool run`; production clusters create topics ahead of time.
	CreateTopics bool
	// Topics are created at New when CreateTopics is set.
	Topics bus.Topics
	// TopicPartitions is the partition count of created topics (default 1).
	TopicPartitions int32
	// ReplicationFactor of created topics (default -1: the broker's default).
	ReplicationFactor int16

	// AllPartitions makes producers spread records over all partitions (by
	// key hash, keyless records sticky per batch) and direct consumers read
	// every partition. The default, false, is btcpool's layout: producers
	// write partition 0 and direct consumers read partition 0 only. Group
	// consumers always read every partition.
	AllPartitions bool

	// DeliveryTimeout is the default for ProducerOptions.DeliveryTimeout
	// (default DefaultDeliveryTimeout; franz-go requires at least 1 s).
	DeliveryTimeout time.Duration
	// SessionTimeout is how long a group member may go without a
	// heartbeat before the broker drops it from the group and gives its
	// partitions to the others (default DefaultSessionTimeout; the broker
	// refuses values outside its group.min/max.session.timeout.ms, which
	// is a bus.Permanent error from Poll). A broker pause longer than this
	// makes every member rejoin, and records polled but not committed are
	// read again. Heartbeats go every SessionTimeout/3, at most 3 s.
	SessionTimeout time.Duration
	// MaxBufferedRecords is the default for
	// ProducerOptions.MaxBufferedRecords (default DefaultMaxBufferedRecords).
	MaxBufferedRecords int
	// FetchMaxWait bounds how long a broker holds a fetch with no new data
	// (default DefaultFetchMaxWait).
	FetchMaxWait time.Duration
	// MaxPoll bounds the records one Poll returns (default DefaultMaxPoll).
	MaxPoll int
	// RequestTimeout bounds New's and NewConsumer's own requests (topic
	// metadata, offsets, creating topics); default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// DialTimeout bounds one connection attempt (default DefaultDialTimeout).
	DialTimeout time.Duration

	// Logger receives franz-go's log lines at Info and above (or at the
	// logger's level if higher); nil: silent. franz-go logs every failed
	// request and group session (at Error: "group manage loop errored")
	// all through a broker outage, so production setups leave it nil and
	// rely on the one line per incident of bus.Poll and bus.Commit.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.TopicPartitions == 0 {
		c.TopicPartitions = 1
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = DefaultMaxBufferedRecords
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = DefaultFetchMaxWait
	}
	if c.MaxPoll == 0 {
		c.MaxPoll = DefaultMaxPoll
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
}

// Validate reports every problem with c at once. Zero values are fine (they
// take defaults), except Brokers.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: no Brokers"))
	}
	for _, b := range c.Brokers {
		if b == "" {
			errs = append(errs, errors.New("kafka: empty broker address"))
		}
	}
	if c.TopicPartitions < 0 {
		errs = append(errs, fmt.Errorf("kafka: TopicPartitions %d is negative", c.TopicPartitions))
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > 256<<20 {
		errs = append(errs, fmt.Errorf("kafka: MaxMessageBytes %d: want 1..256 MiB (0: default)", c.MaxMessageBytes))
	}
	if c.DeliveryTimeout != 0 && c.DeliveryTimeout < time.Second {
		errs = append(errs, fmt.Errorf("kafka: DeliveryTimeout %v is under franz-go's minimum of 1s", c.DeliveryTimeout))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxBufferedRecords", int64(c.MaxBufferedRecords)},
		{"FetchMaxWait", int64(c.FetchMaxWait)},
		{"MaxPoll", int64(c.MaxPoll)},
		{"RequestTimeout", int64(c.RequestTimeout)},
		{"DialTimeout", int64(c.DialTimeout)},
		{"SessionTimeout", int64(c.SessionTimeout)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("kafka: %s is negative", f.name))
		}
	}
	return errors.Join(errs...)
}

// Bus is a bus.Bus on a Kafka cluster. Create it with New.
type Bus struct {
	cfg   Config
	admin *kgo.Client // metadata, offsets, topic creation, a new group's first commit
}

var _ bus.Bus = (*Bus)(nil)

// New validates cfg and connects lazily: it talks to the brokers only when
// CreateTopics is set (to create cfg.Topics), bounded by RequestTimeout.
func New(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Brokers = slices.Clone(cfg.Brokers)
	cfg.setDefaults()
	admin, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return nil, bus.Permanent(fmt.Errorf("kafka: %w", err))
	}
	b := &Bus{cfg: cfg, admin: admin}
	if cfg.CreateTopics {
		if names := cfg.Topics.All(); len(names) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout)
			defer cancel()
			if err := b.createTopics(ctx, names...); err != nil {
				admin.Close()
				return nil, err
			}
		}
	}
	return b, nil
}

// Close closes the Bus's own client. Producers and consumers are separate
// clients and are closed by their own Close.
func (b *Bus) Close() error {
	b.admin.Close()
	return nil
}

func (c *Config) baseOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
		// Responses must hold a whole record of MaxMessageBytes (franz-go's default read
		// bound is 100 MiB; keep at least twice the record size, as its docs advise).
		kgo.BrokerMaxReadBytes(max(2*c.MaxMessageBytes, 100<<20)),
		kgo.BrokerMaxWriteBytes(max(2*c.MaxMessageBytes, 100<<20)),
	}
	if c.Logger != nil {
		opts = append(opts, kgo.WithLogger(slogger{c.Logger}))
	}
	return opts
}

// createTopics creates names; topics that already exist are fine.
func (b *Bus) createTopics(ctx context.Context, names ...string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(b.cfg.RequestTimeout / time.Millisecond)
	for _, n := range names {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = n
		t.NumPartitions = b.cfg.TopicPartitions
		t.ReplicationFactor = b.cfg.ReplicationFactor
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name = "max.message.bytes"
		cfg.Value = kmsg.StringPtr(strconv.Itoa(int(b.cfg.MaxMessageBytes)))
		t.Configs = append(t.Configs, cfg)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return classify(fmt.Sprintf("kafka: create topics %q", names), err)
	}
	var errs []error
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, classify(fmt.Sprintf("kafka: create topic %q", t.Topic), err))
		}
	}
	return errors.Join(errs...)
}

// partitions returns topic's partition ids in order (only 0 unless
// AllPartitions or all is set) and its topic id, creating the topic first if
// it is missing and CreateTopics is set.
func (b *Bus) partitions(ctx context.Context, topic string, all bool) ([]int32, [16]byte, error) {
	var noID [16]byte
	created := false
	for attempt := 0; ; attempt++ {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, b.admin)
		if err != nil {
			return nil, noID, fmt.Errorf("kafka: metadata for topic %q: %w", topic, err)
		}
		if len(resp.Topics) != 1 {
			return nil, noID, fmt.Errorf("kafka: metadata for topic %q: %d topics in reply", topic, len(resp.Topics))
		}
		t := resp.Topics[0]
		err = kerr.ErrorForCode(t.ErrorCode)
		if err == nil && len(t.Partitions) > 0 {
			var ps []int32
			for _, p := range t.Partitions {
				if all || b.cfg.AllPartitions || p.Partition == 0 {
					ps = append(ps, p.Partition)
				}
			}
			slices.Sort(ps)
			if len(ps) == 0 {
				return nil, noID, bus.Permanent(fmt.Errorf("kafka: topic %q has no partition 0", topic))
			}
			return ps, t.TopicID, nil
		}
		if err == nil {
			err = errors.New("no partitions")
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kerr.LeaderNotAvailable) {
			return nil, noID, classify(fmt.Sprintf("kafka: topic %q", topic), err)
		}
		if !b.cfg.CreateTopics && !created && errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, noID, bus.Permanent(fmt.Errorf("kafka: topic %q does not exist (create it, or set CreateTopics): %w", topic, err))
		}
		if !created && errors.Is(err, kerr.UnknownTopicOrPartition) {
			if err := b.createTopics(ctx, topic); err != nil {
				return nil, noID, err
			}
			created = true
		}
		// A topic just created needs a moment to get leaders.
		select {
		case <-ctx.Done():
			return nil, noID, fmt.Errorf("kafka: topic %q: %w (last error: %w)", topic, ctx.Err(), err)
		case <-time.After(time.Duration(min(attempt+1, 10)) * 20 * time.Millisecond):
		}
	}
}

// offsets lists, per partition, the earliest and the next (end) offset.
func (b *Bus) offsets(ctx context.Context, topic string, ps []int32) (earliest, end map[int32]int64, err error) {
	earliest, end = make(map[int32]int64, len(ps)), make(map[int32]int64, len(ps))
	for _, ts := range []struct {
		ts  int64
		out map[int32]int64
	}{{-2, earliest}, {-1, end}} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = topic
		for _, p := range ps {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = ts.ts
			rp.CurrentLeaderEpoch = -1
			t.Partitions = append(t.Partitions, rp)
		}
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, b.admin)
		if err != nil {
			return nil, nil, fmt.Errorf("kafka: list offsets of %q: %w", topic, err)
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return nil, nil, classify(fmt.Sprintf("kafka: list offsets of %q partition %d", topic, rp.Partition), err)
				}
				ts.out[rp.Partition] = rp.Offset
			}
		}
		for _, p := range ps {
			if _, ok := ts.out[p]; !ok {
				return nil, nil, fmt.Errorf("kafka: list offsets of %q: no reply for partition %d", topic, p)
			}
		}
	}
	return earliest, end, nil
}

// committed returns the group's committed offsets for ps (absent: none).
func (b *Bus) committed(ctx context.Context, group, topic string, ps []int32) (map[int32]int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	t := kmsg.NewOffsetFetchRequestTopic()
	t.Topic = topic
	t.Partitions = ps
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return nil, fmt.Errorf("kafka: committed offsets of group %q: %w", group, err)
	}
	out := make(map[int32]int64, len(ps))
	if err := kerr.ErrorForCode(resp.ErrorCode); errors.Is(err, kerr.GroupIDNotFound) {
		return out, nil // a group never seen: nothing committed
	} else if err != nil {
		return nil, classify(fmt.Sprintf("kafka: committed offsets of group %q", group), err)
	}
	for _, rt := range resp.Topics {
		if rt.Topic != topic {
			continue
		}
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); errors.Is(err, kerr.GroupIDNotFound) {
				continue
			} else if err != nil {
				return nil, classify(fmt.Sprintf("kafka: committed offset of group %q on %q partition %d", group, topic, rp.Partition), err)
			}
			if rp.Offset >= 0 {
				out[rp.Partition] = rp.Offset
			}
		}
	}
	return out, nil
}

// commitStart commits a new group's starting offsets as a simple commit
// (generation -1), which Kafka accepts only while the group has no members.
func (b *Bus) commitStart(ctx context.Context, group, topic string, id [16]byte, offsets map[int32]int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic // up to v9
	t.TopicID = id  // v10 on
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = p
		rp.Offset = o
		rp.LeaderEpoch = -1
		t.Partitions = append(t.Partitions, rp)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}

// slogger adapts a *slog.Logger to kgo.Logger, at Info and above, or at the
// logger's own level if it is higher (so franz-go does not even format
// lines the handler drops).
type slogger struct{ l *slog.Logger }

func (s slogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case s.l.Enabled(ctx, slog.LevelInfo):
		return kgo.LogLevelInfo
	case s.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case s.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (s slogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelInfo
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelDebug:
		lv = slog.LevelDebug
	}
	s.l.Log(context.Background(), lv, msg, keyvals...)
}

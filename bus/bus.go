package bus

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned (or passed to a done callback) when a producer, consumer
// or bus is used after Close, or when a record could not be delivered because of
// the Close.
var ErrClosed = errors.New("bus: closed")

// Topics are the topic names the components use. The zero value is not usable;
// start from DefaultTopics and override what the operator configured.
type Topics struct {
	RawGbt       string // block templates from gbtmaker (btcpool: rawgbt_topic)
	Job          string // stratum jobs from jobmaker (job_topic)
	Share        string // share records from sserver (share_topic)
	SolvedShare  string // solved (block) shares from sserver (solved_share_topic)
	CommonEvents string // worker events from sserver (common_events_topic)

	// AuxRawGw carries every aux chain's merged-mining work from auxmaker to jobmaker
	// (auxpow_gw_topic); AuxSolvedShare carries shares meeting an aux target from sserver to
	// blkmaker (auxpow_solved_share_topic). Both empty means merged mining is off; set them
	// (btcpool HEAD's names are DefaultAuxRawGw and DefaultAuxSolvedShare) when an aux chain
	// is configured. DefaultTopics leaves them empty so a pool without aux chains creates
	// no aux topics.
	AuxRawGw       string
	AuxSolvedShare string

	// RskRawGw carries RSK's merged-mining work from rskmaker to jobmaker (rsk_rawgw_topic);
	// RskSolvedShare carries shares meeting the RSK target from sserver to blkmaker
	// (rsk_solved_share_topic). Both empty (DefaultTopics) means RSK merged mining is off;
	// WithRSK sets btcpool HEAD's names.
	RskRawGw       string
	RskSolvedShare string
}

// btcpool HEAD's default RSK topic names (spec §1.1; LEGACY: RawGw).
const (
	DefaultRskRawGw       = "RskRawGw"
	DefaultRskSolvedShare = "RskSolvedShare"
)

// WithRSK returns t with empty RSK topics set to btcpool HEAD's defaults.
func (t Topics) WithRSK() Topics {
	if t.RskRawGw == "" {
		t.RskRawGw = DefaultRskRawGw
	}
	if t.RskSolvedShare == "" {
		t.RskSolvedShare = DefaultRskSolvedShare
	}
	return t
}

// btcpool HEAD's default aux topic names (spec §1.1; LEGACY: NMCAuxBlock, NMCSolvedShare).
const (
	DefaultAuxRawGw       = "AuxRawGw"
	DefaultAuxSolvedShare = "AuxSolvedShare"
)

// WithAux returns t with empty aux topics set to btcpool HEAD's defaults.
func (t Topics) WithAux() Topics {
	if t.AuxRawGw == "" {
		t.AuxRawGw = DefaultAuxRawGw
	}
	if t.AuxSolvedShare == "" {
		t.AuxSolvedShare = DefaultAuxSolvedShare
	}
	return t
}

// MergedMining reports whether both aux topics are set.
func (t Topics) MergedMining() bool { return t.AuxRawGw != "" && t.AuxSolvedShare != "" }

// DefaultTopics returns btcpool HEAD's default topic names, so that hashpool and
// btcpool components can share one Kafka cluster without extra configuration.
func DefaultTopics() Topics {
	return Topics{
		RawGbt:       "BtcRawGbt",
		Job:          "BtcJob",
		Share:        "BtcShare",
		SolvedShare:  "BtcSolvedShare",
		CommonEvents: "BtcCommonEvents",
	}
}

// All returns the non-empty topic names in a fixed order (RawGbt, Job, Share,
// SolvedShare, CommonEvents, AuxRawGw, AuxSolvedShare, RskRawGw, RskSolvedShare), e.g. to
// create them.
func (t Topics) All() []string {
	out := make([]string, 0, 9)
	for _, s := range []string{t.RawGbt, t.Job, t.Share, t.SolvedShare, t.CommonEvents, t.AuxRawGw, t.AuxSolvedShare, t.RskRawGw, t.RskSolvedShare} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate reports an error naming every empty topic. The aux topics may both be empty
// (merged mining off); one set without the other is an error.
func (t Topics) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{
		{"RawGbt", t.RawGbt}, {"Job", t.Job}, {"Share", t.Share},
		{"SolvedShare", t.SolvedShare}, {"CommonEvents", t.CommonEvents},
	} {
		if f.v == "" {
			errs = append(errs, errors.New("bus: topic "+f.name+" is empty"))
		}
	}
	if (t.AuxRawGw == "") != (t.AuxSolvedShare == "") {
		errs = append(errs, errors.New("bus: topics AuxRawGw and AuxSolvedShare must be both set or both empty"))
	}
	if (t.RskRawGw == "") != (t.RskSolvedShare == "") {
		errs = append(errs, errors.New("bus: topics RskRawGw and RskSolvedShare must be both set or both empty"))
	}
	return errors.Join(errs...)
}

// Message is one record read from a topic.
//
// Key and Value belong to the bus: the consumer must not modify them, and they
// are valid only until the next Poll on the same consumer (copy what must live
// longer). Partition and Offset identify the record; Commit uses them.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Time      time.Time // when the record was published (Kafka CreateTime, ms precision)
}

// Producer sends records to topics. Its methods are safe for concurrent use.
type Producer interface {
	// Publish queues value for topic and returns at once. It takes ownership of
	// key and value: the caller must not modify them afterwards. key may be nil.
	//
	// done, if not nil, is called exactly once with the delivery result: nil
	// once the bus holds the record durably (Kafka: acknowledged by the
	// brokers; durable bus/mem: written and fsynced, together with every
	// record published before it on the bus), otherwise why delivery could
	// not be confirmed (delivery timeout, ErrClosed, a broker or disk error;
	// a durable bus/mem record may already be visible to consumers, since it
	// is visible once written, before its fsync). An error
	// means "not confirmed": with Kafka the record may still have been
	// written, so publishing it again may duplicate it. done is never called
	// from inside Publish, may run on any goroutine, and must not block for
	// long (and must not Publish on a full producer): it delays the results
	// of later records. Records of one producer on one topic are delivered,
	// and their done callbacks called, in Publish order.
	//
	// Publish blocks while the producer holds MaxBufferedRecords undelivered
	// records; it never waits on a network or a disk otherwise.
	Publish(topic string, key, value []byte, done func(error))

	// PublishSync publishes one record and waits for its delivery result, or for
	// ctx. If ctx ends first the record may still be delivered later. Use it for
	// records that must not be lost, such as solved shares. On a durable
	// bus/mem it returns nil only after an fsync covering the record.
	PublishSync(ctx context.Context, topic string, key, value []byte) error

	// Flush waits until every record published before the call has its delivery
	// result and its done callback has returned, or until ctx is done.
	Flush(ctx context.Context) error

	// Close flushes for a bounded time (the producer's delivery timeout), then
	// fails every record still queued with ErrClosed, so that every done
	// callback runs exactly once. Publish after Close reports ErrClosed to done.
	Close() error
}

// Start says where a new consumer begins reading.
type Start struct {
	// Tail is how many records before the end to begin (btcpool's
	// OFFSET_TAIL(N)): 0 reads only records published after NewConsumer
	// returns; N > 0 also reads the last N records already on the topic (fewer
	// if the topic holds fewer). With several partitions Tail applies to each.
	Tail int64

	// Group, when not empty, makes the consumer a member of a consumer group:
	// it resumes after the last offset the group committed. A group with no
	// committed offset begins as Tail says, counted when NewConsumer is called.
	// Several members of one group share the partitions; a partition is read by
	// one member at a time.
	Group string

	// Held, when not nil, reports per partition the last offset the caller
	// already holds durably (its own record of progress, such as the share
	// log's checkpoint), or ok false when it holds nothing of that partition;
	// committed is where the group's commit would resume (-1: no commit).
	// Each time the group gives this member a partition the caller holds, the
	// member resumes right after Held's offset whenever the commit is ahead of
	// it (the caller's record wins: records the commit would skip are
	// delivered, and the caller may log that it happened); a commit at or
	// behind it is kept, and the caller skips what it holds. Held is called
	// from the bus's goroutines, concurrently with Poll. Only for a group, on
	// a bus whose offsets survive the process (Kafka); the in-process bus
	// ignores it.
	Held func(partition int32, committed int64) (offset int64, ok bool)
}

// Consumer reads one topic. Poll and Commit may be called from different
// goroutines, but Poll must not be called concurrently with itself.
type Consumer interface {
	// Poll blocks until at least one record is available or ctx is done, and
	// returns the records in offset order per partition. The returned slice
	// and the messages' bytes are valid until the next Poll. When ctx ends it
	// returns ctx.Err(); after Close (also a Close that interrupts a blocked
	// Poll) it returns ErrClosed. Other errors, such as a broker's fetch
	// error, are returned as they come; the consumer stays usable and the
	// caller polls again. A consumer that has fallen behind the bus's
	// retention skips to the oldest retained record.
	Poll(ctx context.Context) ([]Message, error)

	// Commit marks msgs as consumed for the consumer's group, so that a new
	// member resumes after them. Call it only after the side effect of the
	// messages is durable. Committing a message also commits every earlier
	// offset of its partition; committing an offset lower than one already
	// committed is ignored. For a consumer without a group Commit does nothing
	// and returns nil.
	Commit(ctx context.Context, msgs ...Message) error

	// Close stops the consumer and, for a group member, hands its partitions
	// to the other members. It does not commit.
	Close() error
}

// ProducerOptions tune one producer. The zero value sends at once with the
// implementation's default buffering and delivery timeout.
type ProducerOptions struct {
	// Linger is how long records may wait to be batched with others. 0 sends
	// at once (templates, jobs, solved shares); share records use up to 1 s,
	// like btcpool's queue.buffering.max.ms=1000.
	Linger time.Duration

	// MaxBufferedRecords bounds the records queued but not yet delivered;
	// Publish blocks while the bound is reached (0: implementation default).
	MaxBufferedRecords int

	// DeliveryTimeout bounds how long a record is retried before its done
	// callback gets an error (0: implementation default).
	DeliveryTimeout time.Duration
}

// Bus creates producers and consumers on one bus. Its methods are safe for
// concurrent use.
type Bus interface {
	NewProducer(opts ProducerOptions) (Producer, error)
	NewConsumer(topic string, start Start) (Consumer, error)
	// Close releases the bus. Producers and consumers should be closed first;
	// any still open fail with ErrClosed.
	Close() error
}

// PublishSync publishes one record on p and waits for its delivery result or for ctx; it is
// how every Producer implements its PublishSync method. If ctx ends first the record may still
// be delivered later.
func PublishSync(ctx context.Context, p Producer, topic string, key, value []byte) error {
	res := make(chan error, 1)
	p.Publish(topic, key, value, func(err error) { res <- err })
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

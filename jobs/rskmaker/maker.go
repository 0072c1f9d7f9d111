package rskmaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/jobs/fetchloop"
	"github.com/hashpool/hashpool/node"
)

// Defaults.
const (
	// DefaultRPCInterval is RSK's advice for pools: fetch work every 2 seconds.
	DefaultRPCInterval = 2 * time.Second
	// DefaultTopic is btcpool HEAD's rsk_rawgw_topic (LEGACY: RawGw).
	DefaultTopic = "RskRawGw"
	// ChainType is what btcpool HEAD writes in chainType.
	ChainType = "RSK"
	// MaxWorkAge is the longest interval that keeps work fresh for jobmaker, which refuses
	// RskRawGw older than 60 s.
	MaxWorkAge = time.Minute
)

// Options configures a [Maker]. Call WithDefaults, then Validate (New does both).
type Options struct {
	// Node is the RSK node (rskd.rpc_addr, rpc_userpwd).
	Node node.Options
	// Timing is when work is fetched (RPCInterval 2 s). ZMQAddr must stay empty.
	fetchloop.Timing
	// Topic is where RskRawGw messages go (RskRawGw).
	Topic string
	// RPCAddress and RPCUserPwd are what each message tells blkmaker about where to submit
	// (rskdRpcAddress, rskdRpcUserPwd). Defaults: Node.URL and "User:Password". At most 79
	// bytes each (they travel in 80-byte fields of RskSolvedShare).
	RPCAddress, RPCUserPwd string
	// Logger receives the maker's logs; nil means silent.
	Logger *slog.Logger
}

// WithDefaults returns a copy of o with every zero field that has a default set to it.
func (o Options) WithDefaults() Options {
	o.Timing = o.Timing.WithDefaults(DefaultRPCInterval)
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	fetchloop.Advertise(o.Node, &o.RPCAddress, &o.RPCUserPwd)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every problem with o at once. Call it on the result of WithDefaults.
func (o Options) Validate() error {
	var errs []error
	nodeOpts := o.Node
	if err := nodeOpts.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rskmaker: %w", err))
	}
	errs = append(errs, o.Timing.Problems("rskmaker")...)
	if o.ZMQAddr != "" {
		errs = append(errs, errors.New("rskmaker: an RSK node has no ZMQ: leave zmq_addr empty"))
	}
	if o.RPCInterval > MaxWorkAge/2 {
		errs = append(errs, fmt.Errorf("rskmaker: interval %v would let RSK work go stale (jobmaker refuses work older than %v); use at most 30s", o.RPCInterval, MaxWorkAge))
	}
	if o.Topic == "" {
		errs = append(errs, errors.New("rskmaker: topic is empty"))
	}
	if len(o.RPCAddress) > 79 || len(o.RPCUserPwd) > 79 {
		errs = append(errs, errors.New("rskmaker: rpc address or user:password longer than 79 bytes (RskSolvedShare's fields)"))
	}
	return errors.Join(errs...)
}

// Maker polls one RSK node and publishes RskRawGw.
type Maker struct {
	opts   Options
	log    *slog.Logger
	client *node.Client
	prod   bus.Producer
	loop   *fetchloop.Loop

	mu   sync.Mutex // serialises publishing; guards hash
	hash string     // blockHashForMergedMining of the last published work
}

// Stats are counters since New.
type Stats struct {
	Published     uint64 // RskRawGw messages acknowledged by the bus
	FetchErrors   uint64 // mnr_getWork calls that failed or were invalid
	PublishErrors uint64 // messages the bus did not acknowledge in time
	Hash          string // blockHashForMergedMining of the last published work
}

// New checks opts (after filling defaults) and returns a Maker publishing with prod. It does
// not contact the node; Run does.
func New(opts Options, prod bus.Producer) (*Maker, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if prod == nil {
		return nil, errors.New("rskmaker: producer is nil")
	}
	c, err := fetchloop.NodeClient(opts.Node, opts.Logger)
	if err != nil {
		return nil, err
	}
	return &Maker{opts: opts, log: opts.Logger, client: c, prod: prod, loop: fetchloop.New(opts.Timing, opts.Logger)}, nil
}

// Stats returns the counters.
func (m *Maker) Stats() Stats {
	m.mu.Lock()
	h := m.hash
	m.mu.Unlock()
	pub, fetchErr, pubErr := m.loop.Counts()
	return Stats{Published: pub, FetchErrors: fetchErr, PublishErrors: pubErr, Hash: h}
}

// Run publishes a first work, then one every interval (and at the next tick after a failed
// fetch), until ctx ends; it returns nil then. An RSK node that is down at start is not an
// error: RSK work is extra revenue, the parent chain is mined without it, and the maker keeps
// trying with one log line per outage.
func (m *Maker) Run(ctx context.Context) error {
	defer m.client.Close()
	m.log.Info("rskmaker started", "node", m.client.URL(), "interval", m.opts.RPCInterval, "topic", m.opts.Topic)
	return m.loop.Run(ctx, m.make)
}

func (m *Maker) make(ctx context.Context, reason string) {
	w, err := m.client.RSKGetWork(ctx)
	if err != nil { // jobs carry no RSK work once the last is 120 s old
		m.loop.FetchFailed(ctx, "mnr_getWork", reason, err)
		return
	}
	m.loop.FetchOK("mnr_getWork", "hash", w.BlockHashForMergedMining)
	m.publish(ctx, &w, reason)
}

func (m *Maker) publish(ctx context.Context, w *node.RSKWork, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	msg := btcpool.RskRawGw{CreatedAt: uint32(now.Unix()), ChainType: ChainType, RPCAddress: m.opts.RPCAddress,
		RPCUserPwd: m.opts.RPCUserPwd, Target: w.Target, ParentBlockHash: w.ParentBlockHash,
		BlockHashForMergedMining: w.BlockHashForMergedMining, FeesPaidToMiner: w.FeesPaidToMiner, Notify: w.Notify}
	value := btcpool.AppendRskRawGw(make([]byte, 0, 512), &msg)
	if !m.loop.Publish(ctx, m.prod, m.opts.Topic, nil, value, now) {
		return
	}
	if w.BlockHashForMergedMining != m.hash {
		m.log.Info("new RSK work", "hash", w.BlockHashForMergedMining, "parent", w.ParentBlockHash, "notify", w.Notify, "reason", reason)
	}
	m.hash = w.BlockHashForMergedMining
}

package auxmaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/jobs/fetchloop"
	"github.com/hashpool/hashpool/node"
)

// Maker fetches merged-mining work from one aux chain node and publishes it as AuxRawGw.
type Maker struct {
	opts   Options
	log    *slog.Logger
	client *node.Client
	prod   bus.Producer
	key    []byte

	create atomic.Bool // createauxblock (else getauxblock), decided in Run

	mu     sync.Mutex // serialises publishing and guards the fields below
	height int64
	hash   string

	loop *fetchloop.Loop
}

// Stats are counters since New.
type Stats struct {
	Published     uint64 // AuxRawGw messages acknowledged by the bus
	FetchErrors   uint64 // createauxblock / getauxblock calls that failed or were invalid
	PublishErrors uint64 // messages the bus did not acknowledge in time
	Height        int64  // height of the last published aux block
	Hash          string // hash of the last published aux block
	UsesCreate    bool   // createauxblock (true) or getauxblock
}

// New checks opts (after filling defaults) and returns a Maker publishing with prod. It does
// not contact the node; Run does.
func New(opts Options, prod bus.Producer) (*Maker, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if prod == nil {
		return nil, errors.New("auxmaker: producer is nil")
	}
	c, err := fetchloop.NodeClient(opts.Node, opts.Logger)
	if err != nil {
		return nil, err
	}
	_ = opts.Node.Validate() // fills the node defaults (Timeout) into opts
	return &Maker{
		opts:   opts,
		log:    opts.Logger.With("chain", opts.ChainName),
		client: c,
		prod:   prod,
		key:    []byte(opts.ChainName),
		loop:   fetchloop.New(opts.Timing, opts.Logger.With("chain", opts.ChainName)),
	}, nil
}

// Stats returns the counters.
func (m *Maker) Stats() Stats {
	m.mu.Lock()
	h, hash := m.height, m.hash
	m.mu.Unlock()
	pub, fetchErr, pubErr := m.loop.Counts()
	return Stats{Published: pub, FetchErrors: fetchErr, PublishErrors: pubErr, Height: h, Hash: hash, UsesCreate: m.create.Load()}
}

// Run asks the node which merged-mining RPCs it has (help), publishes a first work, then one
// on every ZMQ hashblock and whenever the last is RPCInterval old, until ctx ends. It returns
// nil when ctx ends, or an error when the node cannot be used: unreachable at startup, no
// merged-mining RPCs, or createauxblock only and no coinbase address configured.
func (m *Maker) Run(ctx context.Context) error {
	defer m.client.Close()
	cctx, cancel := context.WithTimeout(ctx, m.opts.Node.Timeout)
	methods, err := m.client.GetAuxMethods(cctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("auxmaker %s: node check (help) at %s failed: %w", m.opts.ChainName, m.client.URL(), err)
	}
	switch {
	case methods.UseCreate() && m.opts.CoinbaseAddress != "":
		m.create.Store(true)
	case methods.GetAuxBlock:
		if m.opts.CoinbaseAddress != "" {
			m.log.Warn("node has no createauxblock/submitauxblock; using getauxblock, which pays the node's wallet, not the coinbase address")
		}
	default:
		return fmt.Errorf("auxmaker %s: node %s offers createauxblock but not getauxblock (no wallet): configure a coinbase address", m.opts.ChainName, m.client.URL())
	}
	m.log.Info("auxmaker started", "node", m.client.URL(), "createauxblock", m.create.Load(),
		"rpcinterval", m.opts.RPCInterval, "zmq", m.opts.ZMQAddr, "topic", m.opts.Topic)

	return m.loop.Run(ctx, m.make)
}

// Trigger asks Run to fetch work at once, as a ZMQ hashblock does. It never blocks.
func (m *Maker) Trigger() { m.loop.Trigger() }

func (m *Maker) fetch(ctx context.Context) (node.AuxBlock, error) {
	if m.create.Load() {
		return m.client.CreateAuxBlock(ctx, m.opts.CoinbaseAddress)
	}
	return m.client.GetAuxBlock(ctx)
}

// make fetches work and publishes it.
func (m *Maker) make(ctx context.Context, reason string) {
	blk, err := m.fetch(ctx)
	if err != nil {
		m.loop.FetchFailed(ctx, "fetching aux work", reason, err)
		return
	}
	m.loop.FetchOK("fetching aux work", "height", blk.Height)
	m.publish(ctx, &blk, reason)
}

func (m *Maker) publish(ctx context.Context, blk *node.AuxBlock, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	msg := btcpool.AuxRawGw{
		CreatedAt:   uint32(now.Unix()),
		Hash:        blk.Hash,
		Height:      int32(blk.Height),
		MerkleSize:  1,
		MerkleNonce: 0,
		ChainID:     blk.ChainID,
		Bits:        blk.Bits,
		RPCAddr:     m.opts.RPCAddr,
		RPCUserPass: m.opts.RPCUserPass,
	}
	value := btcpool.AppendAuxRawGw(make([]byte, 0, 320), &msg)
	if !m.loop.Publish(ctx, m.prod, m.opts.Topic, m.key, value, now) {
		return
	}
	if blk.Height > m.height {
		m.log.Info("new aux height", "height", blk.Height, "hash", blk.Hash, "reason", reason)
	}
	m.log.Debug("AuxRawGw published", "height", blk.Height, "hash", blk.Hash, "reason", reason)
	m.height, m.hash = blk.Height, blk.Hash
}

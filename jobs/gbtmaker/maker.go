package gbtmaker

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

// Long-poll retry bounds after an error.
const (
	minRetry = time.Second
	maxRetry = 30 * time.Second
)

// Maker fetches block templates from one node and publishes them as RawGbt messages.
type Maker struct {
	opts   Options
	log    *slog.Logger
	client *node.Client
	prod   bus.Producer

	// mu serialises publishing (btcpool's lock shared by the ZMQ and timer paths) and guards
	// the fields below it.
	mu         sync.Mutex
	height     int64  // height of the last published template
	longPollID string // from the last published template

	loop      *fetchloop.Loop
	lpChanged chan struct{} // longPollID changed (capacity 1)
}

// Stats are counters since New.
type Stats struct {
	Published     uint64 // RawGbt messages acknowledged by the bus
	FetchErrors   uint64 // getblocktemplate calls that failed or returned a bad template
	PublishErrors uint64 // RawGbt messages the bus did not acknowledge in time
	Height        int64  // height of the last published template
}

// New checks opts (after filling defaults) and returns a Maker publishing with prod. It does
// not contact the node; Run does.
func New(opts Options, prod bus.Producer) (*Maker, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if prod == nil {
		return nil, errors.New("gbtmaker: producer is nil")
	}
	_ = opts.Node.Validate() // already checked; this fills the node defaults (Timeout) into opts
	c, err := fetchloop.NodeClient(opts.Node, opts.Logger)
	if err != nil {
		return nil, err
	}
	return &Maker{
		opts:      opts,
		log:       opts.Logger,
		client:    c,
		prod:      prod,
		loop:      fetchloop.New(opts.Timing, opts.Logger),
		lpChanged: make(chan struct{}, 1),
	}, nil
}

// Stats returns the counters.
func (m *Maker) Stats() Stats {
	m.mu.Lock()
	h := m.height
	m.mu.Unlock()
	pub, fetchErr, pubErr := m.loop.Counts()
	return Stats{Published: pub, FetchErrors: fetchErr, PublishErrors: pubErr, Height: h}
}

// Run checks the node (getnetworkinfo: result.connections must be an integer, as btcpool
// requires), publishes a first template, then publishes one on every signal until ctx ends:
// every hashblock from ZMQ, every long-poll answer, and whenever the last one is RPCInterval
// old (checked every Tick). It returns nil when ctx ends, or an error if the node check fails.
func (m *Maker) Run(ctx context.Context) error {
	defer m.client.Close()
	checkCtx, cancel := context.WithTimeout(ctx, m.opts.Node.Timeout)
	ni, err := m.client.GetNetworkInfo(checkCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("gbtmaker: node check (getnetworkinfo) at %s failed: %w", m.client.URL(), err)
	}
	m.log.Info("gbtmaker started", "node", m.client.URL(), "connections", ni.Connections,
		"version", ni.Version, "rpcinterval", m.opts.RPCInterval, "zmq", m.opts.ZMQAddr, "longpoll", !m.opts.DisableLongPoll)

	var wg sync.WaitGroup
	if !m.opts.DisableLongPoll {
		wg.Go(func() { m.longPoll(ctx) })
	}
	defer wg.Wait()
	return m.loop.Run(ctx, m.make)
}

// Trigger asks Run to make a template at once, as a ZMQ hashblock does. It never blocks;
// triggers that arrive while one is pending are merged.
func (m *Maker) Trigger() { m.loop.Trigger() }

// make fetches a template and publishes it.
func (m *Maker) make(ctx context.Context, reason string) {
	t, err := m.client.GetBlockTemplate(ctx, "")
	if err != nil {
		m.loop.FetchFailed(ctx, "getblocktemplate", reason, err)
		return
	}
	m.loop.FetchOK("getblocktemplate", "height", t.Height)
	m.publish(ctx, t, reason)
}

// publish sends t as a RawGbt and waits for the bus's acknowledgement.
func (m *Maker) publish(ctx context.Context, t *node.Template, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	msg := btcpool.NewRawGbt(t.Raw, uint32(now.Unix()))
	value := btcpool.AppendRawGbt(make([]byte, 0, len(msg.BlockTemplateBase64)+128), &msg)
	if !m.loop.Publish(ctx, m.prod, m.opts.RawGbtTopic, nil, value, now) {
		return
	}
	if t.Height > m.height {
		m.log.Info("new height", "height", t.Height, "prevhash", t.PreviousBlockHash,
			"txs", len(t.Transactions), "reason", reason, "gbthash", msg.GbtHash)
	}
	m.log.Debug("RawGbt published", "height", t.Height, "txs", len(t.Transactions), "reason", reason,
		"gbthash", msg.GbtHash, "bytes", len(t.Raw))
	m.height = t.Height
	if t.LongPollID != m.longPollID {
		m.longPollID = t.LongPollID
		select {
		case m.lpChanged <- struct{}{}:
		default:
		}
	}
}

// longPoll keeps one getblocktemplate long poll open with the latest longpollid and
// publishes every template it returns.
func (m *Maker) longPoll(ctx context.Context) {
	retry := minRetry
	failing := false
	for ctx.Err() == nil {
		m.mu.Lock()
		id := m.longPollID
		m.mu.Unlock()
		if id == "" { // no template yet, or the node does not offer long polling
			select {
			case <-ctx.Done():
				return
			case <-m.lpChanged:
			}
			continue
		}
		t, err := m.client.GetBlockTemplate(ctx, id)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && errors.Is(err, context.DeadlineExceeded):
			// Our own LongPollTimeout: nothing changed for that long. Ask again.
			continue
		case err != nil:
			m.loop.CountFetchError()
			if !failing {
				m.log.Warn("long poll failed; retrying with backoff", "err", err)
				failing = true
			}
			if !node.Sleep(ctx, retry) {
				return
			}
			retry = min(2*retry, maxRetry)
			continue
		}
		if failing {
			m.log.Info("long poll works again", "height", t.Height)
			failing = false
		}
		retry = minRetry
		m.publish(ctx, t, "longpoll")
		if t.LongPollID == id {
			// The node answered without a new id: wait a tick rather than spin.
			if !node.Sleep(ctx, m.opts.Tick) {
				return
			}
		}
	}
}

package gbtmaker

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashpool/hashpool/node"
)

// Defaults, from btcpool's gbtmaker.cfg sample and GbtMaker.cc.
const (
	DefaultRPCInterval    = 10 * time.Second   // gbtmaker.rpcinterval
	DefaultTick           = time.Second        // the main loop's period
	DefaultZMQTimeout     = 1200 * time.Second // bitcoind.zmq_timeout
	DefaultPublishTimeout = 10 * time.Second
	DefaultRawGbtTopic    = "BtcRawGbt" // gbtmaker.rawgbt_topic
)

// Options configures a [Maker]. Call WithDefaults, then Validate.
type Options struct {
	// Node is how to reach the node (bitcoind.rpc_addr, bitcoind.rpc_userpwd).
	Node node.Options
	// RPCInterval is the longest time between two published templates
	// (gbtmaker.rpcinterval, 10 s): a template is fetched and published when the last one
	// is this old, whatever the other signals did.
	RPCInterval time.Duration
	// Tick is the period of the main loop that checks RPCInterval (btcpool: 1 s).
	Tick time.Duration
	// ZMQAddr is the node's ZMQ hashblock endpoint (bitcoind.zmq_addr, e.g.
	// "tcp://127.0.0.1:28332"); every hashblock message makes a template at once.
	// Empty disables ZMQ (btcd has none).
	ZMQAddr string
	// ZMQTimeout is how long ZMQ may stay silent before the subscriber reconnects
	// (bitcoind.zmq_timeout, 1200 s).
	ZMQTimeout time.Duration
	// DisableLongPoll turns off getblocktemplate long polling. Long polling is on by default:
	// the node answers as soon as its template changes, which is the fastest signal btcd has.
	DisableLongPoll bool
	// RawGbtTopic is the topic RawGbt messages are published to (BtcRawGbt).
	RawGbtTopic string
	// PublishTimeout bounds waiting for the bus to acknowledge one RawGbt.
	PublishTimeout time.Duration
	// Logger receives the gbtmaker's logs; nil means silent. At Info it logs one line per
	// new height, startup and problems.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of o with every zero field that has a default set to it.
func (o Options) WithDefaults() Options {
	if o.RPCInterval == 0 {
		o.RPCInterval = DefaultRPCInterval
	}
	if o.Tick == 0 {
		o.Tick = DefaultTick
	}
	if o.ZMQTimeout == 0 {
		o.ZMQTimeout = DefaultZMQTimeout
	}
	if o.RawGbtTopic == "" {
		o.RawGbtTopic = DefaultRawGbtTopic
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports every problem with o at once. Call it on the result of WithDefaults.
func (o Options) Validate() error {
	var errs []error
	nodeOpts := o.Node
	if err := nodeOpts.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.RPCInterval < time.Second {
		errs = append(errs, fmt.Errorf("gbtmaker: rpcinterval %v is below 1s", o.RPCInterval))
	}
	if o.Tick <= 0 || o.Tick > o.RPCInterval {
		errs = append(errs, fmt.Errorf("gbtmaker: tick %v must be positive and at most rpcinterval", o.Tick))
	}
	if o.ZMQAddr != "" && !strings.HasPrefix(o.ZMQAddr, "tcp://") && !strings.HasPrefix(o.ZMQAddr, "ipc://") {
		errs = append(errs, fmt.Errorf("gbtmaker: zmq_addr %q: want tcp://host:port or ipc://path", o.ZMQAddr))
	}
	if o.ZMQTimeout < time.Second {
		errs = append(errs, fmt.Errorf("gbtmaker: zmq_timeout %v is below 1s", o.ZMQTimeout))
	}
	if o.RawGbtTopic == "" {
		errs = append(errs, errors.New("gbtmaker: rawgbt_topic is empty"))
	}
	if o.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("gbtmaker: publish timeout %v is not positive", o.PublishTimeout))
	}
	if o.ZMQAddr == "" && o.DisableLongPoll && o.RPCInterval > time.Minute {
		errs = append(errs, fmt.Errorf("gbtmaker: with neither ZMQ nor long polling, rpcinterval %v would leave miners on a stale block; use at most 1m", o.RPCInterval))
	}
	return errors.Join(errs...)
}

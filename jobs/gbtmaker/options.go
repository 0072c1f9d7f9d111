package gbtmaker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashpool/hashpool/jobs/fetchloop"
	"github.com/hashpool/hashpool/node"
)

// Defaults, from btcpool's gbtmaker.cfg sample and GbtMaker.cc.
const (
	DefaultRPCInterval    = 10 * time.Second // gbtmaker.rpcinterval
	DefaultTick           = fetchloop.DefaultTick
	DefaultZMQTimeout     = fetchloop.DefaultZMQTimeout
	DefaultPublishTimeout = fetchloop.DefaultPublishTimeout
	DefaultRawGbtTopic    = "BtcRawGbt" // gbtmaker.rawgbt_topic
)

// Options configures a [Maker]. Call WithDefaults, then Validate.
type Options struct {
	// Node is how to reach the node (bitcoind.rpc_addr, bitcoind.rpc_userpwd).
	Node node.Options
	// Timing is when templates are fetched: RPCInterval (gbtmaker.rpcinterval, 10 s) is the
	// longest time between two published templates, ZMQAddr (bitcoind.zmq_addr; empty for
	// btcd, which has no ZMQ) makes one at every hashblock.
	fetchloop.Timing
	// DisableLongPoll turns off getblocktemplate long polling. Long polling is on by default:
	// the node answers as soon as its template changes, which is the fastest signal btcd has.
	DisableLongPoll bool
	// RawGbtTopic is the topic RawGbt messages are published to (BtcRawGbt).
	RawGbtTopic string
	// Logger receives the gbtmaker's logs; nil means silent. At Info it logs one line per
	// new height, startup and problems.
	Logger *slog.Logger
}

// WithDefaults returns a copy of o with every zero field that has a default set to it.
func (o Options) WithDefaults() Options {
	o.Timing = o.Timing.WithDefaults(DefaultRPCInterval)
	if o.RawGbtTopic == "" {
		o.RawGbtTopic = DefaultRawGbtTopic
	}
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
		errs = append(errs, err)
	}
	errs = append(errs, o.Timing.Problems("gbtmaker")...)
	if o.RawGbtTopic == "" {
		errs = append(errs, errors.New("gbtmaker: rawgbt_topic is empty"))
	}
	if o.ZMQAddr == "" && o.DisableLongPoll && o.RPCInterval > time.Minute {
		errs = append(errs, fmt.Errorf("gbtmaker: with neither ZMQ nor long polling, rpcinterval %v would leave miners on a stale block; use at most 1m", o.RPCInterval))
	}
	return errors.Join(errs...)
}

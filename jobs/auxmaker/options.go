package auxmaker

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashpool/hashpool/jobs/fetchloop"
	"github.com/hashpool/hashpool/node"
)

// Defaults, following btcpool's gbtmaker / nmcauxmaker pattern.
const (
	DefaultRPCInterval    = 10 * time.Second
	DefaultTick           = fetchloop.DefaultTick
	DefaultZMQTimeout     = fetchloop.DefaultZMQTimeout
	DefaultPublishTimeout = fetchloop.DefaultPublishTimeout
	DefaultTopic          = "AuxRawGw" // btcpool HEAD's auxpow_gw_topic (LEGACY: NMCAuxBlock)
	// MaxChainNameLen is found_nmc_blocks.chain_name's varchar(20).
	MaxChainNameLen = 20
)

// Options configures a [Maker]. Call WithDefaults, then Validate (New does both).
type Options struct {
	// ChainName names the aux chain ("nmc"): the bus key of every message and the
	// chain_name blkmaker records. At most 20 characters of [A-Za-z0-9_-.].
	ChainName string
	// Node is how to reach the aux chain's node (namecoind.rpc_addr, rpc_userpwd).
	Node node.Options
	// CoinbaseAddress is the aux chain address aux blocks pay (createauxblock's argument).
	// Empty means getauxblock, where the node pays a key of its own wallet.
	CoinbaseAddress string
	// Timing is when work is fetched: RPCInterval (rpcinterval, 10 s) is the longest time
	// between two published works, ZMQAddr (the aux node's -zmqpubhashblock; empty disables
	// ZMQ) makes work at every hashblock.
	fetchloop.Timing
	// Topic is where AuxRawGw messages go (AuxRawGw).
	Topic string
	// RPCAddr and RPCUserPass are what each message tells blkmaker about where to submit
	// solved aux blocks (rpc_addr, rpc_userpass). Defaults: Node.URL and "User:Password".
	RPCAddr, RPCUserPass string
	// Logger receives the maker's logs; nil means silent.
	Logger *slog.Logger
}

// WithDefaults returns a copy of o with every zero field that has a default set to it.
func (o Options) WithDefaults() Options {
	o.Timing = o.Timing.WithDefaults(DefaultRPCInterval)
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	fetchloop.Advertise(o.Node, &o.RPCAddr, &o.RPCUserPass)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every problem with o at once. Call it on the result of WithDefaults.
func (o Options) Validate() error {
	var errs []error
	if o.ChainName == "" {
		errs = append(errs, errors.New("auxmaker: chain name is empty"))
	} else if len(o.ChainName) > MaxChainNameLen || strings.IndexFunc(o.ChainName, badNameRune) >= 0 {
		errs = append(errs, fmt.Errorf("auxmaker: chain name %q: want 1 to %d letters, digits or _ - . characters", o.ChainName, MaxChainNameLen))
	}
	nodeOpts := o.Node
	if err := nodeOpts.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("auxmaker %s: %w", o.ChainName, err))
	}
	if strings.ContainsAny(o.CoinbaseAddress, " \t\r\n\"") {
		errs = append(errs, fmt.Errorf("auxmaker: coinbase address %q has spaces or quotes", o.CoinbaseAddress))
	}
	errs = append(errs, o.Timing.Problems("auxmaker")...)
	if o.Topic == "" {
		errs = append(errs, errors.New("auxmaker: topic is empty"))
	}
	if o.ZMQAddr == "" && o.RPCInterval > time.Minute {
		errs = append(errs, fmt.Errorf("auxmaker: without ZMQ, rpcinterval %v would leave miners on stale aux work (jobmaker drops work older than 60 s); use at most 1m", o.RPCInterval))
	}
	return errors.Join(errs...)
}

func badNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
}

package auxmaker

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashpool/hashpool/node"
)

// Defaults, following btcpool's gbtmaker / nmcauxmaker pattern.
const (
	DefaultRPCInterval    = 10 * time.Second
	DefaultTick           = time.Second
	DefaultZMQTimeout     = 1200 * time.Second
	DefaultPublishTimeout = 10 * time.Second
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
	// RPCInterval is the longest time between two published works (rpcinterval).
	RPCInterval time.Duration
	// Tick is the period of the loop that checks RPCInterval (1 s).
	Tick time.Duration
	// ZMQAddr is the aux node's ZMQ hashblock endpoint (-zmqpubhashblock); every message
	// makes new work at once. Empty disables ZMQ.
	ZMQAddr string
	// ZMQTimeout is how long ZMQ may stay silent before the subscriber reconnects.
	ZMQTimeout time.Duration
	// Topic is where AuxRawGw messages go (AuxRawGw).
	Topic string
	// RPCAddr and RPCUserPass are what each message tells blkmaker about where to submit
	// solved aux blocks (rpc_addr, rpc_userpass). Defaults: Node.URL and "User:Password".
	RPCAddr, RPCUserPass string
	// PublishTimeout bounds waiting for the bus to acknowledge one message.
	PublishTimeout time.Duration
	// Logger receives the maker's logs; nil means silent.
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
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.RPCAddr == "" {
		o.RPCAddr = o.Node.URL
		if o.RPCAddr != "" && !strings.Contains(o.RPCAddr, "://") {
			o.RPCAddr = "http://" + o.RPCAddr
		}
	}
	if o.RPCUserPass == "" && o.Node.User != "" {
		o.RPCUserPass = o.Node.User + ":" + o.Node.Password
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
	if o.RPCInterval < time.Second {
		errs = append(errs, fmt.Errorf("auxmaker: rpcinterval %v is below 1s", o.RPCInterval))
	}
	if o.Tick <= 0 || o.Tick > o.RPCInterval {
		errs = append(errs, fmt.Errorf("auxmaker: tick %v must be positive and at most rpcinterval", o.Tick))
	}
	if o.ZMQAddr != "" && !strings.HasPrefix(o.ZMQAddr, "tcp://") && !strings.HasPrefix(o.ZMQAddr, "ipc://") {
		errs = append(errs, fmt.Errorf("auxmaker: zmq_addr %q: want tcp://host:port or ipc://path", o.ZMQAddr))
	}
	if o.ZMQTimeout < time.Second {
		errs = append(errs, fmt.Errorf("auxmaker: zmq_timeout %v is below 1s", o.ZMQTimeout))
	}
	if o.Topic == "" {
		errs = append(errs, errors.New("auxmaker: topic is empty"))
	}
	if o.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("auxmaker: publish timeout %v is not positive", o.PublishTimeout))
	}
	if o.ZMQAddr == "" && o.RPCInterval > time.Minute {
		errs = append(errs, fmt.Errorf("auxmaker: without ZMQ, rpcinterval %v would leave miners on stale aux work (jobmaker drops work older than 60 s); use at most 1m", o.RPCInterval))
	}
	return errors.Join(errs...)
}

func badNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
}

package sv2proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// Mode says how downstream miners map onto upstream extended channels.
type Mode uint8

const (
	// ChannelPerMiner opens one extended channel per authorized miner, with
	// the miner's worker name in user_identity: the pool sees and accounts
	// every worker, as it does for BtcAgent's REGISTER_WORKER (the default).
	ChannelPerMiner Mode = iota
	// SharedChannel opens one extended channel for all miners; each miner
	// rolls its own part of the channel's extranonce (its session id) and
	// is accounted here only (Translator.Miners). The pool sees one worker.
	SharedChannel
)

// String returns "per-miner" or "shared".
func (m Mode) String() string {
	if m == SharedChannel {
		return "shared"
	}
	return "per-miner"
}

// Upstream is one SV2 pool: its address, its authority key (the pool
// operator publishes it; the server's certificate must be signed by it) and
// the pool sub-account the miners mine for.
type Upstream struct {
	Addr      string   // host:port
	Authority [32]byte // x-only authority public key (noise.ParseAuthorityKey)
	User      string   // sub-account; user_identity is User.worker
}

// ParseUpstream reads the agent's pool entry form: an "sv2://host:port"
// address, a base58check authority key as SRI prints it, and the
// sub-account.
func ParseUpstream(url, authority, user string) (Upstream, error) {
	addr, ok := strings.CutPrefix(url, "sv2://")
	if !ok {
		return Upstream{}, fmt.Errorf("sv2proxy: upstream %q: want sv2://host:port", url)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return Upstream{}, fmt.Errorf("sv2proxy: upstream %q: %v", url, err)
	}
	key, err := noise.ParseAuthorityKey(authority)
	if err != nil {
		return Upstream{}, fmt.Errorf("sv2proxy: upstream %q: authority key: %w", url, err)
	}
	return Upstream{Addr: addr, Authority: key, User: user}, nil
}

// Options configures a Translator. Zero values mean the defaults listed.
type Options struct {
	// Upstreams are tried in order; a lost one is replaced by the next
	// (required, at most 64).
	Upstreams []Upstream
	// Mode is ChannelPerMiner (default) or SharedChannel.
	Mode Mode
	// ExtraNonce2Size is the extranonce2 size told to miners (default 4,
	// 1..8). A miner's part of a channel's extranonce is its 4-byte session
	// id (extranonce1) and this many bytes; channels are asked for at least
	// 4+ExtraNonce2Size bytes.
	ExtraNonce2Size int
	// VersionMask is the most a miner may roll (default 0x1fffe000, BIP320's
	// bits; it is also capped to them).
	VersionMask uint32
	// MaxMiners bounds connected miners (default 10000); more are refused.
	MaxMiners int
	// MaxLine bounds a miner's line (default 4096 bytes); a longer one
	// closes the miner.
	MaxLine int
	// MinerQueue is each miner's output queue in lines (default 64); a miner
	// whose queue is full is not reading and is closed.
	MinerQueue int
	// MaxPending bounds a channel's shares awaiting the pool's answer
	// (default 1024); beyond it a share is answered 20 at once.
	MaxPending int
	// UpstreamQueue bounds frames queued to the pool (default 4096); a full
	// queue means the pool is not reading, and the connection is replaced.
	UpstreamQueue int
	// MaxJobs bounds the jobs kept per channel (default 16).
	MaxJobs int
	// AuthorizeTimeout: a miner must subscribe and authorize in this time
	// (default 15s). MinerReadTimeout closes a silent miner (default 600s).
	AuthorizeTimeout, MinerReadTimeout time.Duration
	// DialTimeout bounds a dial (default 10s), HandshakeTimeout the Noise
	// handshake and SetupConnection (default 10s), WriteTimeout one write
	// to the pool or a miner (default 10s).
	DialTimeout, HandshakeTimeout, WriteTimeout time.Duration
	// UpstreamReadTimeout: a pool silent this long is replaced (default
	// 600s; SV2 has no keepalive, so this must exceed the pool's longest gap
	// between jobs).
	UpstreamReadTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between failed rounds
	// of dials (defaults 500ms and 30s).
	ReconnectMin, ReconnectMax time.Duration
	// Vendor is SetupConnection's vendor string (default "hashpool").
	Vendor string
	// Logger receives connection-level events; nil means silent.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.ExtraNonce2Size, 4)
	def(&o.MaxMiners, 10000)
	def(&o.MaxLine, 4096)
	def(&o.MinerQueue, 64)
	def(&o.MaxPending, 1024)
	def(&o.UpstreamQueue, 4096)
	def(&o.MaxJobs, 16)
	defD(&o.AuthorizeTimeout, 15*time.Second)
	defD(&o.MinerReadTimeout, 600*time.Second)
	defD(&o.DialTimeout, 10*time.Second)
	defD(&o.HandshakeTimeout, 10*time.Second)
	defD(&o.WriteTimeout, 10*time.Second)
	defD(&o.UpstreamReadTimeout, 600*time.Second)
	defD(&o.ReconnectMin, 500*time.Millisecond)
	defD(&o.ReconnectMax, 30*time.Second)
	if o.VersionMask == 0 {
		o.VersionMask = bip320Mask
	}
	o.VersionMask &= bip320Mask
	if o.Vendor == "" {
		o.Vendor = "hashpool"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// bip320Mask is BIP320's general-purpose version bits.
const bip320Mask = 0x1fffe000

// Validate reports every problem with o (after defaults) at once.
func (o Options) Validate() error {
	o.setDefaults()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("sv2proxy: "+format, a...)) }
	if len(o.Upstreams) == 0 {
		add("at least one upstream is required")
	}
	if len(o.Upstreams) > 64 {
		add("%d upstreams, at most 64", len(o.Upstreams))
	}
	for i, u := range o.Upstreams {
		if _, _, err := net.SplitHostPort(u.Addr); err != nil {
			add("upstream %d: address %q: %v", i, u.Addr, err)
		}
		if u.Authority == ([32]byte{}) {
			add("upstream %d (%s): authority key is required (the pool's published key)", i, u.Addr)
		}
		if len(u.User) > 64 || strings.ContainsAny(u.User, "\"\\\x00") {
			add("upstream %d (%s): user %q: at most 64 characters without quotes, backslash or NUL", i, u.Addr, u.User)
		}
	}
	if o.Mode > SharedChannel {
		add("mode %d is neither ChannelPerMiner nor SharedChannel", o.Mode)
	}
	if o.ExtraNonce2Size < 1 || o.ExtraNonce2Size > 8 {
		add("ExtraNonce2Size %d is outside 1..8", o.ExtraNonce2Size)
	}
	for _, v := range []struct {
		name string
		v    int
		min  int
	}{{"MaxMiners", o.MaxMiners, 1}, {"MaxLine", o.MaxLine, 256}, {"MinerQueue", o.MinerQueue, 4},
		{"MaxPending", o.MaxPending, 1}, {"UpstreamQueue", o.UpstreamQueue, 16}, {"MaxJobs", o.MaxJobs, 2}} {
		if v.v < v.min {
			add("%s %d must be at least %d", v.name, v.v, v.min)
		}
	}
	if o.MaxLine > 1<<20 {
		add("MaxLine %d is over 1 MiB", o.MaxLine)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"AuthorizeTimeout", o.AuthorizeTimeout}, {"MinerReadTimeout", o.MinerReadTimeout}, {"DialTimeout", o.DialTimeout},
		{"HandshakeTimeout", o.HandshakeTimeout}, {"WriteTimeout", o.WriteTimeout}, {"UpstreamReadTimeout", o.UpstreamReadTimeout},
		{"ReconnectMin", o.ReconnectMin}, {"ReconnectMax", o.ReconnectMax}} {
		if d.v < 0 {
			add("%s %v is negative", d.name, d.v)
		}
	}
	if o.ReconnectMax < o.ReconnectMin {
		add("ReconnectMax %v is below ReconnectMin %v", o.ReconnectMax, o.ReconnectMin)
	}
	if len(o.Vendor) > 255 {
		add("Vendor is over 255 bytes")
	}
	return errors.Join(errs...)
}

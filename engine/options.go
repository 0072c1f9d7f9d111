package engine

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// Options configure a Server. Field comments name the sserver.cfg key they
// mirror; NewOptions returns btcpool's defaults.
type Options struct {
	ServerID uint8  // sserver.id (1..255): top byte of every extranonce1
	Listen   string // ip:port, e.g. "0.0.0.0:3333"; port 0 only without ReusePort
	// ReusePort sets SO_REUSEPORT so several processes (with different
	// ServerIDs) share one port.
	ReusePort bool
	// EventLoops is the number of gnet event loops (default GOMAXPROCS).
	EventLoops int

	TCPReadTimeout     time.Duration // tcp_read_timeout (600 s) after authorize
	AuthorizeTimeout   time.Duration // 15 s before authorize
	LongTimeout        time.Duration // agents and long-timeout clients (7 days)
	LongTimeoutAgent   string        // long_timeout_agent (regexp, case-insensitive)
	ShareAvgSeconds    int64         // share_avg_seconds (10)
	DiffAdjustPeriod   int64         // diff_adjust_period (300)
	MaxJobLifetime     int64         // max_job_lifetime (300)
	MiningNotifyPeriod int64         // mining_notify_interval (30)
	DefaultDifficulty  float64       // default_difficulty (16384)
	MinDifficulty      float64       // min_difficulty (64); may be fractional on test networks
	MaxDifficulty      float64       // max_difficulty (2^62)
	VersionMask        uint32        // version_mask (0: no version rolling)
	ExtraNonce2Size    int           // extra_nonce2_size (4..8, default 8)
	ProxyProtocol      bool          // proxy_protocol: accept a PROXY v1 line first
	Simulator          bool          // enable_simulator: skip only the low-difficulty rejection
	DevFixedDifficulty float64       // dev_fixed_difficulty when > 0 (enable_dev_mode)
	GracePeriod        time.Duration // shutdown_grace_period: spread closing sessions over it
	// SolvedWait bounds how long a shutdown started by Serve's context
	// waits, after the drain, for the bus to acknowledge the solved shares
	// (default 10 s; those left stay in the journal for the next start).
	SolvedWait time.Duration

	// AgentFractionalDifficulty sends agent sessions difficulties below 1
	// as they are (hashpool's own agent reads them), for test harnesses
	// that grind shares on a CPU. Off by default: the agent protocol carries
	// integer powers of two and BtcAgent reads set_difficulty as an
	// unsigned integer, so agents are told at least 1.
	AgentFractionalDifficulty bool

	// ProxyListen, when set, is a second address (ip:port) on the same event
	// loops where every connection must begin with a PROXY v1 line
	// ("PROXY TCP4|TCP6 <src> <dst> <sport> <dport>"); the source address
	// becomes the session's IP. A connection without one is closed. It is
	// meant for a TLS terminator on loopback; Listen is unaffected.
	ProxyListen string

	// NewUsersPerConn bounds how many user names unknown to a registering
	// user list (the embedded one) one connection may add (default 10);
	// NewUsersPerIP bounds how many one IP address may add per hour
	// (default 100). Over either bound mining.authorize is answered with
	// error 29 "Invalid username" and counted in Metrics.UsersRefused.
	// Known names are never limited. 0 takes the default; -1 means no bound.
	NewUsersPerConn int
	NewUsersPerIP   int

	// NiceHashForced treats every session as a NiceHash client
	// (nicehash.forced); otherwise those whose agent starts with
	// "nicehash/" (any case) are. NiceHash clients get unique job ids
	// (spec §4.6) and, unless they set their own minimum,
	// NiceHashMinDifficulty (nicehash.min_difficulty; 0: none) as their
	// minimum difficulty (§4.12).
	NiceHashForced        bool
	NiceHashMinDifficulty float64

	// MaxLine bounds one JSON line (bytes); longer input closes the session.
	MaxLine int
	// MaxOutbound bounds bytes queued to one slow reader before it is closed
	// (gnet issue #337).
	MaxOutbound int

	Names NameRules

	// Topics are the bus topics (btcpool's default names).
	// SV2Listen is the Stratum V2 listener's ip:port ("" = no SV2): Noise
	// NX with SV2Responder's certificate, on the same event loops, jobs and
	// share path as the stratum listener (see doc.go, "Stratum V2").
	SV2Listen string
	// SV2Responder holds the pool's static key and its certificate signed by
	// the authority key miners pin; required with SV2Listen.
	SV2Responder *noise.Responder
	// SV2HandshakeTimeout bounds the Noise handshake and SetupConnection
	// (10 s); the first channel must then open within AuthorizeTimeout.
	SV2HandshakeTimeout time.Duration
	// SV2MaxChannels bounds the channels of one SV2 connection (64).
	SV2MaxChannels int
	// SV2MaxPayload is the largest frame payload a client may send (4 KiB:
	// SetupConnection, the largest client message, is at most about 1.3 KiB);
	// a larger frame closes the connection.
	SV2MaxPayload int

	Topics bus.Topics
	// DataDir holds the solved-share journal (and the embedded user list when
	// the caller opens one there). Required.
	DataDir string
}

// NewOptions returns Options with btcpool's sserver defaults.
func NewOptions() Options {
	return Options{
		ServerID:           1,
		Listen:             "0.0.0.0:3333",
		ReusePort:          true,
		EventLoops:         runtime.GOMAXPROCS(0),
		TCPReadTimeout:     600 * time.Second,
		AuthorizeTimeout:   15 * time.Second,
		LongTimeout:        7 * 24 * time.Hour,
		ShareAvgSeconds:    10,
		DiffAdjustPeriod:   300,
		MaxJobLifetime:     300,
		MiningNotifyPeriod: 30,
		DefaultDifficulty:  16384,
		MinDifficulty:      64,
		MaxDifficulty:      math.Ldexp(1, 62),
		ExtraNonce2Size:    8,
		GracePeriod:        10 * time.Second,
		SolvedWait:         10 * time.Second,
		NewUsersPerConn:    10,
		NewUsersPerIP:      100,
		MaxLine:            16 << 10,
		MaxOutbound:        1 << 20,
		Topics:             bus.DefaultTopics(),

		SV2HandshakeTimeout: 10 * time.Second,
		SV2MaxChannels:      64,
		SV2MaxPayload:       4 << 10,
	}
}

// Validate reports every problem with o at once.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.ServerID == 0 {
		bad("server id must be 1..255 (it is the top byte of extranonce1)")
	}
	if o.Listen == "" {
		bad("listen address is empty")
	}
	if o.EventLoops < 1 || o.EventLoops > 256 {
		bad("event loops %d: want 1..256", o.EventLoops)
	}
	for name, d := range map[string]time.Duration{"tcp_read_timeout": o.TCPReadTimeout,
		"authorize timeout": o.AuthorizeTimeout, "long timeout": o.LongTimeout} {
		if d < time.Second {
			bad("%s %v: want at least 1s", name, d)
		}
	}
	if o.LongTimeoutAgent != "" {
		if _, err := regexp.Compile("(?i)" + o.LongTimeoutAgent); err != nil {
			bad("long_timeout_agent: %v", err)
		}
	}
	if o.ShareAvgSeconds < 1 || o.ShareAvgSeconds > 3600 {
		bad("share_avg_seconds %d: want 1..3600", o.ShareAvgSeconds)
	}
	if o.DiffAdjustPeriod < o.ShareAvgSeconds || o.DiffAdjustPeriod/max(o.ShareAvgSeconds, 1) > maxVarDiffSlots {
		bad("diff_adjust_period %d: want share_avg_seconds..%d×share_avg_seconds", o.DiffAdjustPeriod, maxVarDiffSlots)
	}
	if o.MaxJobLifetime < 1 {
		bad("max_job_lifetime %d: want ≥ 1", o.MaxJobLifetime)
	}
	if o.MiningNotifyPeriod < 1 {
		bad("mining_notify_interval %d: want ≥ 1", o.MiningNotifyPeriod)
	}
	if !(o.MinDifficulty > 0) || !(o.MaxDifficulty >= o.MinDifficulty) || o.MaxDifficulty > math.Ldexp(1, 62) {
		bad("difficulty bounds min %g max %g: want 0 < min ≤ max ≤ 2^62", o.MinDifficulty, o.MaxDifficulty)
	}
	if DiffExp(o.MinDifficulty) < MinDiffExp+1 && o.MinDifficulty < ExpDiff(MinDiffExp) {
		bad("min_difficulty %g below 2^%d", o.MinDifficulty, MinDiffExp)
	}
	if o.NiceHashMinDifficulty < 0 || o.NiceHashMinDifficulty > o.MaxDifficulty {
		bad("nicehash min_difficulty %g: want 0 (none) ..max_difficulty", o.NiceHashMinDifficulty)
	}
	if !(o.DefaultDifficulty > 0) {
		bad("default_difficulty %g: want > 0", o.DefaultDifficulty)
	}
	if o.ExtraNonce2Size < 4 || o.ExtraNonce2Size > 8 {
		bad("extra_nonce2_size %d: want 4..8", o.ExtraNonce2Size)
	}
	if o.MaxLine < 256 || o.MaxLine > 1<<20 {
		bad("max line %d: want 256..1MiB", o.MaxLine)
	}
	if o.MaxOutbound < 64<<10 {
		bad("max outbound %d: want at least 64KiB", o.MaxOutbound)
	}
	if o.GracePeriod < 0 || o.GracePeriod > time.Hour {
		bad("shutdown grace period %v: want 0..1h", o.GracePeriod)
	}
	if o.SolvedWait < 0 || o.SolvedWait > time.Hour {
		bad("solved wait %v: want 0..1h", o.SolvedWait)
	}
	if o.ProxyListen != "" && o.ProxyListen == o.Listen {
		bad("proxy listen address %s is the listen address; want another one", o.ProxyListen)
	}
	if o.SV2Listen != "" {
		if o.SV2Responder == nil {
			bad("sv2 listen %s without a Noise responder (static key and certificate)", o.SV2Listen)
		}
		if o.SV2Listen == o.Listen || o.SV2Listen == o.ProxyListen {
			bad("sv2 listen address %s is already the stratum or PROXY listen address; want another one", o.SV2Listen)
		}
		if o.SV2HandshakeTimeout < time.Second || o.SV2HandshakeTimeout > 10*time.Minute {
			bad("sv2 handshake timeout %v: want 1s..10m", o.SV2HandshakeTimeout)
		}
		if o.SV2MaxChannels < 1 || o.SV2MaxChannels > 1<<16 {
			bad("sv2 max channels %d: want 1..65536", o.SV2MaxChannels)
		}
		if o.SV2MaxPayload < 1<<10 || o.SV2MaxPayload > sv2.DefaultMaxPayload {
			bad("sv2 max payload %d: want 1KiB..%d", o.SV2MaxPayload, sv2.DefaultMaxPayload)
		}
	}
	if o.NewUsersPerConn < -1 || o.NewUsersPerIP < -1 {
		bad("new users per connection %d / per IP %d: want -1 (no bound), 0 (default) or more", o.NewUsersPerConn, o.NewUsersPerIP)
	}
	if err := o.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.DataDir == "" {
		bad("data dir is empty (the solved-share journal lives there)")
	}
	return errors.Join(errs...)
}

func (o *Options) varDiffConfig() VarDiffConfig {
	c := VarDiffConfig{
		MinExp: DiffExp(o.MinDifficulty), MaxExp: DiffExp(o.MaxDifficulty), DefaultExp: DiffExp(o.DefaultDifficulty),
		WindowSecs: o.DiffAdjustPeriod, SlotSecs: o.ShareAvgSeconds,
	}
	if c.MaxExp > 62 {
		c.MaxExp = 62
	}
	if o.DevFixedDifficulty > 0 {
		c.Fixed, c.FixedExp = true, DiffExp(o.DevFixedDifficulty)
	}
	return c
}

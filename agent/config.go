package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Pool is one upstream pool: BtcAgent's ["host", port, "user"] entry.
type Pool struct {
	Host string
	Port int
	User string // the pool sub-account every miner's worker is rewritten to
}

// Addr returns host:port.
func (p Pool) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// UnmarshalJSON reads BtcAgent's array form ["host", port, "user"].
func (p *Pool) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("pool entry %s: want [\"host\", port, \"user\"]", b)
	}
	if len(raw) != 3 {
		return fmt.Errorf("pool entry %s: want 3 elements [\"host\", port, \"user\"], got %d", b, len(raw))
	}
	if err := json.Unmarshal(raw[0], &p.Host); err != nil {
		return fmt.Errorf("pool entry %s: host must be a string", b)
	}
	if err := json.Unmarshal(raw[1], &p.Port); err != nil {
		// Some configs quote the port.
		var s string
		if json.Unmarshal(raw[1], &s) != nil {
			return fmt.Errorf("pool entry %s: port must be a number", b)
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("pool entry %s: port must be a number", b)
		}
		p.Port = n
	}
	if err := json.Unmarshal(raw[2], &p.User); err != nil {
		return fmt.Errorf("pool entry %s: user must be a string", b)
	}
	return nil
}

// MarshalJSON writes the array form.
func (p Pool) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{p.Host, p.Port, p.User})
}

// Extension names negotiated with agent.get_capabilities on top of btcpool's
// "verrol" and "subres"; only hashpool's engine offers them.
const (
	// ExtRejOnly: SUBMIT_RESPONSE frames only for rejected shares, plus one
	// cumulative accept per batch of input (see doc.go).
	ExtRejOnly = "rejonly"
	// ExtZstd: upstream frames go out as ZSTD_BATCH frames, one
	// self-contained zstd frame per batch (see doc.go).
	ExtZstd = "zstd"
	// ExtCompact: shares go out as compact, stateful SUBMIT_COMPACT frames
	// (≈9 bytes a share instead of 23; see doc.go).
	ExtCompact = "csub"
)

// Config is BtcAgent's JSON configuration file plus hashpool's own optional
// keys. Field comments name the JSON key; Defaults fills every default.
type Config struct {
	// BtcAgent keys.
	ListenIP   string `json:"agent_listen_ip"`   // "0.0.0.0"
	ListenPort int    `json:"agent_listen_port"` // 3333
	Pools      []Pool `json:"pools"`             // tried in order
	// SubmitResponseFromServer: relay the pool's accept/reject for every
	// share instead of answering true at once (BtcAgent's key, default false).
	SubmitResponseFromServer bool `json:"submit_response_from_server"`
	// DisconnectWhenLostAsicboost: a miner that sent > 100 shares with a
	// version mask and then one without is told client.reconnect (default true).
	DisconnectWhenLostAsicboost bool `json:"disconnect_when_lost_asicboost"`
	// UseIPAsWorkerName names workers after the miner's IPv4 address, using
	// IPWorkerNameFormat ({1}..{4} are the octets).
	UseIPAsWorkerName  bool   `json:"use_ip_as_worker_name"`
	IPWorkerNameFormat string `json:"ip_worker_name_format"` // "{1}x{2}x{3}x{4}"
	// FixedWorkerName, when set, is every miner's worker name.
	FixedWorkerName string `json:"fixed_worker_name"`
	// AlwaysKeepDownconn keeps miners connected however long no pool is
	// reachable; otherwise they are closed after NoPoolGrace.
	AlwaysKeepDownconn bool `json:"always_keep_downconn"`

	// hashpool keys.
	// AgentString is the subscribe agent; it must start with "btccom-agent/"
	// for a btcpool-compatible pool to treat the connection as an agent.
	AgentString string `json:"agent_string"`
	// BatchIntervalMs: upstream frames are written at most once per interval
	// (100 ms: ≤ 10 writes/s and as many pool response segments whatever the
	// share rate; miners do not wait for share answers, and a block-solving
	// share waits at most this long, ~0.02% of a 10-minute block interval).
	BatchIntervalMs int `json:"batch_interval_ms"` // 100
	// Extensions lists the optional protocol extensions to ask for
	// (["rejonly","zstd","csub"]); the pool must also list them in its capabilities.
	Extensions []string `json:"extensions"`
	// MinersPerUpstream bounds miners per upstream connection (≤ 65535, the
	// agent session id space); more miners open more upstream connections.
	MinersPerUpstream int `json:"miners_per_upstream"`
	MaxMiners         int `json:"max_miners"`  // 100000
	EventLoops        int `json:"event_loops"` // 1
	// MinerPollCoalesceMs: after a round of miner traffic, an event loop
	// waits until this long has passed since its previous round before it
	// polls again, so a busy farm's shares are read and answered in
	// batches (one poll per interval instead of one per share) at the cost
	// of up to this much added answer latency. Jobs and difficulties from
	// the pool end the wait at once. 0 polls at once.
	MinerPollCoalesceMs int `json:"miner_poll_coalesce_ms"` // 100
	DialTimeoutSec      int `json:"dial_timeout_seconds"`
	HandshakeTimeout    int `json:"handshake_timeout_seconds"`     // 10
	ReconnectMinMs      int `json:"reconnect_min_ms"`              // 500
	ReconnectMaxMs      int `json:"reconnect_max_ms"`              // 30000
	MinerReadTimeout    int `json:"miner_read_timeout_seconds"`    // 600
	AuthorizeTimeout    int `json:"authorize_timeout_seconds"`     // 15
	NoPoolGraceSec      int `json:"no_pool_grace_seconds"`         // 120
	UpstreamReadSec     int `json:"upstream_read_timeout_seconds"` // 180
	// PrimaryRetrySec: while on a later pool, an earlier one is dialed this
	// often and, once it accepts a connection, the agent moves back to it
	// (0: stay until the current pool fails).
	PrimaryRetrySec int `json:"primary_retry_seconds"` // 60
	// GCPercent is the Go garbage collector's target (GOGC) for cmd/btcagent
	// when the GOGC environment variable is not set. The agent allocates
	// little per share, so a low value costs almost no CPU and keeps the
	// resident set near the live heap (routers have little memory).
	GCPercent int `json:"gc_percent"` // 25
	// MaxPending bounds shares awaiting a pool response per upstream connection.
	MaxPending int `json:"max_pending"` // 65536
	// MaxOutbound bounds bytes queued to one slow miner before it is closed.
	MaxOutbound int `json:"max_outbound"` // 256 KiB
}

// knownIgnored are BtcAgent keys hashpool accepts but does not implement
// (proxies, TLS upstream, multi-user mode, logging knobs); each is warned about.
var knownIgnored = map[string]bool{
	"multi_user_mode": true, "agent_type": true, "proxy": true, "use_proxy": true,
	"direct_connect_with_proxy": true, "direct_connect_after_proxy": true, "pool_use_tls": true,
	"use_iocp": true, "file_log_level": true, "log_file_prefix": true, "advanced": true,
	"pool_connection_number_per_subaccount": true, "pool_connection_dial_timeout_seconds": true,
	"pool_connection_read_timeout_seconds": true, "http_debug": true,
}

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{
		ListenIP: "0.0.0.0", ListenPort: 3333,
		DisconnectWhenLostAsicboost: true,
		IPWorkerNameFormat:          "{1}x{2}x{3}x{4}",
		AgentString:                 "btccom-agent/2.0.0-hashpool",
		BatchIntervalMs:             100,
		Extensions:                  []string{ExtRejOnly, ExtZstd, ExtCompact},
		MinersPerUpstream:           0xFFFF,
		MaxMiners:                   100000,
		EventLoops:                  1,
		MinerPollCoalesceMs:         100,
		GCPercent:                   25,
		DialTimeoutSec:              10,
		HandshakeTimeout:            10,
		ReconnectMinMs:              500,
		ReconnectMaxMs:              30000,
		MinerReadTimeout:            600,
		AuthorizeTimeout:            15,
		NoPoolGraceSec:              120,
		UpstreamReadSec:             180,
		PrimaryRetrySec:             60,
		MaxPending:                  65536,
		MaxOutbound:                 256 << 10,
	}
}

// maxConfigSize bounds the configuration file.
const maxConfigSize = 1 << 20

// ParseConfig reads a BtcAgent JSON config over the defaults. Unknown keys
// and known-but-unimplemented BtcAgent keys do not fail (configs in the wild
// carry keys we do not know); they are returned as warnings.
func ParseConfig(b []byte) (Config, []string, error) {
	c := Defaults()
	if len(b) > maxConfigSize {
		return c, nil, fmt.Errorf("config: %d bytes, larger than %d", len(b), maxConfigSize)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return c, nil, fmt.Errorf("config: not a JSON object: %w", err)
	}
	known := map[string]bool{}
	t := reflectKeys()
	for _, k := range t {
		known[k] = true
	}
	var warns []string
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case known[k]:
		case knownIgnored[k]:
			warns = append(warns, fmt.Sprintf("config key %q (BtcAgent) is not implemented by hashpool's btcagent; ignored", k))
		default:
			warns = append(warns, fmt.Sprintf("unknown config key %q ignored", k))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return c, warns, fmt.Errorf("config: %w", err)
	}
	return c, warns, c.Validate()
}

// LoadConfig reads and parses a config file.
func LoadConfig(path string) (Config, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return Defaults(), nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxConfigSize+1)); err != nil {
		return Defaults(), nil, fmt.Errorf("config %s: %w", path, err)
	}
	c, w, err := ParseConfig(buf.Bytes())
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return c, w, err
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if net.ParseIP(c.ListenIP) == nil {
		bad("agent_listen_ip %q: not an IP address", c.ListenIP)
	}
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		bad("agent_listen_port %d: want 0..65535", c.ListenPort)
	}
	if len(c.Pools) == 0 {
		bad("pools: at least one [\"host\", port, \"user\"] is required")
	}
	if len(c.Pools) > 64 {
		bad("pools: %d entries, at most 64", len(c.Pools))
	}
	for i, p := range c.Pools {
		if p.Host == "" || len(p.Host) > 255 {
			bad("pools[%d]: host %q", i, p.Host)
		}
		if p.Port < 1 || p.Port > 65535 {
			bad("pools[%d]: port %d: want 1..65535", i, p.Port)
		}
		if p.User == "" || len(p.User) > 64 || strings.ContainsAny(p.User, "\"\\\x00.") {
			bad("pools[%d]: user %q: want 1..64 characters without '.', quotes, backslash or NUL", i, p.User)
		}
	}
	if !strings.HasPrefix(c.AgentString, "btccom-agent/") || len(c.AgentString) > 30 || strings.ContainsAny(c.AgentString, "\"\\") {
		bad("agent_string %q: must start with \"btccom-agent/\" and fit in 30 characters", c.AgentString)
	}
	if len(c.FixedWorkerName) > 60 {
		bad("fixed_worker_name: at most 60 characters")
	}
	if len(c.IPWorkerNameFormat) > 60 {
		bad("ip_worker_name_format: at most 60 characters")
	}
	for _, e := range c.Extensions {
		if e != ExtRejOnly && e != ExtZstd && e != ExtCompact {
			bad("extensions: unknown extension %q (known: %q, %q, %q)", e, ExtRejOnly, ExtZstd, ExtCompact)
		}
	}
	rng := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			bad("%s %d: want %d..%d", name, v, lo, hi)
		}
	}
	rng("batch_interval_ms", c.BatchIntervalMs, 0, 1000)
	rng("miner_poll_coalesce_ms", c.MinerPollCoalesceMs, 0, 100)
	rng("gc_percent", c.GCPercent, 10, 1000)
	rng("miners_per_upstream", c.MinersPerUpstream, 1, 0xFFFF)
	rng("max_miners", c.MaxMiners, 1, 1_000_000)
	rng("event_loops", c.EventLoops, 1, 64)
	rng("dial_timeout_seconds", c.DialTimeoutSec, 1, 300)
	rng("handshake_timeout_seconds", c.HandshakeTimeout, 1, 300)
	rng("reconnect_min_ms", c.ReconnectMinMs, 10, 600_000)
	rng("reconnect_max_ms", c.ReconnectMaxMs, c.ReconnectMinMs, 600_000)
	rng("miner_read_timeout_seconds", c.MinerReadTimeout, 10, 7*86400)
	rng("authorize_timeout_seconds", c.AuthorizeTimeout, 1, 3600)
	rng("no_pool_grace_seconds", c.NoPoolGraceSec, 1, 86400)
	rng("upstream_read_timeout_seconds", c.UpstreamReadSec, 10, 86400)
	rng("primary_retry_seconds", c.PrimaryRetrySec, 0, 86400)
	rng("max_pending", c.MaxPending, 16, 1<<20)
	rng("max_outbound", c.MaxOutbound, 4096, 64<<20)
	return errors.Join(errs...)
}

// Listen returns the downstream listen address.
func (c *Config) Listen() string { return net.JoinHostPort(c.ListenIP, strconv.Itoa(c.ListenPort)) }

func (c *Config) batchInterval() time.Duration {
	return time.Duration(c.BatchIntervalMs) * time.Millisecond
}

func (c *Config) wants(ext string) bool {
	for _, e := range c.Extensions {
		if e == ext {
			return true
		}
	}
	return false
}

// backoff returns the reconnect delay after n consecutive failed rounds.
func (c *Config) backoff(n int) time.Duration {
	d := float64(c.ReconnectMinMs) * math.Pow(2, float64(min(n, 20)))
	return time.Duration(min(d, float64(c.ReconnectMaxMs))) * time.Millisecond
}

// reflectKeys returns the JSON keys of Config.
func reflectKeys() []string {
	t := reflect.TypeFor[Config]()
	keys := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

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

// Pool is one upstream pool: BtcAgent's ["host", port, "user"] entry, or
// an SV2 pool ["sv2://host:port", "<authority key>", "user"] (see sv2.go).
type Pool struct {
	Host string
	Port int
	User string // the pool sub-account every miner's worker is rewritten to
	// SV2URL is the "sv2://host:port" of an SV2 pool ("" for an agent or
	// stratum pool); Host and Port are then parsed from it when they can be.
	SV2URL string
	// Authority is an SV2 pool's base58check authority public key, as the
	// pool operator publishes it (SRI's format).
	Authority string
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
	if strings.HasPrefix(p.Host, sv2Scheme) {
		return p.unmarshalSV2(b, raw)
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
	if p.SV2URL != "" {
		return json.Marshal([]string{p.SV2URL, p.Authority, p.User})
	}
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
	// MultiUserMode: a miner logging in as aaa.bbb mines for the pool
	// sub-account aaa as worker bbb (a login without '.' is account and
	// worker both); each sub-account gets its own upstream connection,
	// authorized as that account, and the pools' third element is ignored.
	// Off: every miner is a worker of the pool entry's sub-account.
	MultiUserMode bool `json:"multi_user_mode"` // false
	// AgentType is BtcAgent's coin; only "btc" is implemented.
	AgentType string `json:"agent_type"` // "btc"
	// PoolUseTLS connects to the pools with TLS (certificate verified
	// against the system roots unless the pool_tls_* keys say otherwise).
	PoolUseTLS bool `json:"pool_use_tls"`
	// Proxy lists proxies for the pool connections: "socks5://[user:pass@]host:port",
	// "http://..." or "https://..." (HTTP CONNECT, plain or over TLS), a
	// bare "host:port" (http), or "system" (ALL_PROXY, HTTPS_PROXY,
	// HTTP_PROXY from the environment). All are tried at once and the
	// first that connects is used (BtcAgent's "fastest").
	Proxy []string `json:"proxy"`
	// UseProxy: false ignores Proxy.
	UseProxy bool `json:"use_proxy"` // true
	// DirectConnectWithProxy races a direct connection against the proxies.
	DirectConnectWithProxy bool `json:"direct_connect_with_proxy"`
	// DirectConnectAfterProxy connects directly when every proxy failed.
	DirectConnectAfterProxy bool `json:"direct_connect_after_proxy"` // true
	// Advanced is BtcAgent's "advanced" object (see Advanced).
	Advanced *Advanced `json:"advanced"`
	// SV2Mode, with sv2:// pools: "per-miner" opens one SV2 extended
	// channel per miner (the pool sees every worker), "shared" one channel
	// for all miners (the pool sees one worker). See sv2.go.
	SV2Mode string `json:"sv2_mode"` // "per-miner"

	// hashpool keys.
	// PoolTLSCAFile: PEM file of the CA certificates that sign the pools'
	// certificates, trusted instead of the system roots.
	PoolTLSCAFile string `json:"pool_tls_ca_file"`
	// PoolTLSCertSHA256 pins the pools' certificate: the hex SHA-256 of
	// the leaf certificate (DER; colons allowed). With a pin, the chain is
	// not checked against any CA (self-signed pool certificates work), but
	// any other certificate is refused.
	PoolTLSCertSHA256 string `json:"pool_tls_cert_sha256"`
	// PoolTLSServerName is the name checked against the certificate (and
	// sent as SNI); empty: the pool's host.
	PoolTLSServerName string `json:"pool_tls_server_name"`
	// PoolTLSSkipVerify accepts any certificate (BtcAgent's
	// advanced.tls_skip_certificate_verify): encrypted, not authenticated.
	PoolTLSSkipVerify bool `json:"pool_tls_skip_verify"`
	// AgentString is the subscribe agent; it must start with "btccom-agent/"
	// for a btcpool-compatible pool to treat the connection as an agent.
	AgentString string `json:"agent_string"`
	// BatchIntervalMs: upstream frames are written at most once per interval
	// (100 ms: ≤ 10 writes/s and as many pool response segments whatever the
	// share rate; miners do not wait for share answers, and a block-solving
	// share waits at most this long, ~0.02% of a 10-minute block interval).
	BatchIntervalMs int `json:"batch_interval_ms"` // 100
	// UpstreamProtocol: "auto" speaks the agent protocol when the pool
	// answers agent.get_capabilities (btcpool and hashpool do) and plain
	// Stratum V1 otherwise (one mining.submit per share, the pool's
	// extranonce2 split into a 4-byte per-miner prefix and the miner's 4);
	// "agent" requires the agent protocol; "stratum" always speaks plain
	// stratum and does not announce itself as an agent.
	UpstreamProtocol string `json:"upstream_protocol"` // "auto"
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

	// sv2ReadTimeoutSet: the file gave upstream_read_timeout_seconds (or
	// advanced's), so SV2 mode uses it instead of its own longer default.
	sv2ReadTimeoutSet bool
}

// Advanced is BtcAgent's "advanced" object. The timeouts apply unless
// hashpool's own key is also given; the rest have no equivalent here.
type Advanced struct {
	// PoolConnectionNumberPerSubAccount (BtcAgent 5) is ignored: hashpool
	// opens one upstream connection per miners_per_upstream miners (per
	// sub-account in multi_user_mode).
	PoolConnectionNumberPerSubAccount *int `json:"pool_connection_number_per_subaccount,omitempty"`
	// PoolConnectionDialTimeoutSeconds sets dial_timeout_seconds.
	PoolConnectionDialTimeoutSeconds *int `json:"pool_connection_dial_timeout_seconds,omitempty"`
	// PoolConnectionReadTimeoutSeconds sets upstream_read_timeout_seconds.
	PoolConnectionReadTimeoutSeconds *int `json:"pool_connection_read_timeout_seconds,omitempty"`
	// FakeJobNotifyIntervalSeconds (BtcAgent 30) is ignored: with
	// always_keep_downconn miners stay connected but get no fake jobs.
	FakeJobNotifyIntervalSeconds *int `json:"fake_job_notify_interval_seconds,omitempty"`
	// TLSSkipCertificateVerify sets pool_tls_skip_verify.
	TLSSkipCertificateVerify *bool `json:"tls_skip_certificate_verify,omitempty"`
	// MessageQueueSize sizes BtcAgent's internal channels; hashpool has
	// none, so it is accepted and has no effect.
	MessageQueueSize json.RawMessage `json:"message_queue_size,omitempty"`
}

// knownIgnored are BtcAgent keys hashpool accepts but does not implement,
// with the value that is harmless (BtcAgent's default: no warning) and why
// another value is ignored. A nil harmless value always warns.
var knownIgnored = map[string]struct {
	harmless func(json.RawMessage) bool
	why      string
}{
	"use_iocp": {isJSON("false"), "Windows I/O completion ports; hashpool uses epoll (gnet)"},
	"http_debug": {func(v json.RawMessage) bool {
		var d struct {
			Enable bool `json:"enable"`
		}
		return json.Unmarshal(v, &d) == nil && !d.Enable
	}, "no debug HTTP server: use -stats / -stats-file, -cpuprofile, -memprofile"},
	"file_log_level":  {nil, "use -log-level"},
	"log_file_prefix": {nil, "use -l (log directory; btcagent.log is written there)"},
}

// isJSON returns a check that a raw value is exactly want (spaces aside).
func isJSON(want string) func(json.RawMessage) bool {
	return func(v json.RawMessage) bool { return strings.TrimSpace(string(v)) == want }
}

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{
		ListenIP: "0.0.0.0", ListenPort: 3333,
		DisconnectWhenLostAsicboost: true,
		IPWorkerNameFormat:          "{1}x{2}x{3}x{4}",
		AgentType:                   "btc",
		Proxy:                       []string{},
		UseProxy:                    true,
		DirectConnectAfterProxy:     true,
		SV2Mode:                     SV2PerMiner,
		AgentString:                 "btccom-agent/2.0.0-hashpool",
		UpstreamProtocol:            ProtoAuto,
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
		ig, ignored := knownIgnored[k]
		switch {
		case known[k]:
		case ignored:
			if ig.harmless == nil || !ig.harmless(keys[k]) {
				warns = append(warns, fmt.Sprintf("config key %q (BtcAgent) is not implemented by hashpool's btcagent (%s); ignored", k, ig.why))
			}
		default:
			warns = append(warns, fmt.Sprintf("unknown config key %q ignored", k))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return c, warns, fmt.Errorf("config: %w", err)
	}
	if raw, ok := keys["advanced"]; ok {
		warns = append(warns, c.applyAdvanced(raw, keys)...)
	}
	if c.SV2() {
		_, c.sv2ReadTimeoutSet = keys["upstream_read_timeout_seconds"]
		if !c.sv2ReadTimeoutSet && c.Advanced != nil && c.Advanced.PoolConnectionReadTimeoutSeconds != nil {
			c.sv2ReadTimeoutSet = true
		}
		warns = append(warns, sv2Warnings(names)...)
	}
	return c, warns, c.Validate()
}

// applyAdvanced applies BtcAgent's "advanced" object: its timeouts unless
// hashpool's own key is given, its TLS switch; it returns warnings for
// what has no effect here.
func (c *Config) applyAdvanced(raw json.RawMessage, keys map[string]json.RawMessage) []string {
	var warns []string
	var sub map[string]json.RawMessage
	if json.Unmarshal(raw, &sub) == nil {
		known := map[string]bool{}
		t := reflect.TypeFor[Advanced]()
		for i := 0; i < t.NumField(); i++ {
			k, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			known[k] = true
		}
		for k := range sub {
			if !known[k] {
				warns = append(warns, fmt.Sprintf("unknown config key \"advanced.%s\" ignored", k))
			}
		}
		sort.Strings(warns)
	}
	ad := c.Advanced
	if ad == nil {
		return warns
	}
	if v := ad.PoolConnectionDialTimeoutSeconds; v != nil {
		if _, own := keys["dial_timeout_seconds"]; !own {
			c.DialTimeoutSec = *v
		}
	}
	if v := ad.PoolConnectionReadTimeoutSeconds; v != nil {
		if _, own := keys["upstream_read_timeout_seconds"]; !own {
			c.UpstreamReadSec = *v
		}
	}
	if v := ad.TLSSkipCertificateVerify; v != nil && *v {
		c.PoolTLSSkipVerify = true
	}
	if v := ad.PoolConnectionNumberPerSubAccount; v != nil && *v != 5 {
		warns = append(warns, "config key \"advanced.pool_connection_number_per_subaccount\" (BtcAgent) is not implemented by hashpool's btcagent "+
			"(one upstream connection per miners_per_upstream miners, per sub-account in multi_user_mode); ignored")
	}
	if v := ad.FakeJobNotifyIntervalSeconds; v != nil && *v != 30 {
		warns = append(warns, "config key \"advanced.fake_job_notify_interval_seconds\" (BtcAgent) is not implemented by hashpool's btcagent "+
			"(always_keep_downconn keeps miners connected without fake jobs); ignored")
	}
	return warns
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
	c.validateSV2(bad)
	for i, p := range c.Pools {
		if p.SV2URL != "" {
			continue // validateSV2
		}
		if p.Host == "" || len(p.Host) > 255 {
			bad("pools[%d]: host %q", i, p.Host)
		}
		if p.Port < 1 || p.Port > 65535 {
			bad("pools[%d]: port %d: want 1..65535", i, p.Port)
		}
		if c.MultiUserMode && p.User == "" {
			continue // the miners name the sub-account
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
	if !strings.EqualFold(c.AgentType, "btc") {
		bad("agent_type %q: hashpool's btcagent is Bitcoin-only (\"btc\"); BtcAgent's eth/etc modes are not implemented", c.AgentType)
	}
	if c.UpstreamProtocol != ProtoAuto && c.UpstreamProtocol != ProtoAgent && c.UpstreamProtocol != ProtoStratum {
		bad("upstream_protocol %q: want %q, %q or %q", c.UpstreamProtocol, ProtoAuto, ProtoAgent, ProtoStratum)
	}
	if len(c.Proxy) > 16 {
		bad("proxy: %d entries, at most 16", len(c.Proxy))
	}
	for i, p := range c.Proxy {
		if _, err := parseProxy(p); err != nil {
			bad("proxy[%d]: %v", i, err)
		}
	}
	if !c.PoolUseTLS && (c.PoolTLSCAFile != "" || c.PoolTLSCertSHA256 != "" || c.PoolTLSServerName != "" || c.PoolTLSSkipVerify) {
		bad("pool_tls_*: set, but pool_use_tls is false")
	}
	if c.PoolTLSSkipVerify && (c.PoolTLSCAFile != "" || c.PoolTLSCertSHA256 != "") {
		bad("pool_tls_skip_verify: contradicts pool_tls_ca_file / pool_tls_cert_sha256")
	}
	if c.PoolTLSCertSHA256 != "" {
		if _, err := parsePin(c.PoolTLSCertSHA256); err != nil {
			bad("pool_tls_cert_sha256: %v", err)
		}
	}
	if len(c.PoolTLSServerName) > 255 {
		bad("pool_tls_server_name: at most 255 characters")
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

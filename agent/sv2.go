package agent

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashpool/hashpool/sv2proxy"
)

// SV2 mode (issue 14 item 4): when every pool entry is
// ["sv2://host:port", "<authority key>", "user"], cmd/btcagent runs package
// sv2proxy, an SV1 → SV2 translator, instead of the agent protocol: the
// miners speak Stratum V1 to it as they do to BtcAgent, and it mines for
// them on one Noise-encrypted SV2 connection whose certificate must be
// signed by the pool's authority key. This file owns the configuration of
// that mode; the translator is sv2proxy's.

// sv2Scheme starts an SV2 pool entry's address.
const sv2Scheme = "sv2://"

// sv2_mode values.
const (
	// SV2PerMiner opens one extended channel per miner with user_identity
	// "<user>.<worker>": the pool sees every worker (the default).
	SV2PerMiner = "per-miner"
	// SV2Shared opens one extended channel for all miners: the pool sees
	// one worker, the user.
	SV2Shared = "shared"
)

// sv2DefaultReadTimeout is SV2 mode's upstream read timeout unless the file
// sets upstream_read_timeout_seconds: SV2 has no keepalive, so a quiet pool
// is only noticed by this, and it must exceed the pool's longest gap
// between jobs (the agent protocol's 180 s default assumes pings).
const sv2DefaultReadTimeout = 600 * time.Second

// unmarshalSV2 reads ["sv2://host:port", "<authority key>", "user"]; the
// values are checked by Validate (validateSV2), which reports every problem.
func (p *Pool) unmarshalSV2(b []byte, raw []json.RawMessage) error {
	p.SV2URL = p.Host
	p.Host, p.Port = "", 0
	if err := json.Unmarshal(raw[1], &p.Authority); err != nil {
		return fmt.Errorf("pool entry %s: an sv2:// pool's second element is the pool's authority public key "+
			"(a base58 string, as the pool publishes it), not a port", b)
	}
	if err := json.Unmarshal(raw[2], &p.User); err != nil {
		return fmt.Errorf("pool entry %s: user must be a string", b)
	}
	if host, port, err := net.SplitHostPort(strings.TrimPrefix(p.SV2URL, sv2Scheme)); err == nil {
		if n, err := strconv.Atoi(port); err == nil {
			p.Host, p.Port = host, n
		}
	}
	return nil
}

// SV2 reports whether the pools are SV2 pools (sv2:// entries), so that
// cmd/btcagent runs the SV1 → SV2 translator. Validate refuses a mix.
func (c *Config) SV2() bool {
	for _, p := range c.Pools {
		if p.SV2URL == "" {
			return false
		}
	}
	return len(c.Pools) > 0
}

// validateSV2 checks the sv2:// entries and the keys that contradict SV2
// mode, reporting each problem through bad.
func (c *Config) validateSV2(bad func(string, ...any)) {
	if c.SV2Mode != SV2PerMiner && c.SV2Mode != SV2Shared {
		bad("sv2_mode %q: want %q or %q", c.SV2Mode, SV2PerMiner, SV2Shared)
	}
	n := 0
	for i, p := range c.Pools {
		if p.SV2URL == "" {
			continue
		}
		n++
		if _, err := sv2proxy.ParseUpstream(p.SV2URL, p.Authority, p.User); err != nil {
			bad("pools[%d]: %v", i, err)
		}
		if p.User == "" || len(p.User) > 64 || strings.ContainsAny(p.User, "\"\\\x00.") {
			bad("pools[%d]: user %q: want 1..64 characters without '.', quotes, backslash or NUL", i, p.User)
		}
	}
	if n == 0 {
		return
	}
	if n != len(c.Pools) {
		bad("pools: %d sv2:// and %d plain entries: either every pool is an SV2 pool [\"sv2://host:port\", \"<authority key>\", \"user\"] or none is",
			n, len(c.Pools)-n)
		return
	}
	// Keys whose meaning the translator cannot honour are errors rather than
	// silently different behaviour.
	if c.MultiUserMode {
		bad("multi_user_mode: not supported with sv2:// pools (the translator mines for the pool entry's user)")
	}
	if c.PoolUseTLS {
		bad("pool_use_tls: not used with sv2:// pools, which are encrypted and authenticated by Noise and the authority key")
	}
	if c.UseProxy && len(c.Proxy) > 0 {
		bad("proxy: not supported with sv2:// pools (the translator connects directly)")
	}
	if c.UseIPAsWorkerName {
		bad("use_ip_as_worker_name: not supported with sv2:// pools (workers are named after the miners' logins)")
	}
	if c.FixedWorkerName != "" {
		bad("fixed_worker_name: not supported with sv2:// pools (workers are named after the miners' logins)")
	}
	if c.UpstreamProtocol != ProtoAuto {
		bad("upstream_protocol %q: sv2:// pools speak Stratum V2; leave upstream_protocol at %q", c.UpstreamProtocol, ProtoAuto)
	}
}

// sv2NoEffect are keys that have no effect in SV2 mode, and why.
var sv2NoEffect = map[string]string{
	"submit_response_from_server":    "the pool's answer to every share is always relayed",
	"disconnect_when_lost_asicboost": "not implemented by the translator",
	"always_keep_downconn":           "miners always stay connected while no pool is reachable",
	"no_pool_grace_seconds":          "miners always stay connected while no pool is reachable",
	"agent_string":                   "the SV2 connection does not announce an agent",
	"batch_interval_ms":              "shares go to the pool as they arrive",
	"extensions":                     "agent protocol extensions",
	"miners_per_upstream":            "one SV2 connection serves every miner",
	"event_loops":                    "the translator uses goroutines per miner",
	"miner_poll_coalesce_ms":         "the translator uses goroutines per miner",
	"primary_retry_seconds":          "the translator moves to the next pool only when the current one fails",
	"max_pending":                    "the translator bounds pending shares per channel (1024)",
	"max_outbound":                   "the translator bounds each miner's queue in lines (64)",
	"direct_connect_with_proxy":      "the translator connects directly",
	"direct_connect_after_proxy":     "the translator connects directly",
}

// sv2Warnings returns a warning for each key in names that has no effect
// with sv2:// pools.
func sv2Warnings(names []string) []string {
	var warns []string
	for _, k := range names {
		if why, ok := sv2NoEffect[k]; ok {
			warns = append(warns, fmt.Sprintf("config key %q has no effect with sv2:// pools (%s)", k, why))
		}
	}
	return warns
}

// SV2Options returns the translator's options for a validated SV2 config
// (SV2 true): the pools in order, sv2_mode, and the timeouts, reconnect
// backoff and max_miners of the file.
func (c *Config) SV2Options(log *slog.Logger) (sv2proxy.Options, error) {
	if !c.SV2() {
		return sv2proxy.Options{}, fmt.Errorf("config: the pools are not sv2:// pools")
	}
	o := sv2proxy.Options{
		Mode:             sv2proxy.ChannelPerMiner,
		MaxMiners:        c.MaxMiners,
		AuthorizeTimeout: time.Duration(c.AuthorizeTimeout) * time.Second,
		MinerReadTimeout: time.Duration(c.MinerReadTimeout) * time.Second,
		DialTimeout:      time.Duration(c.DialTimeoutSec) * time.Second,
		HandshakeTimeout: time.Duration(c.HandshakeTimeout) * time.Second,
		ReconnectMin:     time.Duration(c.ReconnectMinMs) * time.Millisecond,
		ReconnectMax:     time.Duration(c.ReconnectMaxMs) * time.Millisecond,
		Vendor:           "hashpool-btcagent",
		Logger:           log,
	}
	o.UpstreamReadTimeout = sv2DefaultReadTimeout
	if c.sv2ReadTimeoutSet {
		o.UpstreamReadTimeout = time.Duration(c.UpstreamReadSec) * time.Second
	}
	if c.SV2Mode == SV2Shared {
		o.Mode = sv2proxy.SharedChannel
	}
	for i, p := range c.Pools {
		u, err := sv2proxy.ParseUpstream(p.SV2URL, p.Authority, p.User)
		if err != nil {
			return o, fmt.Errorf("config: pools[%d]: %w", i, err)
		}
		o.Upstreams = append(o.Upstreams, u)
	}
	return o, o.Validate()
}

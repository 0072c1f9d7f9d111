package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// Limits that bound every scenario (hard caps, whatever the flags say).
const (
	// MaxDuration is the longest a scenario may run.
	MaxDuration = 24 * time.Hour
	// MaxConnsPerProc is how many connections one process opens at most;
	// the rest go to child processes (the team's hard limit is 20,000 file
	// descriptors per process; the margin covers the runtime, pipes, /proc).
	MaxConnsPerProc = 18000
	// MaxProcs bounds the number of child processes.
	MaxProcs = 64
	// MaxMiners bounds stratum miners plus agent-farm miners in one scenario.
	MaxMiners = 2_000_000
	// MaxMinersPerAgent is the agent protocol's session id space (0..0xFFFE).
	MaxMinersPerAgent = 0xFFFF
)

// Stratum V2 channel kinds for Scenario.SV2.
const (
	SV2Standard = "standard"
	SV2Extended = "extended"
)

// Scenario describes one load run. The zero value is not valid: start from
// DefaultScenario. Fields tagged json:"-" do not travel to child processes.
type Scenario struct {
	// URL is the stratum server, host:port. Only 127.0.0.0/8 unless AllowRemote.
	URL string `json:"url"`
	// AllowRemote permits targets outside 127.0.0.0/8 (off by default so a
	// mistyped flag never loads someone else's pool).
	AllowRemote bool `json:"allow_remote,omitempty"`

	Miners         int     `json:"miners"`           // stratum miners, one TCP connection each
	Agents         int     `json:"agents"`           // agent connections (BtcAgent protocol)
	MinersPerAgent int     `json:"miners_per_agent"` // miners registered behind each agent connection
	BadClients     int     `json:"bad_clients"`      // connections that send bad input and check the errors
	Rate           float64 `json:"rate"`             // shares per second per miner (0.1 = one per 10 s)
	ConnectRate    float64 `json:"connect_rate"`     // new connections per second (all kinds), 0 = no limit
	// RegisterRate bounds REGISTER_WORKER frames per second per agent (0 = no limit).
	RegisterRate float64 `json:"register_rate"`

	Duration time.Duration `json:"duration"` // run time (after which every connection is closed)
	// Churn, when > 0, makes each stratum miner disconnect after about Churn
	// (±50 %) and reconnect as a new session.
	Churn time.Duration `json:"churn"`

	User           string `json:"user"`     // sub-account; workers are user.w<n>
	Password       string `json:"password"` // sent with mining.authorize
	VersionRolling bool   `json:"version_rolling"`
	// VersionMask is the mask asked for in mining.configure.
	VersionMask uint32 `json:"version_mask"`

	// SimulatorMode submits without grinding: it needs a server that skips
	// the low-difficulty check (engine Options.Simulator, `hashpool run
	// -simulator`, btcpool's enable_simulator). Otherwise every share is a
	// real one, ground until its hash meets the difficulty the miner was given.
	SimulatorMode bool `json:"simulator_mode"`
	// LowDifficulty submits shares that are sure to be rejected as low
	// difficulty (btcpool code 23) by any server: each nonce is ground to
	// MISS both the share target and the job's network target (so no share
	// is ever a block, even on regtest where half of all hashes are), about
	// two hashes per share. It measures a server's cost per submit at a
	// fixed rate without grinding real shares. Excludes SimulatorMode.
	LowDifficulty bool `json:"low_difficulty,omitempty"`
	// SubmitDelay holds every stratum miner's submits until this long after the run's start
	// (connections are made meanwhile), so a run has a connect phase and
	// then a submit window of Duration − SubmitDelay.
	SubmitDelay time.Duration `json:"submit_delay,omitempty"`
	// SV2 makes the stratum miners Stratum V2 miners (sv2-spec): "" is
	// Stratum V1, SV2Standard opens a standard channel per miner
	// (header-only mining: the pool sends the merkle root) and SV2Extended
	// an extended channel per miner (the miner rolls its own extranonce).
	// Each does the Noise NX handshake, checking the pool's certificate
	// against AuthorityKey. Agents and bad clients stay Stratum V1, so an
	// SV2 scenario has none.
	SV2 string `json:"sv2,omitempty"`
	// AuthorityKey is the pool's authority public key in the spec's base58
	// form (SV2 only, required): a server whose certificate it did not sign
	// fails the handshake.
	AuthorityKey string `json:"authority_key,omitempty"`
	// MaxGrindHashes bounds the nonces tried for one share before giving up.
	MaxGrindHashes uint64 `json:"max_grind_hashes"`

	// SourceIPs are local addresses to dial from, round robin (nil: the
	// kernel's choice). Spreading over 127.0.0.x avoids running out of
	// ephemeral ports against one server address.
	SourceIPs []string `json:"source_ips,omitempty"`
	// Procs is the number of processes to spread connections over; 0 picks
	// ceil(connections / MaxConnsPerProc). More than one needs Executable.
	Procs int `json:"procs"`
	// Executable is the loadgen binary started as child processes
	// (`<Executable> -child`), each reading its Scenario as JSON on stdin.
	Executable string `json:"-"`

	// PID, when > 0, is the server process whose RSS and CPU are sampled
	// from /proc once a second.
	PID int `json:"pid"`

	// Publish, when set, is called every PublishEvery once all sessions are
	// up; it must make the server broadcast one new job (for the engine,
	// Server.AddJob). Fan-out latency is then measured from the call to each
	// miner's receipt; without it, from the first receipt seen.
	Publish      func(ctx context.Context, n int) error `json:"-"`
	PublishEvery time.Duration                          `json:"publish_every"`

	// Progress receives one line a second while running (nil: none).
	Progress io.Writer `json:"-"`

	// Timeouts.
	DialTimeout     time.Duration `json:"dial_timeout"`
	ResponseTimeout time.Duration `json:"response_timeout"` // handshake replies and bad-client checks

	// Shard fields: set by the parent for a child process.
	Shard      int `json:"shard"`       // index of this process among Procs
	ShardCount int `json:"shard_count"` // number of processes (0 or 1: not sharded)
}

// DefaultScenario returns a scenario with every field set to a sensible
// value: 10 miners at one share per 10 s for 30 s against 127.0.0.1:3333.
func DefaultScenario() Scenario {
	return Scenario{
		URL:             "127.0.0.1:3333",
		Miners:          10,
		MinersPerAgent:  100,
		Rate:            0.1,
		ConnectRate:     2000,
		RegisterRate:    0,
		Duration:        30 * time.Second,
		User:            "loadgen",
		Password:        "x",
		VersionMask:     0x1fffe000,
		MaxGrindHashes:  1 << 28,
		DialTimeout:     5 * time.Second,
		ResponseTimeout: 10 * time.Second,
		PublishEvery:    5 * time.Second,
	}
}

// Connections returns the number of TCP connections the scenario keeps open.
func (s *Scenario) Connections() int { return s.Miners + s.Agents + s.BadClients }

// Validate reports every problem with s at once.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := CheckTarget(s.URL, s.AllowRemote); err != nil {
		errs = append(errs, err)
	}
	if s.Miners < 0 || s.Agents < 0 || s.BadClients < 0 {
		bad("miners %d, agents %d, bad clients %d: want ≥ 0", s.Miners, s.Agents, s.BadClients)
	}
	if s.Agents > 0 && (s.MinersPerAgent < 1 || s.MinersPerAgent > MaxMinersPerAgent) {
		bad("miners per agent %d: want 1..%d", s.MinersPerAgent, MaxMinersPerAgent)
	}
	if total := int64(s.Miners) + int64(s.Agents)*int64(s.MinersPerAgent); total > MaxMiners {
		bad("%d miners in total: want at most %d", total, MaxMiners)
	}
	if s.Connections() == 0 {
		bad("nothing to run: no miners, agents or bad clients")
	}
	if !(s.Rate >= 0) || s.Rate > 1000 {
		bad("rate %g shares/s per miner: want 0..1000", s.Rate)
	}
	if !(s.ConnectRate >= 0) || !(s.RegisterRate >= 0) {
		bad("connect rate %g, register rate %g: want ≥ 0", s.ConnectRate, s.RegisterRate)
	}
	if s.Duration <= 0 || s.Duration > MaxDuration {
		bad("duration %v: want (0, %v]", s.Duration, MaxDuration)
	}
	if s.Churn < 0 || (s.Churn > 0 && s.Churn < 100*time.Millisecond) {
		bad("churn %v: want 0 (off) or ≥ 100ms", s.Churn)
	}
	if s.User == "" || strings.ContainsAny(s.User, ".\"\\\x00\n") {
		bad("user %q: want a plain sub-account name (no dot, quote, backslash)", s.User)
	}
	if strings.ContainsAny(s.Password, "\"\\\x00\n") {
		bad("password: no quote, backslash or newline")
	}
	if s.VersionRolling && s.VersionMask == 0 {
		bad("version rolling needs a non-zero version mask")
	}
	switch s.SV2 {
	case "":
		if s.AuthorityKey != "" {
			bad("authority key given without SV2 miners")
		}
	case SV2Standard, SV2Extended:
		if _, err := noise.ParseAuthorityKey(s.AuthorityKey); err != nil {
			bad("SV2 miners need the pool's authority key (base58, as the pool prints it): %v", err)
		}
		if s.Agents > 0 || s.BadClients > 0 {
			bad("agents and bad clients speak Stratum V1: none in an SV2 scenario")
		}
	default:
		bad("sv2 %q: want %q, %q or empty (Stratum V1)", s.SV2, SV2Standard, SV2Extended)
	}
	if s.LowDifficulty && s.SimulatorMode {
		bad("low difficulty and simulator mode exclude each other")
	}
	if s.SubmitDelay < 0 || (s.Duration > 0 && s.SubmitDelay >= s.Duration) {
		bad("submit delay %v: want 0 ≤ delay < duration %v", s.SubmitDelay, s.Duration)
	}
	if s.MaxGrindHashes == 0 || s.MaxGrindHashes > 1<<40 {
		bad("max grind hashes %d: want 1..2^40", s.MaxGrindHashes)
	}
	if _, err := ParseSourceIPs(s.SourceIPs); err != nil {
		errs = append(errs, err)
	}
	if s.Procs < 0 || s.Procs > MaxProcs {
		bad("procs %d: want 0..%d", s.Procs, MaxProcs)
	}
	if s.Procs == 1 && s.Connections() > MaxConnsPerProc {
		bad("%d connections in one process: at most %d (use more procs)", s.Connections(), MaxConnsPerProc)
	}
	if s.PID < 0 {
		bad("pid %d: want ≥ 0", s.PID)
	}
	if s.Publish != nil && (s.PublishEvery < 10*time.Millisecond) {
		bad("publish every %v: want ≥ 10ms", s.PublishEvery)
	}
	if s.DialTimeout <= 0 || s.ResponseTimeout <= 0 {
		bad("dial timeout %v, response timeout %v: want > 0", s.DialTimeout, s.ResponseTimeout)
	}
	if s.ShardCount < 0 || s.Shard < 0 || (s.ShardCount > 0 && s.Shard >= s.ShardCount) {
		bad("shard %d of %d: invalid", s.Shard, s.ShardCount)
	}
	return errors.Join(errs...)
}

// procs returns the number of processes the scenario runs as.
func (s *Scenario) procs() int {
	if s.Procs > 0 {
		return s.Procs
	}
	return max(1, (s.Connections()+MaxConnsPerProc-1)/MaxConnsPerProc)
}

// shard returns the part of s that process i of n runs: miners, agents and
// bad clients split as evenly as possible, and no publish hook.
func (s Scenario) shard(i, n int) Scenario {
	part := func(total int) int { return total/n + btoi(i < total%n) }
	c := s
	c.Miners, c.Agents, c.BadClients = part(s.Miners), part(s.Agents), part(s.BadClients)
	c.Procs, c.Shard, c.ShardCount = 1, i, n
	c.Publish, c.Progress, c.PID = nil, nil, 0 // the parent samples the server
	return c
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CheckTarget resolves host:port and refuses addresses outside 127.0.0.0/8
// unless allowRemote.
func CheckTarget(hostport string, allowRemote bool) (*net.TCPAddr, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "" {
		return nil, fmt.Errorf("target %q: want host:port", hostport)
	}
	var ip net.IP
	if host == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	} else if ip = net.ParseIP(host); ip == nil && !allowRemote {
		return nil, fmt.Errorf("target %q: give an IP address (names are resolved only with AllowRemote)", hostport)
	}
	if !allowRemote && (ip.To4() == nil || ip.To4()[0] != 127) {
		return nil, fmt.Errorf("target %q is outside 127.0.0.0/8: refused without AllowRemote (-allow-remote)", hostport)
	}
	a, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("target %q: %v", hostport, err)
	}
	return a, nil
}

// ParseSourceIPs expands entries like "127.0.0.2" and "127.0.0.2-127.0.0.20"
// (a range within the last octet) into addresses; only 127.0.0.0/8, at most
// 1024 addresses in all.
func ParseSourceIPs(list []string) ([]net.IP, error) {
	var out []net.IP
	for _, e := range list {
		for _, part := range strings.Split(e, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			lo, hi, isRange := strings.Cut(part, "-")
			a := net.ParseIP(lo).To4()
			b := a
			if isRange {
				b = net.ParseIP(hi).To4()
			}
			if a == nil || b == nil || a[0] != 127 || b[0] != 127 {
				return nil, fmt.Errorf("source ip %q: want 127.x.y.z or 127.x.y.a-127.x.y.b", part)
			}
			if a[1] != b[1] || a[2] != b[2] || a[3] > b[3] {
				return nil, fmt.Errorf("source ip range %q: want the same first three octets and a ≤ b", part)
			}
			for o := int(a[3]); o <= int(b[3]); o++ {
				if len(out) >= 1024 {
					return nil, errors.New("source ips: more than 1024 addresses")
				}
				out = append(out, net.IPv4(a[0], a[1], a[2], byte(o)).To4())
			}
		}
	}
	return out, nil
}

package engine

import (
	"sync/atomic"

	"github.com/hashpool/hashpool/codec/stratum"
)

// Metrics are the engine's counters, plain atomics so that cmd/ can export
// them to Prometheus (or anything else) without the engine depending on it.
// All lists every one of them with a name and help text; a test checks that
// no field is left out, so an exporter built on All cannot miss one.
type Metrics struct {
	Sessions      atomic.Int64 // open connections
	Authorized    atomic.Int64 // sessions that authorized (cumulative)
	Rejected      atomic.Int64 // connections refused (ids exhausted, draining)
	BadLines      atomic.Int64 // lines that were not JSON, bad zstd batches (dropped)
	SlowClosed    atomic.Int64 // sessions closed for exceeding MaxOutbound
	TimedOut      atomic.Int64 // sessions closed by a read timeout
	UsersRefused  atomic.Int64 // authorizes refused by the new-user bounds
	ProxyRefused  atomic.Int64 // connections on the PROXY listener closed for a missing or bad PROXY header
	HeldAnswers   atomic.Int64 // reads whose answers waited for a solved share's journal record
	JournalErrors atomic.Int64 // failed writes of the solved-share journal (shares answered and published all the same)

	SharesAccepted  atomic.Int64 // accepted shares, block-solving ones included
	SharesSolved    atomic.Int64 // shares that met the network target (also in SharesAccepted)
	AuxSolved       atomic.Int64 // aux blocks found: one per aux chain whose target a share met
	SharesStale     atomic.Int64 // 36/37 (wire 21)
	SharesDuplicate atomic.Int64
	SharesLowDiff   atomic.Int64
	SharesOther     atomic.Int64 // time too old/new, version mask

	RecordsPublished atomic.Int64
	RecordsFailed    atomic.Int64
	RecordsDropped   atomic.Int64 // not handed to a bus that stopped taking them (queue full)
	SolvedPublished  atomic.Int64
	SolvedRetries    atomic.Int64

	Broadcasts         atomic.Int64
	BroadcastNanos     atomic.Int64 // total time from broadcast start to the last loop done
	LastBroadcastNanos atomic.Int64
	SubmitNanos        atomic.Int64 // event-loop time spent validating shares (sampled: 1 in 64, scaled)
	SubmitCount        atomic.Int64 // shares validated (stratum and agent)

	SV2Sessions          atomic.Int64 // open SV2 connections
	SV2Channels          atomic.Int64 // open SV2 mining channels
	SV2HandshakeFailures atomic.Int64 // Noise handshakes that failed
	SV2ProtocolErrors    atomic.Int64 // SV2 connections closed for a bad frame (MAC, size) or message out of order
	SV2SetupRefused      atomic.Int64 // SetupConnection answered with an error
	SV2ChannelsRefused   atomic.Int64 // Open*MiningChannel answered with an error
}

// MetricKind says how a Metric behaves.
type MetricKind uint8

// Metric kinds.
const (
	Counter MetricKind = iota // only grows
	Gauge                     // goes up and down
)

// Metric describes one value of Metrics for an exporter.
type Metric struct {
	// Name is the metric's name without namespace, in Prometheus style
	// ("shares_total", "sessions"); metrics that share a Name differ by
	// their label value.
	Name string
	Help string
	Kind MetricKind
	// Label and LabelValue, when Label is not empty, tell metrics with the
	// same Name apart (Label "status", LabelValue "accepted").
	Label, LabelValue string

	v     *atomic.Int64
	scale float64
}

// Value returns the metric's current value (nanosecond counters are
// returned in seconds).
func (m Metric) Value() float64 { return float64(m.v.Load()) * m.scale }

// All returns every value in m with its name, help text and kind.
func (m *Metrics) All() []Metric {
	c := func(name, help string, v *atomic.Int64) Metric {
		return Metric{Name: name, Help: help, Kind: Counter, v: v, scale: 1}
	}
	g := func(name, help string, v *atomic.Int64) Metric {
		return Metric{Name: name, Help: help, Kind: Gauge, v: v, scale: 1}
	}
	share := func(status string, v *atomic.Int64) Metric {
		return Metric{Name: "shares_total", Help: "Shares by status (accepted includes solved).", Kind: Counter,
			Label: "status", LabelValue: status, v: v, scale: 1}
	}
	secs := func(mt Metric) Metric { mt.scale = 1e-9; return mt }
	return []Metric{
		g("sessions", "Open stratum and agent connections.", &m.Sessions),
		c("authorized_total", "Sessions that authorized.", &m.Authorized),
		c("connections_refused_total", "Connections refused (session ids exhausted or draining).", &m.Rejected),
		c("bad_lines_total", "Input lines that were not JSON and undecodable zstd batches (dropped).", &m.BadLines),
		c("slow_closed_total", "Sessions closed for not reading their output.", &m.SlowClosed),
		c("timed_out_total", "Sessions closed by a read timeout.", &m.TimedOut),
		c("users_refused_total", "Authorizes refused because a connection or IP registered too many new user names.", &m.UsersRefused),
		c("proxy_refused_total", "Connections on the PROXY listener closed for a missing or bad PROXY v1 header.", &m.ProxyRefused),
		c("held_answers_total", "Reads whose answers waited for a solved share's journal fsync.", &m.HeldAnswers),
		c("journal_errors_total", "Failed writes of the solved-share journal.", &m.JournalErrors),
		share("accepted", &m.SharesAccepted),
		share("solved", &m.SharesSolved),
		share("stale", &m.SharesStale),
		share("duplicate", &m.SharesDuplicate),
		share("low_difficulty", &m.SharesLowDiff),
		share("other", &m.SharesOther),
		c("aux_solved_total", "Aux blocks found: one per aux chain whose target a share met, whatever the share's status.", &m.AuxSolved),
		c("records_published_total", "Share records accepted by the bus.", &m.RecordsPublished),
		c("records_failed_total", "Share records the bus failed to deliver.", &m.RecordsFailed),
		c("records_dropped_total", "Share records dropped because the bus stopped taking them (queue full).", &m.RecordsDropped),
		c("solved_published_total", "Solved shares acknowledged by the bus.", &m.SolvedPublished),
		c("solved_retries_total", "Failed publications of solved shares (each is retried).", &m.SolvedRetries),
		c("broadcasts_total", "Job broadcasts.", &m.Broadcasts),
		secs(c("broadcast_seconds_total", "Time spent broadcasting jobs to every session.", &m.BroadcastNanos)),
		secs(g("last_broadcast_seconds", "Duration of the last job broadcast.", &m.LastBroadcastNanos)),
		secs(c("submit_seconds_total", "Event-loop time spent validating shares (sampled 1 in 64).", &m.SubmitNanos)),
		c("submits_total", "Shares validated.", &m.SubmitCount),
		g("sv2_sessions", "Open Stratum V2 connections.", &m.SV2Sessions),
		g("sv2_channels", "Open Stratum V2 mining channels.", &m.SV2Channels),
		c("sv2_handshake_failures_total", "Stratum V2 Noise handshakes that failed.", &m.SV2HandshakeFailures),
		c("sv2_protocol_errors_total", "Stratum V2 connections closed for a bad frame or a message out of order.", &m.SV2ProtocolErrors),
		c("sv2_setup_refused_total", "Stratum V2 SetupConnection requests refused.", &m.SV2SetupRefused),
		c("sv2_channels_refused_total", "Stratum V2 channel opens refused.", &m.SV2ChannelsRefused),
	}
}

// countShare counts a share's status. A block-solving share counts as
// accepted too: it is one, and status lines that show accepted shares must
// not read zero on a network where every share solves a block.
func (m *Metrics) countShare(st stratum.Status) {
	switch st {
	case stratum.StatusAccept:
		m.SharesAccepted.Add(1)
	case stratum.StatusSolved:
		m.SharesAccepted.Add(1)
		m.SharesSolved.Add(1)
	case stratum.StatusJobNotFound, stratum.StatusStaleShare:
		m.SharesStale.Add(1)
	case stratum.StatusDuplicateShare:
		m.SharesDuplicate.Add(1)
	case stratum.StatusLowDifficulty:
		m.SharesLowDiff.Add(1)
	default:
		m.SharesOther.Add(1)
	}
}

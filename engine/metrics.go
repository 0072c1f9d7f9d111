package engine

import (
	"sync/atomic"

	"github.com/hashpool/hashpool/codec/stratum"
)

// Metrics are the engine's counters, plain atomics so that cmd/ can export
// them to Prometheus (or anything else) without the engine depending on it.
type Metrics struct {
	Sessions   atomic.Int64 // open connections
	Authorized atomic.Int64 // sessions that authorized (cumulative)
	Rejected   atomic.Int64 // connections refused (ids exhausted, draining)
	BadLines   atomic.Int64 // lines that were not JSON (dropped)
	SlowClosed atomic.Int64 // sessions closed for exceeding MaxOutbound
	TimedOut   atomic.Int64 // sessions closed by a read timeout

	SharesAccepted  atomic.Int64
	SharesSolved    atomic.Int64
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
	SubmitNanos        atomic.Int64 // total OnTraffic time spent on submits
	SubmitCount        atomic.Int64
}

func (m *Metrics) countShare(st stratum.Status) {
	switch st {
	case stratum.StatusAccept:
		m.SharesAccepted.Add(1)
	case stratum.StatusSolved:
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

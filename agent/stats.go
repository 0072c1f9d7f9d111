package agent

import "sync/atomic"

// Stats are the agent's counters, safe to read at any time. Upstream is
// the link to the pool (what a farm pays for); downstream is the miners' LAN.
type Stats struct {
	UpBytesOut   atomic.Int64 // payload bytes written to pools
	UpBytesIn    atomic.Int64 // payload bytes read from pools
	UpWrites     atomic.Int64 // write calls to pools (one per batch)
	UpReads      atomic.Int64 // read calls that returned data
	UpFramesOut  atomic.Int64 // ex-message frames sent (submits, registers, unregisters)
	UpFramesIn   atomic.Int64 // ex-message frames received (set diff, submit responses)
	UpLinesIn    atomic.Int64 // JSON lines received (notify, set_difficulty, responses)
	DownBytesIn  atomic.Int64 // bytes read from miners
	DownBytesOut atomic.Int64 // bytes written to miners
	Miners       atomic.Int64 // connected miners
	Upstreams    atomic.Int64 // upstream connections past their handshake
	Connects     atomic.Int64 // successful upstream handshakes (first connect, failovers, reconnects)
	Shares       atomic.Int64 // mining.submit received
	Accepted     atomic.Int64 // answered true (by the pool, or locally without subres)
	Rejected     atomic.Int64 // answered with an error
	Notifies     atomic.Int64 // mining.notify relayed (jobs, not lines)
}

// Snapshot is a plain copy of Stats.
type Snapshot struct {
	UpBytesOut, UpBytesIn, UpWrites, UpReads, UpFramesOut, UpFramesIn, UpLinesIn int64
	DownBytesIn, DownBytesOut                                                    int64
	Miners, Upstreams, Connects, Shares, Accepted, Rejected, Notifies            int64
	// Wire is the kernel's view of the upstream sockets (Linux TCP_INFO),
	// closed connections included; zero elsewhere.
	Wire Wire
}

// Wire is upstream traffic as the kernel counted it: payload bytes and TCP
// segments in each direction. Estimated link bytes add HeaderBytes per
// segment (IPv4 20 + TCP 20 + timestamps option 12).
type Wire struct {
	BytesOut, BytesIn int64 // tcpi_bytes_acked, tcpi_bytes_received
	SegsOut, SegsIn   int64 // tcpi_segs_out, tcpi_segs_in (ACKs and retransmits included)
}

// HeaderBytes is the per-segment overhead used by the wire estimate.
const HeaderBytes = 52

// EstOut is the estimated bytes on the link towards the pools.
func (w Wire) EstOut() int64 { return w.BytesOut + HeaderBytes*w.SegsOut }

// EstIn is the estimated bytes on the link from the pools.
func (w Wire) EstIn() int64 { return w.BytesIn + HeaderBytes*w.SegsIn }

func (w *Wire) add(o Wire) {
	w.BytesOut += o.BytesOut
	w.BytesIn += o.BytesIn
	w.SegsOut += o.SegsOut
	w.SegsIn += o.SegsIn
}

func (s *Stats) snapshot() Snapshot {
	return Snapshot{
		UpBytesOut: s.UpBytesOut.Load(), UpBytesIn: s.UpBytesIn.Load(), UpWrites: s.UpWrites.Load(),
		UpReads: s.UpReads.Load(), UpFramesOut: s.UpFramesOut.Load(), UpFramesIn: s.UpFramesIn.Load(),
		UpLinesIn: s.UpLinesIn.Load(), DownBytesIn: s.DownBytesIn.Load(), DownBytesOut: s.DownBytesOut.Load(),
		Miners: s.Miners.Load(), Upstreams: s.Upstreams.Load(), Connects: s.Connects.Load(),
		Shares: s.Shares.Load(), Accepted: s.Accepted.Load(), Rejected: s.Rejected.Load(), Notifies: s.Notifies.Load(),
	}
}

// Package sv2proxy is a Stratum V1 → Stratum V2 translator for a farm proxy
// (issue 14, item 4): SV1 miners connect to it over plain TCP stratum, and
// it mines for them on one SV2 connection to a pool over Noise
// (codec/sv2/noise: the pool's certificate must be signed by the configured
// authority key and be inside its validity window), using extended
// channels.
//
// # Channels and worker identity
//
// ChannelPerMiner (the default) opens one extended channel per authorized
// miner with user_identity "<sub-account>.<worker>" (the worker is what
// follows the first '.' of the miner's mining.authorize name, as btcagent
// does). The pool then accounts, varies difficulty for and reports every
// worker exactly as BtcAgent's REGISTER_WORKER gives a btcpool-compatible
// pool, which is what farms run BtcAgent for; that is why it is the
// default. The price is on the SV2 wire: the pool sends every job once per
// channel (a group channel would cut that, but a group's job ids are the
// group's, and sv2pool does not yet broadcast to groups).
// Against hashpool's sv2pool, per-miner channels are capped by its
// MaxChannels per connection (64) and its 256-frame session queue (a new
// block queues two frames per channel): farms of more than ~64 miners use
// SharedChannel there until the engine's SV2 listener has group channels.
// A channel the pool refuses closes its miner (the miner fails over to its
// own backup pool).
// SharedChannel opens one extended channel for all miners: each job comes
// once and is serialized once for every miner (one mining.notify line shared
// by all), at the cost of the pool seeing one worker; per-miner accounting
// is then only the translator's own (Translator.Miners), which the spec
// allows: a proxy on an extended channel splits its extranonce space among
// its downstreams as it likes (§5.2).
//
// In both modes a miner's part of the channel's extranonce is the same:
// zero padding (when the pool grants more than needed), the miner's 4-byte
// session id (sent to it as extranonce1) and its ExtraNonce2Size bytes of
// extranonce2. coinbase1 in mining.notify is the job's coinbase prefix plus
// the channel's extranonce_prefix plus the padding.
//
// # Jobs, targets, shares
//
// NewExtendedMiningJob without min_ntime is kept as a future job until
// SetNewPrevHash names it, which sends it with clean_jobs=true and makes every
// earlier job stale; with min_ntime it is sent at once (clean_jobs=false,
// except for a channel's first job). SV1 job ids are the translator's own
// counter, so ids of a lost pool never collide with a new pool's. SetTarget
// and the channel's initial target become mining.set_difficulty
// (Target.Difficulty: fractional on test networks). SetExtranoncePrefix
// applies to jobs received after it (§5.3.10).
//
// mining.submit becomes SubmitSharesExtended with the channel's next
// sequence number; every share waits in its channel's queue until
// SubmitShares.Success (which covers every earlier sequence number) or
// SubmitShares.Error answers it, and the queue is answered from its head
// only, so a miner gets its answers in the order it submitted. Error codes:
// stale-share and invalid-job-id → 21, duplicate-share → 22,
// difficulty-too-low → 23, anything else → 20 "Other/Unknown (<code>)".
// A share for a job the translator does not know is 21 at once; a version
// outside the negotiated mask is 33.
//
// # Failover
//
// Upstreams are tried in order. A Reconnect from the pool is followed to
// the server it names, checked against the same authority key (§3.6.5: it
// cannot move hashrate to another pool). When the connected pool fails
// (read error, silence, a protocol violation, a full output queue), queued
// shares are answered 21, miners stay connected and the next upstream is
// dialed; channels are reopened for every miner there and their first job
// goes out with clean_jobs=true. A full round of failed dials backs off
// from ReconnectMin to ReconnectMax.
//
// # Bounds
//
// Miners (MaxMiners), line length (MaxLine), each miner's output queue
// (MinerQueue: a miner that does not read is closed, never buffered),
// queued shares per channel (MaxPending), frames to the pool
// (UpstreamQueue), jobs per channel (MaxJobs), worker names (64 bytes),
// garbage lines (a miner is closed after 16) and every wait (timeouts).
//
// # Concurrency
//
// One goroutine reads each miner and one writes to it; one goroutine reads
// the pool (Run) and one writes to it. All shared state is under
// Translator.mu, which is never held across I/O: lines and frames go to
// bounded queues without blocking.
//
// This package must never trust the pool or the miners (bad input closes
// that one connection), log per share, or talk to a pool whose certificate
// it has not checked. It does not do job declaration, standard channels
// upstream, or BtcAgent's own protocol (package agent owns that).
package sv2proxy

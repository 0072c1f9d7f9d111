// Package sv2pool is a sketch of Stratum V2's pool role as a plain-net
// server: one goroutine pair per connection over codec/sv2/noise, the
// Common protocol's SetupConnection, standard channels (header-only mining:
// the pool computes each channel's merkle root and sends NewMiningJob) and
// extended channels (an extranonce prefix per channel, NewExtendedMiningJob),
// jobs and new blocks from a JobTemplate (NewExtendedMiningJob/NewMiningJob
// then SetNewPrevHash), SetTarget, and share validation with package sha
// (version-rolling bits, ntime window, duplicates per channel and block,
// channel target, network target).
//
// It exists to exercise codec/sv2 and its Noise layer end to end and to fix
// the pool-side rules before they move onto the engine's gnet event loops
// (issue 14, item 3). It has no bus, share records, vardiff, group-channel
// job broadcast or btcpool error accounting; OnShare and OnBlock hand results
// to the caller.
//
// Error codes sent in SubmitShares.Error, OpenMiningChannel.Error and
// SetupConnection.Error (the spec leaves codes to implementations, §3.5; these
// are the ones SRI uses where it has one): invalid-channel-id, invalid-job-id,
// stale-share, duplicate-share, difficulty-too-low, invalid-extranonce-size,
// invalid-version, invalid-timestamp; unsupported-protocol,
// protocol-version-mismatch, unsupported-feature-flags;
// max-target-out-of-range, min-extranonce-size-too-large,
// too-many-channels.
//
// This package must never block a connection's reader on another
// connection (each session has its own bounded output queue; a full queue
// closes that session), accept a frame before the Noise handshake, or log
// per share above Debug.
package sv2pool

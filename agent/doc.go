// Package agent is hashpool's btcagent: a farm proxy compatible with
// BtcAgent (btccom/btcagent) that multiplexes thousands of miners onto a few
// connections to a btcpool-compatible pool (spec/btcpool.md §5).
//
// Downstream, miners speak ordinary stratum to a gnet server: subscribe
// (each miner gets an agent session id 0..0xFFFE on one upstream
// connection; extranonce1 = %08x of it, extranonce2 size 4), authorize
// (john.a001 is registered as worker a001 of the pool user configured for
// the pool), configure/version rolling, submit, suggest_difficulty and
// extranonce.subscribe. Upstream, one plain net.Conn per MinersPerUpstream
// miners (a reader on the slot's goroutine, a batching writer goroutine)
// does btcagent's handshake (mining.subscribe "btccom-agent/...",
// agent.get_capabilities, mining.configure, mining.authorize with the pool
// user; extranonce2 size must be 8), then REGISTER_WORKER /
// UNREGISTER_WORKER and SUBMIT_SHARE[_WITH_TIME][_WITH_VER] frames (the
// time only when it is not the job's own nTime, which the pool takes for a
// share without one; BtcAgent always sends it). From
// the pool it relays mining.notify (pool extranonce1 appended to
// coinbase1, §5.4), MINING_SET_DIFF (set_difficulty to each listed miner),
// the pool's own set_difficulty (every miner's default), and
// SUBMIT_RESPONSE (accept, or the stratum error code, to the miner that
// sent the share; without submit_response_from_server miners are answered
// true at once, like BtcAgent).
//
// # Plain Stratum V1 pools
//
// With upstream_protocol "auto" (the default) the handshake (subscribe
// first, then agent.get_capabilities, mining.configure, authorize) decides
// at the authorize answer: a pool that answered agent.get_capabilities
// gets the agent protocol; any other pool (ckpool, most pools) gets plain
// Stratum V1 on the same slot: the pool's extranonce2 (8..16 bytes) is
// split into zero padding, the agent session id (4 bytes, the miner's
// extranonce1) and the miner's 4 bytes, so the miner's coinbase is the
// pool's with the pool's extranonce1 (and padding) appended to coinbase1,
// exactly as in the agent protocol. Each share is one mining.submit as the
// pool user (numeric id = the submit index, so answers map to pending
// shares); the pool's set_difficulty goes to every miner; a job sent
// before the authorize answer is kept and relayed at attach;
// mining.set_extranonce reconnects (the miners' view does not change).
//
// In multi_user_mode (BtcAgent's) the sub-account comes from the miner:
// aaa.bbb is worker bbb of pool user aaa. Session ids are then allocated
// from one space shared by all accounts (at subscribe, before the account
// is known), and each account has its own slot, whose upstream connection
// authorizes as that account; it is started by the account's first
// authorize and stopped with its last miner. A round in which every pool
// refused the account closes its miners.
//
// Pool connections are dialed directly or through SOCKS5 / HTTP CONNECT
// proxies (all raced, the first to connect wins, like BtcAgent), then
// wrapped in TLS 1.2+ with pool_use_tls (verified against the system roots,
// a CA file, or a pinned leaf fingerprint; skipping verification must be
// asked for). Wire counters are read from the TCP socket under TLS and the
// proxy, and sampled once more when a connection closes, so totals never
// go backwards.
//
// Pools are tried in order; a lost pool is replaced by the next reachable
// one (starting again from the first, with backoff after a round where none
// answered); while on a later pool, the earlier ones are dialed every
// primary_retry_seconds and the agent moves back as soon as one accepts a
// connection. Miners stay connected across a switch: they are registered on
// the new connection, get its difficulty and its next job with
// clean_jobs=true; shares awaiting the old pool's answer are answered with
// error 21. Without always_keep_downconn, miners are closed after
// no_pool_grace_seconds without any pool.
//
// # Bandwidth
//
// Upstream frames are batched: the writer sends everything queued once per
// batch_interval_ms (100 ms by default) instead of one TCP segment per share.
// Three extensions, asked for in agent.get_capabilities and used only when the
// pool lists them in its answer (only hashpool's engine does), cut bytes:
//
//   - "rejonly": SUBMIT_RESPONSE frames only for rejected shares, plus one
//     accept per read of the pool that stands for every earlier unanswered
//     share (responses arrive in submit order, so this is exact).
//   - "zstd": each batch goes out as ZSTD_BATCH frames (0x7F, cmd 0x7E, u16
//     length, one self-contained zstd frame whose content is the batch's
//     ordinary frames, at most 32 KiB of them). Self-contained frames cost
//     some ratio against a stream, but the engine decodes them at once on
//     its event loop with a bounded DecodeAll and no per-connection
//     decompressor state. A batch that does not shrink is sent plainly.
//     With csub, only batches holding at least 256 bytes of other frames
//     (registration bursts) are compressed: compact submits do not shrink,
//     and an encoder idle for a minute is dropped (~5 MB).
//   - "csub": the writer rewrites each run of submit frames as
//     SUBMIT_COMPACT frames (cmd 0x7D; layout in codec/agent.CmdCompactSubmits):
//     base job and time per frame, then a bitstream of records: a bit that
//     says the flags repeat (else 6 flag bits), the session id in as many
//     bits as the frame's largest one needs, the nonce, the version bits as
//     16 bits when they lie in 0x1fffe000, and the extranonce2 only when it
//     is not the last one sent for that session id plus one (miners count
//     it up). A typical share from one of 10,000 miners is 63 bits, under
//     8 bytes instead of 23. Both ends keep the last extranonce2 per
//     session id for the connection, in frame order, so they stay in step.
//
// With several extensions the writer applies csub, then zstd.
//
// # CPU and memory
//
// A farm's steady cost is per share: one read of the submit and one write
// of the answer on the miner's socket. The event loop does not poll after
// every share: after a round of traffic it naps until
// miner_poll_coalesce_ms (100) has passed since the previous round, so the
// shares of ~100 ms are read and answered together (one epoll round instead
// of one per share); jobs and difficulties for the miners end the nap at
// once, so only share answers and requests wait. Lines for many miners go
// out as one event-loop task per 512 miners. The binary runs the Go GC at
// gc_percent 25: the agent allocates little per share, so the resident set
// stays near the live heap for almost no CPU.
// Against any other pool the agent speaks plain btcpool protocol.
//
// # Measuring
//
// Agent.Stats counts payload bytes, reads/writes and frames in each
// direction of both sides. The wire estimate of the upstream link comes from
// the kernel (Linux TCP_INFO, read from every upstream socket, closed ones
// included): bytes = tcpi_bytes_acked (out) / tcpi_bytes_received (in),
// segments = tcpi_segs_out / tcpi_segs_in (data, pure ACKs and
// retransmissions), and the estimate is bytes + 52 × segments (IPv4 20 +
// TCP 20 + timestamp option 12; Ethernet framing not counted), divided by
// the elapsed time for kbps. The same counters apply to BtcAgent, so the
// figures compare. BENCH.txt holds a measured run.
//
// # Concurrency
//
// A Miner's parsing state belongs to its gnet event loop. Everything shared
// between the loops and the upstream goroutines (a slot's miners, its
// current upstream, the queued frames and pending shares, the relayed job
// and difficulty) is under that slot's mutex; lines to miners from upstream
// goroutines go through gnet's AsyncWrite with shared, immutable buffers.
// Agent.mu guards the slot list and the miner set; it is taken before a
// slot's mutex, never after.
//
// This package must never trust the pool or the miners: every line, frame,
// queue and name is bounded, and bad input closes that one connection. It
// must not log per share.
//
// With sv2:// pool entries cmd/btcagent runs package sv2proxy (the SV1→SV2 translator) instead
// of this package's slots; sv2.go owns that mode's configuration.
package agent

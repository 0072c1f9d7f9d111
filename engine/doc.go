// Package engine is hashpool's stratum server, a replacement for btcpool's
// sserver (spec/btcpool.md §4 and §5): gnet event loops, stratum and BtcAgent
// sessions, session ids, vardiff, the job repository and broadcast, share
// validation, and the share, solved-share and common-event outputs.
//
// It owns the miner-facing protocol state. It must never import another
// component (jobs, blockmaker, sharelog, ...): it meets them on the bus. It
// must never panic or block an event loop on input from the network, on
// disk or on a full queue, and it must never lose a solved share: each is
// handed off the loop without blocking, journaled (fsync'd, several at once
// with one fsync) in DataDir, only then answered (the miner's true, or the
// agent's SUBMIT_RESPONSE, and every answer after it on that session, are
// held until then), and published with acknowledgement and retries; the
// acknowledgement is journaled too, and at start the shares the bus never
// acknowledged (a crash or a dead bus) are published again before anything
// new. When the journal cannot be written the share is answered and
// published all the same (btcpool answers true and has no journal): the
// failure is logged and counted in Metrics.JournalErrors.
//
// Merged mining (aux.go): a job's aux chains come from jobmaker's
// "mergedMining" job key (or btcpool's nmc* keys for one chain) when
// Topics.AuxSolvedShare is set; every share's hash, already computed, is
// checked against all their targets (auxpow.Targets, no allocation) after
// the duplicate check and whatever the share's status (spec §4.9 h), and each
// chain met becomes an AuxSolvedShare with the parent's durability: journal
// record flagged aux, answer held until fsync, publish to AuxSolvedShare
// until acknowledged, republished at start. RSK is one more target of the
// same set (from the job's rsk* keys, when Topics.RskSolvedShare is set):
// a share meeting it becomes an RskSolvedShare on the same durable path.
//
// User lists live in engine/userlist; the engine registers unknown names
// only on a UserRegistry and within Options.NewUsersPerConn/NewUsersPerIP.
//
// # Stratum V2
//
// With Options.SV2Listen the same loops serve Stratum V2 (sv2.go, sv2jobs.go)
// next to stratum, from the same jobs. OnOpen, OnTraffic and OnClose
// dispatch on the connection's context: an *sv2Conn for connections on the
// SV2 listener. The Noise NX handshake (Options.SV2Responder) and every
// encrypted frame are handled in OnTraffic (no goroutine per connection):
// frames are decrypted in place in gnet's input buffer, at most
// SV2MaxPayload bytes each, and a bad MAC, an oversized frame or a message
// out of order closes the connection; the answers of one read are sealed
// and written with one Write. SV2HandshakeTimeout bounds the handshake and
// SetupConnection, AuthorizeTimeout the first channel, TCPReadTimeout the
// silence after it (sv2Run sweeps the deadlines every second).
//
// Each mining channel owns a Session that never touches the socket: its
// session id (from SessionIDs) is the channel's 4-byte extranonce prefix,
// an extended channel's miner rolls ExtraNonce2Size bytes after it and a
// standard channel's extranonce is the prefix and zeros, so the coinbase is
// btcpool's (4 + 8 bytes) and a share is validated by validateShare exactly
// as an SV1 share: duplicate sets, share records (btcpool's Share format,
// which cannot say SV2), vardiff, the spam guard, events, and a
// block-solving share's journal with its answer held until the fsync (the
// channel's Session.held, sealed by its sv2Wire when releaseHeld writes it).
// A channel's accepted shares are answered with one SubmitShares.Success
// per read.
//
// Each Job becomes one NewExtendedMiningJob (active and future variants)
// and one SetNewPrevHash, serialized once (sv2JobFrames); every extended
// channel and every group gets a copy with its id written over the first
// field. The SV2 job id is the job's short id. A new prevhash is sent as a
// future job and SetNewPrevHash; other jobs are active at once. Standard
// channels of a connection that did not set REQUIRES_STANDARD_JOBS are in
// group channel 1 and share one job message; the others get NewMiningJob
// with their own merkle root, computed when the job is sent (one coinbase
// hash and the branch per channel). Jobs go out when the SV1 broadcast
// does (AddJob's hook) and, for a job that did not go at once, after
// mining_notify_interval (sv2Run); the fan-out is written in slices like
// the SV1 broadcast. SetTarget follows vardiff at each job; after it, jobs
// already sent are checked at the easier of their difficulty and the new
// one. Not implemented: work selection (SetCustomMiningJob is refused),
// Job Declaration and Template Distribution.
//
// # Shutdown
//
// Server.Shutdown (or the end of Serve's context) closes the listening
// sockets first (listener_linux.go: gnet has no call for it), so new
// connections are refused rather than accepted and reset, then drains the
// sessions, flushes share records, stops the loops and waits, bounded, for
// the bus to acknowledge every solved share.
//
// # Buffer lifetimes
//
//   - The bytes gnet's Conn.Peek returns are valid only inside OnTraffic.
//     Sessions parse them in place (codec/stratum and codec/agent values
//     alias them) and copy what they keep (names, agent strings).
//   - loop.out collects the replies for the session being served and is
//     written with Conn.Write before OnTraffic returns; gnet copies what the
//     socket does not take at once, so the buffer is reused at once.
//   - A Job's notify lines are built once and written unchanged to every
//     session: never modify them.
//   - A loop's share-record batch is handed to the publisher goroutine and
//     never touched again by the loop; the bus takes ownership of each record.
//
// # Concurrency and lock order
//
// Sessions, their miners and the loop state belong to one event loop and are
// touched only there (broadcasts and timers reach a loop through
// EventLoop.Execute). Shared state is: JobRepo (its mutex; Job marks are
// atomics), SessionIDs (its mutex), Server.loops (loopsMu), the user list,
// the new-user limiter, the solved-share and publish queues, the idle
// signal and the journal (their own mutexes). No code holds two of these
// locks at once, so there is no lock order to respect; keep it that way.
//
// Broadcasts write a loop's sessions in slices of at most 250 µs; the next
// slice is queued from the pacer goroutine, not from the loop task (gnet
// runs tasks queued by a task before it reads sockets again), so submits on
// the loop are read between slices.
//
// # Choices where btcpool is silent or worse
//
//   - Unknown methods are answered with error 26 "Illegal method" (HEAD
//     btcpool stays silent); mining.extranonce.subscribe answers true;
//     mining.suggest_difficulty is honoured in every state.
//   - Difficulties are powers of two held as exponents from 2^-40 to 2^63, so
//     test networks can use fractional minimums. Share records carry the
//     credited difficulty, at least 1. Agent sessions are told at least 1
//     (set_difficulty and MINING_SET_DIFF): BtcAgent reads set_difficulty
//     with strtoul; their shares are still checked at the session target.
//   - A block-solving share counts in SharesAccepted as well as SharesSolved.
//   - A new session is not handed a stale newest job (a block was found on
//     it); its first job comes with the next broadcast. A job on a new
//     height is the latest job even when its id is lower than the latest's
//     (btcpool keeps the highest id, stale then, and new sessions get no
//     work until the next height).
//   - The §4.3 zero padding for extranonce2 sizes below 8 is used when the
//     coinbase is rebuilt, so every size validates.
//   - Agents that ask for them in agent.get_capabilities get two hashpool
//     extensions (agent.go, session.go; the agent side is package agent):
//     "rejonly" (SUBMIT_RESPONSE only for rejects, plus one cumulative
//     accept per read) and "zstd" (ZSTD_BATCH frames of ordinary frames).
//     A worker registered by an agent is credited on the jobs already sent
//     at the connection's difficulty, instead of "job not found".
//   - Duplicate shares are found by 128 bits of the share's header hash
//     (which covers extranonce1/2, ntime, nonce and version), computed
//     before the duplicate check; the answers keep btcpool's order. Only
//     shares that meet their target are remembered, so a flood of shares
//     without the work cannot fill a set to its bound (then replays would
//     pass); such a share sent again is "low difficulty" again, not 22.
//   - NiceHash clients (agent "nicehash/" in any case, or NiceHashForced)
//     get now*256+short job ids; every submitted job id is read modulo 256,
//     as btcpool's uint8 parse does. Their minimum is the configured
//     NiceHashMinDifficulty (no ZooKeeper watch) unless they set their own.
package engine

// Package loadgen simulates stratum miners and BtcAgent farms against a
// stratum server (hashpool's engine, btcpool's sserver, our btcagent or any
// pool) and measures it.
//
// It owns the simulated clients and the measurements:
//
//   - stratum miners over real TCP: optional mining.configure (version
//     rolling), subscribe, authorize (user.worker), set_difficulty and
//     notify handling, and real shares: each miner builds the header from
//     the notify (coinbase1 ‖ extranonce1 ‖ extranonce2 ‖ coinbase2, merkle
//     branch, per-word swapped prevhash) and grinds nonces with package sha
//     until the hash meets the share target of its difficulty. In
//     SimulatorMode shares are sent without grinding, which only a server
//     that skips the low-difficulty check accepts; in LowDifficulty mode
//     each share is ground to miss both its share target and the network
//     target, so any server hashes and rejects it (a fixed submit rate at
//     no grinding cost, never a block, even on regtest); SubmitDelay
//     separates a connect phase from the submit window; the report's Mode
//     says which was used;
//   - Stratum V2 miners (Scenario.SV2): the Noise NX handshake with the
//     pool's certificate checked against its authority key (codec/sv2/noise;
//     a wrong key or an expired certificate is a handshake failure with the
//     noise package's error), SetupConnection, one standard channel
//     (header-only: the nonce, ntime and version bits are ground on the
//     header of the pool's merkle root and SetNewPrevHash) or extended
//     channel (the miner rolls its extranonce after the pool's prefix) per
//     miner, future jobs activated by SetNewPrevHash, SetTarget honoured
//     (a share ground under a target SetTarget lowered meanwhile is
//     dropped), SubmitSharesStandard/Extended answered by sequence number
//     (SubmitShares.Success acknowledges a batch) and rejects counted by
//     their error_code;
//   - agent farms: many miners behind one connection with btcagent's
//     bootstrap and ex-message frames (spec/btcpool.md §5): REGISTER_WORKER
//     per miner, SUBMIT_SHARE_WITH_TIME[_VER] with extranonce2 =
//     agent session id << 32 | en2, MINING_SET_DIFF, SUBMIT_RESPONSE matched
//     by the shared submit index;
//   - bad-input clients that send garbage, oversize lines, bad params, stale
//     job ids, duplicate and low-difficulty shares and check the error codes;
//   - measurements: sessions up and connect rate, submit→response latency,
//     notify fan-out latency, rejects by code, bytes and segments per
//     direction from TCP_INFO (package loadgen/tcpinfo, the module's one
//     TCP_INFO reader) with a wire estimate, the same counted only after
//     each miner connection's setup (handshake and first job) so shares and
//     new jobs can be priced apart from connecting, and a server's RSS and
//     CPU from /proc.
//
// Run runs a Scenario in this process or, above MaxConnsPerProc connections,
// as several child processes (RunChild) whose reports are merged (Merge).
//
// loadgen must never connect outside 127.0.0.0/8 unless the scenario says
// AllowRemote, never run unbounded (every loop is bounded in count and
// time, the run by Duration ≤ MaxDuration), never import the engine or any
// other component (it speaks to servers only over TCP), and never trust the
// server's input: every line and frame is bounded and validated.
package loadgen

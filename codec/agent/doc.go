// Package agent owns the BtcAgent ex-message frames (spec/btcpool.md §5.2,
// §5.3) that share a connection with stratum JSON lines: a frame starts with
// 0x7F, a command byte and the u16 little-endian total length.
//
// Split finds frame boundaries in a connection's buffered input; one
// Append/Decode pair per command (REGISTER_WORKER, SUBMIT_SHARE and its
// _WITH_TIME/_WITH_VER/_WITH_TIME_VER forms, UNREGISTER_WORKER,
// MINING_SET_DIFF, SUBMIT_RESPONSE) encodes and reads frames with btcpool's
// exact length rules. Nothing allocates.
//
// hashpool's "csub" extension (CmdCompactSubmits) is stateful per
// connection: CompactEncoder (agent side) rewrites runs of submit frames as
// SUBMIT_COMPACT frames and CompactDecoder (pool side) reads them back
// record by record; each keeps the last extranonce2 per session id of the
// one connection it belongs to. They are caller-owned values, fuzzed
// against each other and against a bit-at-a-time reference reader.
//
// Buffer ownership: decoders read from the frame slice the caller passes
// (normally buf[:n] after Split, which aliases gnet's Peek buffer); the byte
// slices in RegisterWorker and SetDiff alias that frame and are valid until
// the caller discards the input. Encoders append to a caller-owned dst.
//
// This package must never do I/O, log, keep state outside the caller-owned
// CompactEncoder/CompactDecoder values, or decide policy
// (ignoring session ids above MaxSessionID, filtering worker names,
// choosing "__default__", counting submit indexes are the engine's and the
// agent's business).
package agent

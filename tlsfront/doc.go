// Package tlsfront is the pool side's TLS listener for stratum
// (stratum+ssl): it accepts TLS 1.2+ connections on their own port,
// completes the handshake within a timeout, then opens a plaintext TCP
// connection to the engine's loopback listener, sends a PROXY protocol v1
// header carrying the miner's real address, and pipes bytes both ways with
// two bounded buffers per session. The engine sees an ordinary session
// (the miner's IP in its share records, its own read timeouts, vardiff,
// everything), so TLS sessions are identical to plain ones.
//
// The certificate and key come from PEM files; Reload (and, every
// Options.ReloadCheck, a change of either file's size or modification
// time) loads them again without dropping sessions: new handshakes use
// the new certificate. A bad new pair is logged and the old one kept.
//
// Limits: MaxSessions sessions at once (more are closed at accept),
// MaxHandshakes handshakes in progress (more wait in the kernel's accept
// queue), HandshakeTimeout per handshake, DialTimeout to the engine.
//
// This package owns the TLS listener and the byte pipes only. It must
// never parse or change stratum (the engine does that), never log per
// session at Info, and never connect anywhere but Options.Backend.
package tlsfront

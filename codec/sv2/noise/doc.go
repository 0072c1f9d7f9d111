// Package noise owns Stratum V2's encrypted transport (sv2-spec §4):
// the Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256 handshake, the signed
// server certificate, and the encrypted frame format.
//
// The handshake is two messages. The Initiator (a miner or proxy) sends its
// ephemeral key as a 64-byte ElligatorSwift encoding (Act1Len bytes); the
// Responder (the pool) answers with its ephemeral key, its static key and the
// SIGNATURE_NOISE_MESSAGE, both encrypted (Act2Len = 234 bytes: the spec's
// "170" in §4.5.2 predates the 64-byte EllSwift keys; 64+80+90 is what its
// own field list adds up to and what SRI sends). ECDH is BIP324's v2_ecdh
// (x-only ElligatorSwift ECDH hashed with both encodings under the
// "bip324_ellswift_xonly_ecdh" tag); MixKey/MixHash/HKDF are Noise's over
// SHA-256; the AEAD is ChaCha20-Poly1305 with the 96-bit nonce
// 0x00000000 || LE64(n). The initiator checks the certificate: a BIP340
// signature by the pool's authority key over
// SHA-256(version || valid_from || not_valid_after || server x-only key),
// and the validity window with a small clock-skew allowance.
//
// After the handshake a Session encrypts each Stratum V2 frame as two AEAD
// messages: the 6-byte header (22 bytes with its MAC) and the payload, cut
// into 65519-byte blocks of at most 65535 bytes with their MACs
// (CiphertextLen). The spec defines no rekeying; a cipher whose 64-bit nonce
// would reach 2^64-1 refuses to work (ErrNonceExhausted) and the connection
// must be closed.
//
// Conn wraps a net.Conn for plain-net roles (tests, a farm proxy's upstream,
// sv2pool). An event-loop server drives Responder and Session itself:
// Responder.Respond on the first 64 bytes (it keeps no per-connection state,
// so it may run off the loop), then Session.OpenFrame on the buffered input,
// which decrypts in place and remembers a header whose payload is still
// arriving, and Session.Seal into the loop's output buffer.
//
// Keys: btcec/v2 (secp256k1, ellswift, BIP340 schnorr); AEAD:
// golang.org/x/crypto/chacha20poly1305.
//
// This package must never log, keep keys on disk, parse Stratum V2 messages
// (beyond the frame header it must decrypt), or accept a certificate whose
// signature or validity window it has not checked.
package noise

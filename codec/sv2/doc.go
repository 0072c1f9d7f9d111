// Package sv2 owns the Stratum V2 wire format (stratum-mining/sv2-spec
// §3.1–3.2, §3.6, §5.3, §8): the 6-byte frame header (extension_type with the
// channel_msg bit, msg_type, U24 msg_length), the spec's data types with their
// length bounds, and one Append/Decode pair for every message of the Common
// and Mining protocols.
//
// Encoders are append-style: AppendX(dst, *X) appends one complete frame
// (header and payload) to dst and returns the extended slice. A field longer
// than its type allows (a STR0_255 over 255 bytes, a B0_32 over 32, a
// SEQ0_255 over 255 elements) is cut to the bound so the frame stays
// well-formed; callers that build messages from untrusted data call the
// message's Check method first. Decoders take a frame's payload (without the
// header) and fill a caller-owned struct; they report one error at the end
// (ErrShort, ErrBounds, ErrTrailing) and never panic.
//
// Buffer ownership: byte-slice fields filled by a decoder (strings, B0_x
// fields, SubmitSharesExtended.TLV) alias the payload passed in and are valid
// until the caller reuses that buffer; slice-of-value fields (merkle paths,
// channel id lists) are appended to the caller's slice from length 0 so their
// capacity is reused. Decoding SubmitSharesStandard and SubmitSharesExtended
// and encoding their answers allocates nothing.
//
// FrameReader reads frames from an io.Reader with a bounded payload size;
// Split finds a frame in an event loop's buffered input.
//
// This package must never do I/O beyond FrameReader's reads, log, keep
// session state, encrypt (that is codec/sv2/noise), or decide policy (which
// messages a role accepts, targets, extranonce allocation).
package sv2

// Package stratum owns the Stratum V1 JSON-RPC line format as btcpool speaks
// it (spec/btcpool.md §4.4-4.7): cutting lines out of a connection's input
// (LineFramer), parsing one line (Parse, ParseRequest, Message.Submit), and
// appending every server message byte for byte (AppendResultTrue,
// AppendError, AppendSubscribeResult, AppendConfigureResult,
// AppendCapabilitiesResult, AppendSetDifficulty, AppendSetVersionMask,
// AppendReconnect, AppendNotify, AppendNotifyFrames; AppendRequest and
// AppendSubmitRequest for the client side). Status holds btcpool's
// status codes and messages.
//
// Parsing is a strict, hand-written JSON scanner that records slices of the
// line instead of building a tree; with one Message reused per connection it
// allocates nothing, for mining.submit and every other method. Strings are
// kept raw (escapes undecoded), which is what btcpool's jsmn parser sees.
//
// Buffer ownership: every []byte a Message, Value, ID or Submit holds aliases
// the line that was parsed, and that line aliases the caller's input buffer
// (with gnet, the bytes returned by Conn.Peek). They are valid only until the
// caller discards or reuses that input; copy (ID.Clone, append) what must
// live longer. Encoders append to a caller-owned dst and never retain it.
//
// This package must never do I/O, log, keep per-connection state beyond what
// its callers hold (Message, LineFramer), decide protocol policy (which
// method is allowed in which state is the engine's business), or allocate
// on the share path.
package stratum

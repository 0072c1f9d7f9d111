// Package gbtmaker turns a node's block templates into RawGbt messages on the bus (btcpool's
// gbtmaker, spec §2).
//
// It owns: checking the node at startup (getnetworkinfo, with btcd's getinfo as the fallback),
// deciding when to fetch a template — at once on every ZMQ hashblock, on every getblocktemplate
// long-poll answer, and whenever the last published template is rpcinterval old (checked every
// second, like btcpool's main loop) — validating it (spec §2.1, via node.ParseTemplate) and
// publishing {"created_at_ts","block_template_base64","gbthash"} with the bus's
// acknowledgement, gbthash being dSHA-256 of the exact response text.
//
// Signals per node: ZMQ when ZMQAddr is set (bitcoind -zmqpubhashblock), long polling unless
// DisableLongPoll (works on bitcoind and btcd), and timed polling always. btcd has no ZMQ, so
// there long polling is the fast path.
//
// It must never: change or re-serialize the node's response (consumers hash it), publish a
// template that failed validation, build jobs (that is jobmaker), or log per template at Info
// (one line per new height).
package gbtmaker

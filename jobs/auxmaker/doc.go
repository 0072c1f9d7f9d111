// Package auxmaker turns an aux chain node's merged-mining work into AuxRawGw messages on
// the bus (btcpool's nmcauxmaker, spec §2.3 and §9).
//
// It owns: choosing the node's RPCs at startup (createauxblock "<address>" when the node's
// help lists both createauxblock and submitauxblock and a coinbase address is configured,
// getauxblock otherwise), deciding when to fetch work — at once on every ZMQ hashblock from
// the aux node, and whenever the last published work is rpcinterval old (checked every
// tick) — validating it (node.CreateAuxBlock / GetAuxBlock) and publishing btcpool's
// AuxRawGw JSON byte for byte with the bus's acknowledgement, keyed by the chain's name.
//
// Several aux chains at once are several Makers, each with its own ChainName and node; they
// may share one topic (the bus key and the chainid tell them apart). The aux merkle tree of
// several chains is built by the consumer (jobmaker, with package auxpow), so every message
// carries merkle_size 1 and merkle_nonce 0, as btcpool's nmcauxmaker sends.
//
// It must never: submit aux blocks (that is blkmaker), build the coinbase or the aux tree
// (jobmaker), publish work that failed validation, or log per message at Info (one line per
// new aux height).
package auxmaker

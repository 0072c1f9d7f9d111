// Package rskmaker turns an RSK node's merged-mining work into RskRawGw messages on the bus
// (btcpool's gwmaker for RSK, GwMakerHandlerRsk).
//
// It owns: polling mnr_getWork (RSK's JSON-RPC 2.0, node.Client.RSKGetWork) every interval
// — RSK's implementation guide asks for every 2 s, RSK blocks coming every ~30 s — with the
// shared fetch loop (jobs/fetchloop; RSK has no ZMQ), validating the answer, and publishing
// btcpool HEAD's RskRawGw JSON byte for byte (codec/btcpool.AppendRskRawGw) with the bus's
// acknowledgement. Like btcpool's gwmaker it publishes every work it fetches, unchanged ones
// included: jobmaker keeps the previous and current work and applies the notify policy.
//
// It must never: submit RSK blocks (blkmaker does), build coinbases (jobmaker), publish work
// that failed validation, or log per work at Info (one line per new RSK work hash).
package rskmaker

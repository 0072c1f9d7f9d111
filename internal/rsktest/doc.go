// Package rsktest is an RSK node's merged-mining JSON-RPC API for tests, written from RSK's
// published specification (the JSON-RPC API page, the merged-mining implementation guide and
// rskj's MnrModule behaviour), because no rskj can run on the machines hashpool is tested on.
//
// It owns: a JSON-RPC 2.0 server on 127.0.0.1 with basic auth ([Start]) that answers
// mnr_getWork with the current work (blockHashForMergedMining, target, parentBlockHash,
// feesPaidToMiner, notify), and verifies every mnr_submitBitcoinBlockPartialMerkle the way
// rskj does before it accepts it: the header is 80 bytes and hashes to the block hash given;
// the coinbase deserializes (no witness) and its last RSKBLOCK: tag is followed by the hash of
// a work this server issued, at most 128 bytes before the end, in the last output; the
// merkle hashes start with the coinbase txid, number one per tree level, and fold to the
// header's merkle root; the header's hash is at or below that work's target. A submission
// that fails any check gets a JSON-RPC error naming it; one that passes is recorded
// ([Server.Submissions]) and moves the chain to new work (notify true). [Server.SetDown]
// makes it drop every connection without an answer, as a node that is down.
//
// It must never: accept a submission it has not verified, be imported by non-test code, or
// listen anywhere but 127.0.0.1.
package rsktest

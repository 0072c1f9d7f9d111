// Package blockmaker turns solved shares into blocks on the chain (btcpool's blkmaker).
//
// It keeps the last block templates (RawGbt) and stratum jobs it has seen, and for every solved
// share rebuilds the full block — header, the exact coinbase the miner hashed (with the witness
// reserved value added whenever the coinbase commits to witness data), the template's
// transactions — submits it to every configured node at once, interprets each node's answer,
// confirms the result against the node's best block, and records it in found_blocks.
//
// Durability. A solved share's offset is committed (acknowledged) only once its block has been
// answered by at least one node and recorded (the found_blocks insert, or the unbuildable-share
// file), so a crash or SIGTERM at any instant leaves it on the topic for the next Maker. While
// no node answers at all the block is retried with a backoff capped at MaxRetryDelay, with an
// ERROR line ("BLOCK NOT YET SUBMITTED") every AlarmInterval, for as long as it takes: there is
// no submit deadline, because only a node can tell that a block is no longer worth submitting,
// and giving up would commit a block nobody has seen. Handling a share twice is harmless: the
// nodes answer "duplicate" and found_blocks keeps one row per block hash (store's unique key).
// A failed commit is logged, not fatal (the share may come again); transient bus errors are
// ridden out with bus.Poll / bus.Commit and only permanent ones end Run.
//
// A share that cannot become a block (undecodable, job or template still unknown after
// UnknownJobWait, bad coinbase or merkle mismatch) is logged at ERROR with everything needed to
// rebuild it by hand and, when UnbuildableFile is set, appended and fsync'd there as one JSON
// line ([UnbuildableShare]) before it is committed.
//
// Shutdown. Cancelling Run's ctx stops at once (a share mid-submit stays uncommitted).
// [Maker.Drain] instead lets Run finish every share already on the topic and return.
//
// Merged mining (aux.go). With Options.AuxNodes, AuxSolvedShares are consumed in a group of
// their own: the auxpow is built from the share (package auxpow; the coinbase branch from the
// job's template for a btcpool share without it), submitted to the node of the share's chain
// (submitauxblock, or getauxblock for nodes without it) and retried while the node does not
// answer, with the parent's alarm lines; an RPC error is the node's verdict. Then the
// found_nmc_blocks row (one per aux block hash) and only then the commit.
//
// RSK (rsk.go). With Options.RSK, RskSolvedShares are consumed in a group of their own: the
// coinbase branch and transaction count come from the job's template (btcpool's blkmaker),
// the five arguments of mnr_submitBitcoinBlockPartialMerkle are built (auxpow.RSKSubmitParams)
// and sent to the RSK node, at most 2 a second (btcpool's bound; excess waits rather than
// being dropped), retried while the node does not answer with the same alarm lines; an RPC
// error is the node's verdict. Then the found_rsk_blocks row (one per parent header) and only
// then the commit. consumeMerged is the one loop of both merged-mining topics.
//
// This package must never decide whether a share is valid work: that is the engine's job. It
// submits what it is given and reports what the nodes say.
package blockmaker

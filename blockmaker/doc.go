// Package blockmaker turns solved shares into blocks on the chain (btcpool's blkmaker).
//
// It keeps the last block templates (RawGbt) and stratum jobs it has seen, and for every solved
// share rebuilds the full block — header, the exact coinbase the miner hashed (with the witness
// reserved value added whenever the coinbase commits to witness data), the template's
// transactions — submits it to every configured node at once with retries, interprets each
// node's answer, confirms the result against the node's best block, and records it in
// found_blocks.
//
// A solved share is never dropped: its bus offset is committed only after the submissions and
// the database insert, so a restart processes it again (a second submit of the same block is
// harmless). A share whose job or template is unknown is logged loudly with everything needed
// to rebuild the block by hand.
//
// This package must never decide whether a share is valid work: that is the engine's job. It
// submits what it is given and reports what the nodes say.
package blockmaker

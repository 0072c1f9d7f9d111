// Package auxpow owns the data structures of merged mining, pure and without I/O:
//
//   - the aux chain merkle tree of several chains at once ([BuildTree]): each chain's slot is
//     fixed by its chain id, the tree height and the merkle nonce ([ExpectedIndex], the Namecoin
//     merged-mining specification as Namecoin Core's CAuxPow::check enforces it), the smallest
//     power-of-two size whose slots do not collide is chosen, and free slots hold zero hashes;
//   - the coinbase commitment ([Tree.AppendCommitment], [AppendCommitment]): "fabe6d6d", the
//     tree root in display (reversed) order, the tree size and the nonce as little-endian
//     int32s; for one chain this is btcpool's 44-byte layout (spec §3.6, §9) with the aux
//     block hash as the root;
//   - the auxpow a chain's node takes in submitauxblock ([AuxPow], [AppendAuxPow],
//     [DecodeAuxPow]): parent coinbase transaction, parent block hash, coinbase merkle branch
//     and index, aux chain merkle branch and index, 80-byte parent header;
//   - per-share target checks on fixed 64-bit limbs ([Targets]): the engine compares the share
//     hash it already computed against every aux target with no allocation and no math/big;
//   - RSK's side of merged mining ([AppendRSKOutput], [RSKSubmitParams]): the "RSKBLOCK:"
//     OP_RETURN output and the arguments of mnr_submitBitcoinBlockPartialMerkle.
//
// Byte order: hashes are [32]byte in internal order (as SHA-256 produces them and as they
// are hashed in merkle trees); the aux node's RPC shows them in display hex (reversed).
//
// It must never do I/O, log, keep global mutable state, import a component package, or
// validate an auxpow on the node's behalf: the aux chain's node is the judge (the tests prove
// every layout against a real namecoind).
package auxpow

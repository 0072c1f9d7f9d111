// Package btcdtest runs real btcd nodes in regtest for tests.
//
// It owns: building btcd from the btcd Go module pinned in go.mod ([Binary], [BuildBinary]:
// once per process, cached under os.TempDir() by module version, or $HASHPOOL_BTCD), starting
// a node on free loopback ports with a temporary data dir ([Start]), waiting until its RPC
// answers, stopping it when the test ends (SIGINT, then SIGKILL; the kernel also kills it if
// the test process dies), and a few chain helpers: [Node.MineBlocks] (btcd's generate, paying
// [Node.MiningAddress]), [Node.AddWitnessTx] (a signed P2WPKH spend of a mature coinbase, so
// templates carry witness transactions and default_witness_commitment).
//
// Ports, data dir, process, readiness and stop are internal/nodeproc's, shared with
// internal/namecoindtest; this package owns btcd's flags and the chain helpers.
//
// [Launch] is the same start without a testing.TB, returning errors, for the programs under
// bench/ that measure against a real node; the caller stops the node.
//
// Typical use:
//
//	n := btcdtest.Start(t, btcdtest.Options{})
//	n.MineBlocks(t, 1)
//	tx := n.AddWitnessTx(t)              // mines 100 blocks first on a fresh chain
//	tmpl, err := n.Client().GetBlockTemplate(ctx, "")
//
// Notes on btcd that tests meet: it has no ZMQ and no getnetworkinfo; its
// default_witness_commitment is the bare 32-byte hash (see node.Template.WitnessCommitmentScript);
// a block with a witness commitment must carry the 32-byte reserved value in the coinbase
// witness; submitblock rejections are "rejected: <reason>" strings.
//
// It must never: be imported by non-test code other than those programs, reach anything but
// 127.0.0.1, leave a btcd process or data dir behind, or skip a test silently (a test is
// skipped, with the reason, only when btcd cannot be built on this machine outside CI).
package btcdtest

// Package namecoindtest runs a real Namecoin Core node (namecoind) in regtest for tests: the
// aux chain of merged mining, and a Bitcoin Core–family node with ZMQ, getblocktemplate and
// submitblock as Core serves them.
//
// It owns: finding the binary ([Binary]: $NAMECOIND, else shared/bin/namecoind in the
// directory tree above the test, else /work/shared/bin/namecoind, else namecoind on PATH),
// proving it runs (`namecoind -version`, which fails at once when libzmq5 is missing),
// starting a node on free loopback ports with a temporary data dir, RPC basic auth and ZMQ
// hashblock ([Start], [Launch]), mining the first block so that createauxblock answers
// (on a fresh chain still in initial block download it never returns and wedges the node's
// RPC), and stopping it by its pid (SIGTERM, then SIGKILL; the kernel also kills it if the
// test process dies).
//
// Ports, data dir, process, readiness and stop are internal/nodeproc's, shared with
// internal/btcdtest; this package owns namecoind's flags and the first block.
//
// Typical use:
//
//	n := namecoindtest.Start(t, namecoindtest.Options{})
//	blk, err := n.Client().CreateAuxBlock(ctx, n.Address)
//
// When the binary is missing or cannot run, a test is skipped with the reason, unless CI (internal/ci) is
// set: there it fails, because .ci/run installs the runtime package (apt-get install libzmq5).
//
// It must never: be imported by non-test code other than programs that measure against a
// node, reach anything but 127.0.0.1, leave a namecoind process or data dir behind, or skip a
// test silently.
package namecoindtest

// Package ckpool runs ckpool (ckolivas' C stratum pool) beside `hashpool
// run` on one btcd regtest node and measures both with the same loadgen
// scenarios, alternating, for the side-by-side table of bench/RESULTS.md
// (issue 11): RSS per idle session, server CPU per submit across rates,
// submit p99 with and without a job broadcast, new-block fan-out spread,
// connect rate and RSS under sustained load.
//
// It owns:
//   - [Proxy], a JSON-RPC proxy that rewrites ckpool's bitcoind-style
//     requests into ones btcd answers (jsonrpc, id and params added;
//     getblocktemplate asks for coinbasevalue);
//   - starting ckpool (a config file in a temporary directory, pointed only
//     at loopback) and `hashpool run` (its defaults plus regtest flags and
//     difficulty 1), sampling their RSS and CPU from /proc;
//   - the named scenarios ([Names]) and the table ([Compare], [Report]).
//
// ckpool itself is built outside the repository by build.sh (its source is
// unpacked from a git mirror into $CKPOOL_SRC); this package only runs the
// binary named by $CKPOOL_BIN or found under $CKPOOL_SRC. When there is
// none, [Compare] says so in its report and measures hashpool alone.
//
// It must never: carry or copy ckpool's code, point either pool or the
// proxy at anything outside 127.0.0.0/8, leave a process behind (every
// child is in its own process group, stopped by pid and killed after a
// grace period), or hold more than 20,000 descriptors in one process (the
// clients are loadgen child processes over 127.0.0.x source addresses).
package ckpool

// Command chainlatency measures how long a new block takes to become a stratum
// job: the time from a block connected on the node to the StratumJob for the
// next height on the Job topic (issue 3, "Measure").
//
// It starts one btcd in regtest on free 127.0.0.1 ports with internal/btcdtest's
// Launch (the binary from -btcd, $HASHPOOL_BTCD, or btcdtest's build of
// github.com/btcsuite/btcd at the version go.mod pins), then for each of four combinations — bus/mem or bus/kafka on franz-go's
// in-process cluster (kfake), gbtmaker with long polling or with 1 s polling
// (long poll off, rpcinterval 1 s) — runs the real gbtmaker and jobmaker on a
// fresh bus and mines -blocks blocks with `generate 1`, each after a random
// pause: 0 to -max-pause (1 s) with long polling, 0 to -poll-max-pause (2 s)
// with polling, a whole polling cycle, so that blocks fall at every phase of it
// (the previous job always came right after a poll, so a shorter pause would
// time only the end of the cycle).
// A consumer on the Job topic stamps every job as Poll returns it. One sample is
// t1 - t0, t0 = when `generate` returned (the block is connected by then), t1 =
// when the first job for the mined height + 1 arrived; it can be slightly
// negative because btcd answers the long poll as it connects the block, before
// the generate reply reaches us. The report gives min, median, p90, p99, max per
// combination, the generate RPC's median duration (the window in which the
// block was connected), the rate of RawGbt messages (the effective polling
// period), the machine and its load, as Markdown on stdout and in -out:
//
//	go run ./bench/chainlatency -out bench/chainlatency/RESULTS.txt
//
// With the defaults (50 blocks per combination) a run takes about 4.5 minutes:
// about 0.5 s per block with long polling and 2 s with polling.
//
// The package owns only this measurement. It must never change what it
// measures (gbtmaker, jobmaker and the buses run with their own defaults except
// the options named above), reach anything but 127.0.0.1, or leave btcd or its
// data dir behind (btcd is stopped and the temp dir removed on return, and the
// kernel kills btcd if this process dies). Its test runs every combination for
// two blocks against btcdtest's node, asserting no timings.
package main

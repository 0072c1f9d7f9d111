// Command loadgen runs simulated stratum (V1 or V2) miners, BtcAgent farms and
// bad-input clients against a stratum server and reports what it measured
// (package loadgen does the work; this command only maps flags to a
// loadgen.Scenario, prints the live progress line to stderr and the final
// report as a table on stdout and, with -json, as JSON).
//
//	loadgen -url 127.0.0.1:3333 -miners 1000 -rate 0.1 -duration 60s -pid $(pidof hashpool)
//	loadgen -agents 1 -miners-per-agent 10000 -rate 0.1 -simulator-mode -duration 10m -json farm.json
//	loadgen -miners 10000 -rate 2 -low-difficulty -submit-delay 8s -duration 28s -source-ips 127.0.0.2-127.0.0.21
//	loadgen -sv2 extended -authority-key <the pool's base58 key> -url 127.0.0.1:34254 -miners 1000 -rate 1
//
// The third is 20,000 submits/s that any pool rejects as low difficulty
// after all sessions are up: a server's cost per submit without grinding.
// The last is Stratum V2 miners (Noise, the certificate checked against the
// pool's authority key, one extended channel each; -sv2 standard opens
// header-only standard channels).
//
// Above 18,000 connections it re-executes itself as child processes
// (`loadgen -child`, scenario on stdin, JSON lines on stdout) and merges
// their reports. It refuses targets outside 127.0.0.0/8 without
// -allow-remote. It must never hold state of its own beyond one run.
package main

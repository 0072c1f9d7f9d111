// Package scenarios is the fixed set of load scenarios `make bench` runs
// (bench/suite -scenarios) and their judgement against targets:
//
//   - stratum-10k: 10,000 stratum miners grinding real shares at 1 share/s
//     for 60 s against one engine process, then against the
//     goroutine-per-connection baseline: submit latency, shares/s, server
//     RSS and CPU, and the baseline ÷ engine ratios;
//   - broadcast-10k: 10,000 idle sessions, 10 new-block jobs published over
//     the server's control endpoint: publish → last miner latency, engine
//     vs baseline;
//   - sessions-100k: three engine processes sharing one port with
//     SO_REUSEPORT (server ids 1–3), 45,000 stratum miners from four
//     loadgen processes over 20 source addresses plus 6 agent connections
//     × 10,000 miners: sessions up, connect rate, RSS per process and per
//     session, descriptors per process, shares accepted;
//   - farm-10k: 10,000 miners behind one agent connection at a share per
//     10 s: upstream and downstream wire kbps (TCP_INFO), server costs;
//   - agent-farm-10k (opt-in: only when named, it takes ~23 minutes):
//     10,000 stratum miners at a share per 10 s → one cmd/btcagent process
//     → one enginesrv, 10 minutes after a minute of warm-up, once with the
//     agent's default extensions and once speaking plain btcpool protocol:
//     the agent's upstream link in kbps (TCP_INFO of its upstream socket,
//     borrowed with pidfd_getfd, payload + 52 B per segment), its RSS and
//     CPU (/proc), against BtcAgent's published figures (150/50 kbps, 64 MB,
//     0.05 core) and hashpool's targets (half of each). A full run is
//     recorded in agent-farm-10k.result.json and RESULTS-agent.txt.
//
// Each writes, in the output directory (bench/out), loadgen's JSON report
// (<name>.json, and <name>-baseline.json for the comparisons), a Result
// (<name>.result.json: key numbers, targets with verdicts, command lines)
// and the same as text (<name>.txt). Config.Quick runs each about ten
// times smaller and shorter.
//
// The servers are cmd/enginesrv processes (the engine on the in-process bus,
// or -impl baseline), each started fresh for its scenario and stopped after
// it; the clients are package loadgen, in this process or in children of a
// freshly built cmd/loadgen when one process would exceed 18,000
// connections.
//
// The agent scenario reads another process's sockets (pidfd_getfd of its
// own child, Linux ≥ 5.6) and only reads them.
//
// This package must never touch anything outside 127.0.0.0/8, never leave a
// process behind (every server is stopped with SIGTERM, then killed), never
// run unbounded (every scenario has a fixed duration and count), and never
// let one process hold 20,000 descriptors.
package scenarios

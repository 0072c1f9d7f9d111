// Package jobmaker turns block templates into stratum jobs, with btcpool's
// rules (spec/btcpool.md §3).
//
// It owns:
//   - accepting RawGbt messages from the bus: the 60 s age limit on
//     created_at_ts, the last-20 gbthash duplicate filter and the
//     height-regression guard;
//   - the ordered template book keyed by (height, non-empty, gbt time),
//     template lifetimes and the "never remove the last template" rule;
//   - deciding when to emit a job (new height, empty→full at the same height,
//     merged-mining update, periodic refresh every job_interval);
//   - building the job: the coinbase transaction split around the 12-byte
//     extranonce placeholder, the merkle branch, prevHashBeStr and the job id
//     (unix time << 32 | per-second counter << 8 | server id);
//   - publishing the StratumJob JSON to the bus.
//
// It must never talk to a node (gbtmaker does), never import another
// component (components meet on the bus), never keep a template longer than
// its lifetime unless it is the only one left, and never panic on a message
// from the bus: a bad message is logged and dropped.
package jobmaker

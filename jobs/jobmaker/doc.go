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
//     (unix time << 32 | per-second counter << 8 | server id), resumed at start
//     after the last job on the job topic so that a restart within the same
//     second never repeats an id or makes a lower one (btcpool starts from the
//     clock);
//   - merged mining (spec §9): the latest AuxRawGw work per aux chain id (dropped
//     60 s after its created_at_ts), the aux tree over every chain (auxpow.Merge)
//     and its 44-byte commitment in the scriptSig after coinbase_info, before the
//     extranonce placeholder; btcpool's nmc* job keys from the first chain (by
//     chain id) and hashpool's "mergedMining" key listing every chain; the
//     notify policies 0/1/2 (aux_merged_mining_notify);
//   - RSK merged mining (rsk.go): RskRawGw from the RSK topic (refused when older than 60 s
//     on arrival), btcpool's previous and current work, dropped from jobs 120 s after its
//     created_at_ts, the RSKBLOCK: OP_RETURN output as the coinbase's last output (after
//     the extranonces, as RSK requires), btcpool's rsk* job keys and isRskCleanJob, and the
//     policies 0/1/2 of rsk_merged_mining_notify (never / the node's notify flag / a new
//     RSK hash);
//   - publishing the StratumJob JSON to the bus.
//
// It must never talk to a node (gbtmaker does), never import another
// component (components meet on the bus), never keep a template longer than
// its lifetime unless it is the only one left, and never panic on a message
// from the bus: a bad message is logged and dropped.
package jobmaker

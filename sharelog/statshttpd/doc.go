// Package statshttpd is btcpool's statshttpd: live share statistics.
//
// It reads share records (from about the last hour of the share topic at start) and common
// events, keeps per worker, per user and for the pool the accepted difficulty of the last
// 5 min / 15 min (10 s slots) and 1 h (60 s slots) and the stale and rejected difficulty of the
// last 15 min / 1 h (60 s slots, rejects per status), writes them to mining_workers every 15 s, records
// worker names and miner agents from worker_update events, and serves btcpool's HTTP API:
// "/", "/worker_status" and "/flush_db_time", with btcpool's JSON shapes (and err_no 2
// "service is initializing..." until it has caught up with the share topic).
//
// A worker's stale or rejected share counts at most 4× its last accepted difficulty, as in
// btcpool, so that rejects at an outdated high difficulty do not swamp the numbers. Shares
// older than an hour are ignored; workers silent for an hour are dropped every 30 min.
//
// Restarts: given the share-log directory (Options.ShareLogDir, as in `hashpool run`) it
// rebuilds the windows, accept counts and last share time and IP from the last hour of the
// day files before it consumes the topic, reading each file up to the lengths of one
// sharelogger checkpoint; when that checkpoint counts the bus it consumes (the same
// in-process bus, or Kafka with Options.DurableOffsets) the topic's records at or below the
// checkpointed offsets are not counted again, so every share counts once whatever the topic
// replays. It answers "initializing" until rebuilt and caught up. Bus errors are ridden out
// (bus.Poll); Drain ends Run once the topic is exhausted, for an ordered shutdown.
//
// It must never block the share consumer on the database: flushes run on their own ticker.
// It never writes the share log.
package statshttpd

// Package baseline is the stratum server a competent engineer would write in
// a day with the standard library, kept as the yardstick for hashpool's
// engine: one goroutine per connection, bufio.Reader/Writer, encoding/json
// for every request and reply, a mutex-protected session set, and a
// broadcast that iterates the sessions (split over GOMAXPROCS goroutines)
// and writes the notify line, marshalled once per job, under each
// connection's write lock.
//
// It does the same protocol work as the engine in the benchmark scenarios:
// mining.subscribe (extranonce1 %08x from a counter, extranonce2 size 8),
// mining.authorize (any user), mining.configure (version rolling),
// mining.set_difficulty, mining.notify fan-out, and mining.submit with real
// validation (coinbase1‖extranonce1‖extranonce2‖coinbase2 → merkle root →
// header → double SHA-256 against the share target, duplicates, unknown
// jobs, time and version-mask checks), answering with btcpool's error codes
// (spec/btcpool.md §4.9). It shares package sha with the engine, so a
// comparison isolates the server design from the hash implementation.
//
// Deliberately left out, all of which only make the baseline cheaper: vardiff
// (one fixed difficulty), share records and the bus, solved-share journaling,
// agent sessions, the user list, the spam guard.
//
// What this package must never do: be imported by the pool itself. It exists
// for bench/ and loadgen comparisons (cmd/baselinesrv serves it).
package baseline

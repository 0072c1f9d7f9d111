// Package mem is the in-process bus: the bus of `hashpool run` and of most
// tests. It implements bus.Bus with the same semantics as bus/kafka: one
// partition (0) per topic, offsets from 0, bounded retention per topic,
// Start.Tail, and consumer groups.
//
// Two modes:
//
//   - Memory only (New, or Open without Options.Dir): each topic is a bounded
//     in-memory log (Retention: 256k records / 64 MiB of key+value by
//     default). A record is appended inside Publish; done callbacks run later
//     on the producer's goroutine. Nothing survives the process: tests and
//     throwaway setups only.
//
//   - Durable (Open with Options.Dir): in-process mode must not be weaker than
//     Kafka mode. Every topic is a log of segment files in Dir/<topic>/
//     (records framed with length, CRC32C, offset and publish time; sealed
//     segments have a summary <base>.idx), group offsets are append-only CRC'd
//     records in Dir/groups.log, and Dir/LOCK is flocked so that one process
//     at a time opens it. One writer goroutine takes everything queued on the
//     whole bus, writes it (a record is visible to consumers once its write
//     syscall returned, so it survives a kill -9 of the process), and hands
//     the batch to a syncer, which fsyncs every file dirtied since its last
//     round (group commit; the writer meanwhile writes the next batch); then
//     the done callbacks run in Publish order and PublishSync returns. So an
//     acknowledgement covers every record published before it on any topic of
//     the bus: when a solved share is acknowledged, the template and job it
//     was built from are durable too. Any write or fsync error fails the done
//     callbacks of every record it covers with that error (never a silent
//     ack), is logged and counted, and the next batch tries again (on a new
//     segment). Open cuts a torn tail (logging what it cut), reloads offsets
//     and committed group offsets (clamped to the topic's end), so Start.Tail
//     and Start.Group mean after a restart what they meant before. In
//     memory a topic keeps only the records some open consumer has not
//     taken yet (a record every reader's Poll returned is on disk and is
//     dropped at once, so consumers that keep up cost no memory), bounded by
//     CacheBytes (16 MiB); records that bound drops before a reader took
//     them are counted (TopicStats.CacheDropped) and the reader reads them
//     from the files, so a slow consumer loses nothing while the disk
//     retains it, and a publisher never waits on it. Retention deletes
//     whole old segments (MaxBytes, MaxRecords, MaxAge; PoolRetention gives the
//     sizes recommended for `hashpool run`).
//
// The package owns the logs, their files and the group offsets. It must never
// copy, inspect or reorder record bytes beyond framing them (Publish takes
// ownership, consumers share them read-only), never acknowledge a record
// before it is fsynced (durable mode), never block a publisher on disk or on a
// slow consumer (only on the producer's MaxBufferedRecords), and never log per
// record. It logs (through Options.Logger) only what Open cut or clamped, disk
// errors and deleted segments.
package mem

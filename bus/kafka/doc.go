// Package kafka is the Kafka implementation of bus.Bus, on franz-go (kgo). It
// interoperates with a btcpool deployment: btcpool's default topic names,
// partition 0 by default (btcpool's gbtmaker produces there and its sserver reads
// only partition 0), plain record values in the formats codec/btcpool defines.
//
// Producers are one kgo.Client each, so that every producer has its own linger:
// 0 for templates, jobs and solved shares (franz-go's default linger is 10 ms,
// so it is always set explicitly), up to 1 s for share records like btcpool's
// queue.buffering.max.ms. Producers use acks=all with idempotent writes; failed
// deliveries are retried by franz-go until the delivery timeout and then passed
// to the record's done callback, never dropped.
//
// Consumers without a group read partitions directly from offsets resolved when
// NewConsumer is called (latest, or latest minus Tail, btcpool's OFFSET_TAIL).
// Group consumers join a Kafka consumer group with auto-commit off; a new group's
// starting offsets are committed at NewConsumer so that the start does not depend
// on when the group finishes joining.
//
// The package owns the franz-go clients and the Kafka requests for topics,
// offsets and commits. It must never interpret record bytes, never commit an
// offset the caller did not pass to Commit (except a new group's start), and
// never log unless given a *slog.Logger.
package kafka

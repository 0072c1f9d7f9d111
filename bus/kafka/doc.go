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
// # Errors
//
// Errors that retrying cannot cure are marked bus.Permanent: authorization and
// SASL failures, a session timeout outside the broker's group.min/max
// session timeout, a record over the broker's message.max.bytes, an invalid
// topic or group name, a topic that does not exist when CreateTopics is off
// (at NewConsumer, or found gone twice in a row by a consumer's topic check).
// Everything else is transient, to be ridden out with bus.Poll and bus.Commit:
// connection errors, timeouts, NOT_COORDINATOR, REBALANCE_IN_PROGRESS,
// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, ErrNotAssigned. A closed consumer or
// producer reports bus.ErrClosed (also permanent).
//
// # A broker pause or restart
//
// What a caller sees while the broker is stopped (SIGSTOP, a stalled VM, a
// long GC) or down (killed, restarting), with the defaults:
//
//   - A consumer without a group: Poll blocks and returns nothing; franz-go
//     retries its fetches. Once the broker is back, Poll returns the records
//     from where it stopped, none twice.
//   - A group member: while the broker is away its heartbeats fail, and Poll
//     returns a transient error ("unable to join group session: ..."), once
//     per failed session; bus.Poll logs it once per incident and retries with
//     backoff. A pause longer than Config.SessionTimeout (45 s) makes the
//     broker drop the member when it resumes: the next heartbeat gets
//     UNKNOWN_MEMBER_ID, the member rejoins by itself (the Consumer is never
//     recreated) and the group rebalances. Poll then returns records again
//     (measured on kfake: 10 ms to 4 s after the broker came back), starting
//     at the group's last commit: records polled but not committed before the
//     pause come again, possibly to another member. Consumers must therefore
//     be idempotent or deduplicate (by share/block identity, or by partition
//     and offset).
//   - Commit during the outage fails after at most RequestTimeout per try;
//     a commit of the old generation gets ILLEGAL_GENERATION or
//     UNKNOWN_MEMBER_ID, and a commit for a partition the rebalance took away
//     (or has not yet given back) gets ErrNotAssigned without a request. All
//     are transient: once the member has rejoined, committing newer offsets
//     works. A commit given up on only means the records may come again.
//   - A producer keeps accepting records (Publish blocks only at
//     MaxBufferedRecords) and delivers them, in order, once the broker is
//     back; done(nil) then. The produce request stuck on the stopped broker
//     times out after 30 s + franz-go's 10 s overhead and is retried on a new
//     connection with the same producer id and sequence numbers, so a batch
//     the broker did write before it stopped is recognized as a duplicate and
//     not written twice. A record not delivered within its delivery timeout
//     gets done(err) (transient): the caller decides (sserver republishes
//     solved shares). franz-go checks the timeout only between requests, so
//     done(err) comes at the latest one produce request timeout + 10 s after
//     the delivery timeout (with the defaults, 120 to 160 s after Publish;
//     with DeliveryTimeout 2 s, 11 s). Such a record may still have been written, and
//     publishing it again may then duplicate it.
//   - A broker that comes back empty (a new broker on the same address, a
//     topic deleted and created again) has new topic ids, which franz-go
//     will not follow by itself: consumers notice after 10 s without records
//     (one metadata request), return a transient error saying so, and read
//     the new topic from its start; producers purge the old topic on their
//     first UNKNOWN_TOPIC_ID failure (those records get transient errors) and
//     go on with the new one. What the old broker held is gone.
//
// Defaults, chosen so that a pause of 60 s and more loses nothing: the
// delivery timeout is 120 s (Kafka's delivery.timeout.ms), so records
// published during a pause of up to about 2 minutes are delivered rather than
// failed; the produce request timeout is 30 s (Kafka's request.timeout.ms),
// short enough that a retry goes to a new leader on a real cluster soon after
// a failover; retries are unlimited within the delivery timeout;
// MaxBufferedRecords (1<<20) holds 2 minutes of share records at 8,700
// shares/s (beyond that Publish blocks; sharelog's publisher then drops and
// counts). The idempotent producer (kfake and Kafka ≥ 0.11 support it) makes
// those retries duplicate-free on the log. AllowIdempotentProduceCancellation
// lets the delivery timeout fail a record whose request is in flight, so that
// done is always called in bounded time even if the broker never answers.
//
// The package owns the franz-go clients and the Kafka requests for topics,
// offsets and commits. It must never interpret record bytes, never commit an
// offset the caller did not pass to Commit (except a new group's start), and
// never log unless given a *slog.Logger.
package kafka

// Package mem is the in-process bus: the default for `hashpool run` and for most
// tests. It implements bus.Bus with the same semantics as bus/kafka: one
// partition (0) per topic, offsets from 0, bounded retention per topic (by record
// count and by bytes), Start.Tail, and consumer groups whose committed offsets live
// in memory for the life of the Bus.
//
// A record is "durably accepted" once it is appended to its topic's log, which
// happens inside Publish; done callbacks still run later on the producer's own
// goroutine, never inside Publish, exactly as with Kafka.
//
// The package owns the in-memory logs and group offsets. It must never copy or
// inspect record bytes (Publish takes ownership, consumers share them read-only),
// never log, and never block a publisher on a slow consumer: consumers that fall
// behind retention skip ahead instead.
package mem

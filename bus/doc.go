// Package bus defines how hashpool's components talk to each other: named topics,
// producers with delivery acknowledgement, and consumers that start at the latest
// record, a fixed number of records before the end, or where a consumer group last
// committed.
//
// Two implementations share these semantics: bus/mem (in-process, used by
// `hashpool run` and most tests; durable on disk when given a directory) and
// bus/kafka (franz-go, interoperable with a btcpool deployment: same default
// topic names, partition 0 by default). The conformance suite in bus/bustest
// runs the same tests against both, and its reopen suite against the durable
// in-process bus.
//
// The package owns only the interfaces, the topic names and the shared error
// values. It must never know a message format (codec/ owns those), never log, and
// never import a component package.
//
// Delivery contract, the reason this package exists: a record handed to
// Producer.Publish is either acknowledged with done(nil) once the bus holds it
// durably, or reported with done(err). It is never dropped silently (btcpool lost
// a solved block that way, its issues #202 and #463). Consumers in a group commit
// only after their own side effect is durable, so a crash replays instead of
// losing records.
//
// "Durably" means: with Kafka, acknowledged by the brokers (acks=all); with
// the durable bus/mem, written and fsynced to its segment file, and an
// acknowledgement also covers every record published earlier on any topic of
// that bus. In-process mode is never weaker than Kafka mode; only the
// memory-only bus/mem (tests) holds records in memory alone.
package bus

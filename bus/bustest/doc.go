// Package bustest is the conformance suite for bus.Bus implementations: the same
// tests and benchmarks run against bus/mem (memory-only and durable) and
// bus/kafka (on kfake), so that they keep the same semantics. RunReopen adds
// what a durable bus promises across a restart (records, offsets, group
// offsets, Tail). It is imported only by tests.
//
// It owns the tests' expectations of the bus contract. It must never reach into an
// implementation's internals: everything goes through the bus interfaces and the
// Env the implementation's test provides.
package bustest

// Package bustest is the conformance suite for bus.Bus implementations: the same
// tests and benchmarks run against bus/mem and bus/kafka (on kfake), so that the
// two keep the same semantics. It is imported only by tests.
//
// It owns the tests' expectations of the bus contract. It must never reach into an
// implementation's internals: everything goes through the bus interfaces and the
// Env the implementation's test provides.
package bustest

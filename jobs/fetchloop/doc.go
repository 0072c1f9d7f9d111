// Package fetchloop decides when a work maker (gbtmaker, auxmaker, rskmaker) fetches work from
// its node and publishes it: once at start, at once on every trigger (a ZMQ hashblock from the
// node, or a caller's Trigger), whenever the last published work is RPCInterval old (checked
// every Tick, btcpool's 1 s main loop), and at the next tick after a failed fetch.
//
// It owns the timing options every maker shares ([Timing]: defaults and validation in one
// place), the loop ([Loop.Run]), the ZMQ hashblock subscriber that feeds it, and what every
// maker does around a fetch: the failure streak (one Warn line, retry at the next tick), the
// acknowledged publish with its timeout and counters ([Loop.Publish]), and the node client
// and the submit address the maker's messages advertise.
//
// It must never: decide what to fetch or build a message (the maker's fetch function does), run two
// fetches at once (fetches are serialised on the loop), or block a trigger (triggers that
// arrive while one is pending merge).
package fetchloop

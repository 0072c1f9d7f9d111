// Package enginetest is a test helper, used only by tests: it runs a real
// engine.Server on 127.0.0.1 with an in-process bus (bus/mem), publishes jobs
// to it and reads the share records it writes.
//
// It owns: the engine's test options (an ephemeral 127.0.0.1 port, share
// difficulty 2^DifficultyExp, also told to agents as is
// (engine.Options.AgentFractionalDifficulty), version mask 0x1fffe000,
// temporary data and user directories, an embedded user list closed at the
// end), waiting until the engine is ready, the job each call of
// Publish adds (the next height, a fixed coinbase and merkle branch), and
// stopping the engine when the test ends.
//
// Typical use:
//
//	e := enginetest.Start(t, func(o *engine.Options) { o.EventLoops = 2 })
//	e.AddJob(false)
//	// dial e.Addr, submit a share ...
//	rec := e.NextShare()
//
// It must never: be imported by non-test code, listen off the loopback
// interface, or leave an engine running after its test.
package enginetest

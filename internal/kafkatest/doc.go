// Package kafkatest runs a Kafka cluster for tests in a process of its own: franz-go's kfake
// (the in-memory Kafka implementation), started by the kfakeserver command of this package on
// a free 127.0.0.1 port. Unlike an in-process kfake.Cluster, it can be shared by several
// processes, e.g. hashpool components started one per process as a btcpool operator runs them,
// and it can be paused, killed and restarted like a real broker.
//
// It owns: building cmd/kfakeserver (once per test process, with the go command of the test),
// starting it with btcpool's topics seeded (1 partition each, btcpool's layout; the pool's
// Kafka bus does not create topics), waiting until it listens, and stopping it when the test
// ends (SIGCONT, SIGTERM, then SIGKILL; the kernel also kills it if the test process dies).
//
// Typical use:
//
//	brokers := kafkatest.Start(t) // "127.0.0.1:port"
//	b, err := kafka.New(kafka.Config{Brokers: []string{brokers}})
//
// Outages (see Server):
//
//	srv := kafkatest.StartServer(t, kafkatest.Options{Persist: true})
//	srv.Pause()   // SIGSTOP: connections stay open, nothing is answered
//	srv.Resume()  // SIGCONT
//	srv.Restart() // kill -9, then the same port (and, with Persist, the same data)
//
// kfake is in memory unless Options.Persist gives it a data directory; without it a Restart is
// a new, empty broker (new topic ids, no committed offsets). With it the log and the group
// offsets survive a kill -9, but kfake does not rebuild idempotent producers' sequence state
// from its log after one (Kafka does), so a batch in flight at the kill can be written twice.
//
// The binary is kept in os.TempDir()/hashpool-kfakeserver, named by the hash of its contents.
//
// It must never: be imported by non-test code, listen anywhere but 127.0.0.1, or leave a
// kfakeserver process behind.
package kafkatest

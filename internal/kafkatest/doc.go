// Package kafkatest runs a Kafka cluster for tests in a process of its own: franz-go's kfake
// (the in-memory Kafka implementation), started by the kfakeserver command of this package on
// a free 127.0.0.1 port. Unlike an in-process kfake.Cluster, it can be shared by several
// processes, e.g. hashpool components started one per process as a btcpool operator runs them.
//
// It owns: building cmd/kfakeserver (once per test process, with the go command of the test),
// starting it with btcpool's topics seeded (1 partition each, btcpool's layout; the pool's
// Kafka bus does not create topics), waiting until it listens, and stopping it when the test
// ends (SIGTERM, then SIGKILL; the kernel also kills it if the test process dies).
//
// Typical use:
//
//	brokers := kafkatest.Start(t) // "127.0.0.1:port"
//	b, err := kafka.New(kafka.Config{Brokers: []string{brokers}})
//
// The binary is kept in os.TempDir()/hashpool-kfakeserver (one file, replaced by each build).
//
// It must never: be imported by non-test code, listen anywhere but 127.0.0.1, or leave a
// kfakeserver process behind.
package kafkatest

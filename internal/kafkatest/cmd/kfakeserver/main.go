// Command kfakeserver runs franz-go's in-process Kafka cluster (kfake) as a process of its own,
// so that separate hashpool processes in a test can share one cluster, and so that a test can
// pause (SIGSTOP), resume (SIGCONT) or kill -9 the broker. It listens on 127.0.0.1 only, seeds
// btcpool's topics (or -topics), prints one line "kfakeserver listening <host:port>" on stdout
// once the cluster accepts connections, and runs until SIGINT or SIGTERM.
//
// Without -data the cluster keeps everything in memory and forgets it at exit. With -data DIR
// it writes its log, topics, group offsets and producer ids to DIR as it goes (kfake's DataDir;
// record batches are written with plain write(2), so they survive a kill -9 of this process,
// though not a machine crash unless -sync is given) and reloads them when started again on the
// same DIR; topics are seeded only into an empty DIR.
//
// It is a test tool: internal/kafkatest builds and runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hashpool/hashpool/bus"
)

func main() {
	port := flag.Int("port", 0, "loopback port to listen on (0: any free port)")
	topics := flag.String("topics", strings.Join(bus.DefaultTopics().All(), ","), "comma-separated topics to create")
	partitions := flag.Int("partitions", 1, "partitions of each created topic (btcpool's layout: 1)")
	data := flag.String("data", "", "directory to persist the cluster in and reload it from (empty: memory only)")
	sync := flag.Bool("sync", false, "with -data: fsync every record batch")
	flag.Parse()
	if err := run(*port, *topics, *partitions, *data, *sync); err != nil {
		fmt.Fprintf(os.Stderr, "kfakeserver: %v\n", err)
		os.Exit(1)
	}
}

func run(port int, topicList string, partitions int, data string, syncWrites bool) error {
	if port < 0 || port > 65535 {
		return fmt.Errorf("-port %d: want 0..65535", port)
	}
	if partitions < 1 || partitions > 1000 {
		return fmt.Errorf("-partitions %d: want 1..1000", partitions)
	}
	if syncWrites && data == "" {
		return fmt.Errorf("-sync needs -data")
	}
	var topics []string
	for _, s := range strings.Split(topicList, ",") {
		if s = strings.TrimSpace(s); s != "" {
			topics = append(topics, s)
		}
	}
	// Stop on a signal even while the cluster starts.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	// Brokers take records as large as hashpool sends (a main-net RawGbt is several MB).
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "33554432"})}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(partitions), topics...))
	}
	if data != "" {
		opts = append(opts, kfake.DataDir(data))
		if syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	defer c.Close() // with -data: saves the state a restart reloads
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		return fmt.Errorf("cluster listens on %v, want one address", addrs)
	}
	fmt.Printf("kfakeserver listening %s\n", addrs[0])
	<-sig
	return nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hashpool/hashpool/blockmaker"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/childproc"
	"github.com/hashpool/hashpool/internal/kafkatest"
	"github.com/hashpool/hashpool/store"
)

// buildHashpool builds this command (not race-instrumented) into the test's temporary dir.
func buildHashpool(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go") // go test puts its own GOROOT/bin first on $PATH
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "hashpool")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin, "github.com/hashpool/hashpool/cmd/hashpool")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hashpool: %v\n%s", err, out)
	}
	return bin
}

// proc is one hashpool component running in its own process.
type proc struct {
	*childproc.Process
	name   string
	cmd    *exec.Cmd       // for its ProcessState once exited is closed
	exited <-chan struct{} // closed once the process has exited
	log    string          // its stdout and stderr

	stopOnce sync.Once
	stopErr  error
	termSent atomic.Bool // the test sent SIGTERM itself: a clean exit is expected
}

// term sends SIGTERM without waiting; stop then accepts the clean exit it caused.
func (p *proc) term() {
	p.termSent.Store(true)
	_ = p.Signal(syscall.SIGTERM)
}

// startProc runs `bin name args...`, logging into dir/<name>-<n>.log. The process gets SIGKILL
// if the test process dies; the test's cleanup stops it if the test did not.
func startProc(t *testing.T, bin, dir, name string, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, bin, dir, name, nil, args...)
}

// startProcEnv is startProc with extra environment variables (KEY=value).
func startProcEnv(t *testing.T, bin, dir, name string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	for i := 2; ; i++ { // a restarted component gets a new log
		if _, err := os.Stat(logPath); errors.Is(err, os.ErrNotExist) || i > 100 {
			break
		}
		logPath = filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, i))
	}
	cp, err := childproc.Start(childproc.Options{Path: bin, Args: append([]string{name}, args...), Env: env, Log: logPath})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{Process: cp, name: name, cmd: cp.Cmd(), exited: cp.Exited(), log: logPath}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, p.tail())
		}
	})
	return p
}

// running reports whether the process has not exited.
func (p *proc) running() bool { return p.Running() }

// stop sends SIGTERM and waits up to 30 s for a clean exit (then SIGKILL). It returns an error
// when the process had already exited or exits with a failure; stopping a process killed by
// kill9 is not one. Later calls return the first call's result.
func (p *proc) stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.doStop() })
	return p.stopErr
}

func (p *proc) doStop() error {
	if !p.Running() {
		if ws, ok := p.State().Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil // killed on purpose
		}
		if p.termSent.Load() && p.State().Success() {
			return nil // stopped on purpose
		}
		return fmt.Errorf("exited early: %v", p.State())
	}
	if !p.Stop(syscall.SIGTERM, 30*time.Second) {
		return errors.New("did not stop within 30 s of SIGTERM")
	}
	if !p.State().Success() {
		return fmt.Errorf("stopped with %v", p.State())
	}
	return nil
}

// kill9 kills the process as a crash would and waits for it.
func (p *proc) kill9() { p.Kill() }

// tail returns the end of the process's log.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return fmt.Sprintf("--- %s (%s) ---\n%s", p.name, filepath.Base(p.log), b)
}

// waitPort waits until addr accepts TCP connections while every process runs.
func waitPort(t *testing.T, addr string, procs ...*proc) {
	t.Helper()
	eventually(t, addr+" listening", func() bool {
		for _, p := range procs {
			if !p.running() {
				t.Fatalf("%s exited: %v\n%s", p.name, p.State(), p.tail())
			}
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// committedOffset returns the consumer group's committed offset on partition 0 of topic (what
// `kafka-consumer-groups --describe` shows). The pool's Kafka bus commits a new group's start
// when the consumer is created, so a group with an offset reads everything published later.
func committedOffset(ctx context.Context, cl *kgo.Client, group, topic string) (int64, bool) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{0}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		return 0, false
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic == topic && p.Partition == 0 && p.ErrorCode == 0 && p.Offset >= 0 {
				return p.Offset, true
			}
		}
	}
	return 0, false
}

// endOffset returns the end offset of partition 0 of topic: how many records it holds.
func endOffset(ctx context.Context, cl *kgo.Client, topic string) (int64, bool) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = 0
	rp.Timestamp = -1 // latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, false
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic == topic && p.Partition == 0 && p.ErrorCode == 0 {
				return p.Offset, true
			}
		}
	}
	return 0, false
}

// TestKafkaMultiProcess runs the pool as a btcpool operator does: every component in its own
// process (gbtmaker, jobmaker, sserver, blkmaker, sharelogger, slparser, statshttpd), all on
// one Kafka cluster (kfake in another process) and one SQLite database, against a regtest btcd.
// A miner finds a block; then sserver is killed with SIGKILL and restarted, the miner
// reconnects and finds the next block. Blocks must land on the node and in found_blocks, and
// the share log, statshttpd and slparser must count exactly the shares sent. Every component
// must then stop cleanly on SIGTERM.
func TestKafkaMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hashpool and runs btcd, Kafka and seven pool processes")
	}
	bin := buildHashpool(t)
	n := btcdtest.Start(t, btcdtest.Options{})
	brokers := kafkatest.Start(t)

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	dbPath := filepath.Join(data, "pool.db")
	stratum := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	statsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	slAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := n.ClientOptions()
	conf := filepath.Join(dir, "pool.toml")
	cfgText := fmt.Sprintf(`
network = "regtest"
data_dir = %q
[log]
level = "info"
[bitcoind]
rpc_addr = %q
rpc_userpwd = %q
[jobmaker]
payout_address = %q
[sserver]
shutdown_grace_period = 1
[statshttpd]
flush_db_interval = 1
[slparserhttpd]
flush_db_interval = 1
[prometheus]
enabled = false
`, data, o.URL, o.User+":"+o.Password, n.MiningAddress())
	if err := os.WriteFile(conf, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"-c", conf, "-kafka", brokers}
	db := "sqlite://" + dbPath
	sserverArgs := append(append([]string{}, common...), "-stratum", stratum,
		"-min-difficulty", "0.0001", "-default-difficulty", "0.0001")

	var procs []*proc
	t.Cleanup(func() { // runs after every process has been stopped
		if t.Failed() {
			for _, p := range procs {
				t.Log(p.tail())
			}
		}
	})
	start := func(name string, args ...string) *proc {
		p := startProc(t, bin, dir, name, args...)
		procs = append(procs, p)
		return p
	}
	// Consumers before producers, as an operator brings a pool up.
	blkmaker := start("blkmaker", append(common, "-db", db)...)
	start("sharelogger", common...)
	statsd := start("statshttpd", append(common, "-db", db, "-stats-http", statsAddr)...)
	slparser := start("slparser", append(common, "-db", db, "-slparser-http", slAddr)...)
	sserver := start("sserver", sserverArgs...)
	start("jobmaker", common...)
	start("gbtmaker", common...)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	solvedTopic := bus.DefaultTopics().SolvedShare
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	eventually(t, "blkmaker's consumer group", func() bool {
		if !blkmaker.running() {
			t.Fatalf("blkmaker exited\n%s", blkmaker.tail())
		}
		_, ok := committedOffset(ctx, cl, blockmaker.DefaultGroup, solvedTopic)
		return ok
	})
	waitPort(t, statsAddr, statsd)
	waitPort(t, slAddr, slparser)
	waitPort(t, stratum, sserver)
	for _, p := range procs {
		if !p.running() {
			t.Fatalf("%s exited: %v\n%s", p.name, p.State(), p.tail())
		}
	}

	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sdb, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	journal := filepath.Join(data, "sserver", "solved-shares.journal")
	shareLogDir := filepath.Join(data, "sharelog")

	// First sserver: a low-difficulty share, a block, its duplicate, a stale share.
	m := dialMiner(t, stratum, "alice.rig1")
	if m.diff <= 0 || m.diff > 0.001 {
		t.Fatalf("difficulty %v", m.diff)
	}
	job1 := m.job
	if code := m.submit(m.share(job1, true)); code != 23 {
		t.Fatalf("low-difficulty share: code %d, want 23", code)
	}
	good := m.share(job1, false)
	if code := m.submit(good); code != 0 {
		t.Fatalf("good share: code %d", code)
	}
	if code := m.submit(good); code != 22 {
		t.Fatalf("duplicate share: code %d, want 22", code)
	}
	// The block went sserver → Kafka → blkmaker → btcd; btcd's long poll → gbtmaker → Kafka →
	// jobmaker → Kafka → sserver brings the next height as a clean job.
	m.waitCleanJobAfter(job1)
	if h, err := n.Client().GetBlockCount(ctx); err != nil || h != startHeight+1 {
		t.Fatalf("height %d (%v) after the first block, want %d", h, err, startHeight+1)
	}
	if code := m.submit(m.share(job1, false)); code != 21 {
		t.Fatalf("stale share: code %d, want 21", code)
	}
	eventually(t, "the first found_blocks row", func() bool {
		rows, err := sdb.FoundBlocks(ctx, 10)
		return err == nil && len(rows) == 1
	})
	eventually(t, "three records in the share log", func() bool {
		return len(readShareLog(t, shareLogDir)) == 3
	})
	eventually(t, "statshttpd counting the first shares", func() bool {
		d, ok := workerStatus(t, statsAddr)
		return ok && d.AcceptCount == 1 && d.Stale[2] == 1 && d.Reject[2] == 1
	})
	entries, err := engine.ReadJournal(journal)
	if err != nil || len(entries) != 1 || !entries[0].Acked {
		t.Fatalf("journal before the crash: %d entries (%v), want one acknowledged solved share", len(entries), err)
	}

	// sserver crashes; the miner loses its connection. The crash is made to fall between the
	// journaling of the solved share and the journaling of its acknowledgement: the journal
	// is append-only, so cutting the ack off leaves the file such a crash leaves.
	sserver.kill9()
	m.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range m.lines { // the reader goroutine ends when the connection does
	}
	if err := os.Truncate(journal, entries[0].Offset+8+int64(len(entries[0].Msg))); err != nil {
		t.Fatal(err)
	}
	if entries, err := engine.ReadJournal(journal); err != nil || len(entries) != 1 || entries[0].Acked {
		t.Fatalf("journal after the crash: %d entries (%v), want one unacknowledged solved share", len(entries), err)
	}
	sserver = start("sserver", sserverArgs...)
	waitPort(t, stratum, sserver)
	// At start it publishes the unacknowledged share again; blkmaker submits it again (the
	// node already has the block) and must not record it twice.
	eventually(t, "the first solved share published again", func() bool {
		n, ok := endOffset(ctx, cl, solvedTopic)
		return ok && n == 2
	})

	// The restarted sserver takes the current job from Kafka; the miner reconnects and finds the next block.
	m = dialMiner(t, stratum, "alice.rig1")
	if code := m.submit(m.share(m.job, false)); code != 0 {
		t.Fatalf("good share after the restart: code %d", code)
	}
	eventually(t, "the second block on the node", func() bool {
		h, err := n.Client().GetBlockCount(ctx)
		return err == nil && h == startHeight+2
	})
	eventually(t, "blkmaker through the three solved shares", func() bool {
		off, ok := committedOffset(ctx, cl, blockmaker.DefaultGroup, solvedTopic)
		return ok && off == 3
	})
	eventually(t, "two found_blocks rows", func() bool {
		rows, err := sdb.FoundBlocks(ctx, 10)
		return err == nil && len(rows) == 2
	})
	rows, _ := sdb.FoundBlocks(ctx, 10)
	best, err := n.Client().GetBestBlockHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	heights := map[int32]bool{}
	for _, r := range rows {
		heights[r.Height] = true
		if r.WorkerFullName != "alice.rig1" || r.PUID != 1 || r.Rewards <= 0 {
			t.Fatalf("found block %+v", r)
		}
		if r.Height == int32(startHeight+2) && r.Hash != best {
			t.Fatalf("tip %s, found block %s", best, r.Hash)
		}
	}
	if !heights[int32(startHeight+1)] || !heights[int32(startHeight+2)] {
		t.Fatalf("found_blocks heights %v, want %d and %d", heights, startHeight+1, startHeight+2)
	}
	// The restart compacted the journal to the unacknowledged share; it now holds both, acknowledged.
	eventually(t, "both solved shares acknowledged in the journal", func() bool {
		entries, err := engine.ReadJournal(journal)
		return err == nil && len(entries) == 2 && entries[0].Acked && entries[1].Acked
	})

	// Every share that reached Kafka, across both sserver processes, is logged and counted once.
	eventually(t, "four records in the share log", func() bool {
		return len(readShareLog(t, shareLogDir)) == 4
	})
	got := map[btcpool.Status]int{}
	for _, s := range readShareLog(t, shareLogDir) {
		got[s]++
	}
	want := map[btcpool.Status]int{btcpool.StatusSolved: 2, btcpool.StatusStaleShare: 1, btcpool.StatusLowDifficulty: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("share log statuses %v, want %v", got, want)
	}
	eventually(t, "statshttpd counting every share", func() bool {
		d, ok := workerStatus(t, statsAddr)
		return ok && d.AcceptCount == 2 && d.Stale[2] == 1 && d.Reject[2] == 1
	})
	eventually(t, "mining_workers row", func() bool {
		w, ok, err := sdb.MiningWorker(ctx, 1, 0)
		return err == nil && ok && w.AcceptCount == 2 && w.Reject15m == 1 && w.Stale15m == 1
	})
	var ss struct {
		Data map[string][]struct {
			Accept int64 `json:"accept"`
			Stale  int64 `json:"stale"`
			Reject int64 `json:"reject"`
		} `json:"data"`
	}
	eventually(t, "slparser day stats", func() bool {
		getJSON(t, "http://"+slAddr+"/share_stats?user_id=1&worker_id=0&hour=24", &ss)
		d := ss.Data["0"]
		return len(d) == 1 && d[0].Accept == 2 && d[0].Stale == 1 && d[0].Reject == 1
	})

	// An operator's shutdown: SIGTERM to each process, producers first; each must exit 0.
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(); err != nil {
			t.Errorf("%s: %v", procs[i].name, err)
		}
	}
}

// workerStat is one window set of statshttpd's /worker_status.
type workerStat struct {
	Accept      []int64 `json:"accept"`
	Stale       []int64 `json:"stale"`
	Reject      []int64 `json:"reject"`
	AcceptCount int     `json:"accept_count"`
}

// workerStatus asks statshttpd for alice's user-level statistics (worker 0).
func workerStatus(t *testing.T, addr string) (workerStat, bool) {
	t.Helper()
	var ws struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	getJSON(t, "http://"+addr+"/worker_status?user_id=1&worker_id=0", &ws)
	raw, ok := ws.Data["0"]
	if !ok {
		return workerStat{}, false
	}
	var d workerStat
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&d); err != nil || len(d.Stale) < 3 || len(d.Reject) < 3 {
		return workerStat{}, false
	}
	return d, true
}

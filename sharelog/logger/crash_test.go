package logger

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/childproc"
	"github.com/hashpool/hashpool/internal/kafkatest"
	"github.com/hashpool/hashpool/sharelog/logfile"
)

// buildHashpool builds cmd/hashpool into the test's temporary directory.
func buildHashpool(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go") // go test puts its own GOROOT/bin first on $PATH
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "hashpool")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin, "github.com/hashpool/hashpool/cmd/hashpool")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hashpool: %v\n%s", err, out)
	}
	return bin
}

// sharelogger is one `hashpool sharelogger` process.
type sharelogger struct {
	*childproc.Process
	clientID string // the Kafka client.id of this process: the test tells its member from dead ones
}

var loggerStarts atomic.Int64

// startShareLogger starts a logger process; its output is appended to logPath, which every
// logger of the test shares.
func startShareLogger(t *testing.T, bin, brokers, data, logPath string) *sharelogger {
	t.Helper()
	id := fmt.Sprintf("sharelog-crash-%d", loggerStarts.Add(1))
	conf := filepath.Join(filepath.Dir(logPath), id+".toml")
	if err := os.WriteFile(conf, []byte("[kafka]\nclient_id = '"+id+"'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close() // the child has its own descriptor
	p, err := childproc.Start(childproc.Options{Path: bin, Stdout: lf, Stderr: lf,
		Args: []string{"sharelogger", "-c", conf, "-kafka", brokers, "-data-dir", data, "-log-level", "debug"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return &sharelogger{Process: p, clientID: id}
}

// evictGroup removes every member of group but those of the client spare ("" = none), as
// the coordinator does when a member's session times out: a killed logger's member would
// otherwise hold the partition for 45 s. The live logger is spared because kfake never answers
// the JoinGroup of a member removed while that join waits (a real coordinator answers it with
// UNKNOWN_MEMBER_ID): the live member would hang in its join.
func evictGroup(ctx context.Context, t *testing.T, cl *kgo.Client, group, spare string) int {
	t.Helper()
	return leaveGroup(ctx, t, cl, group, func(state string, m kmsg.DescribeGroupsResponseGroupMember) bool {
		return m.ClientID != spare
	})
}

// rebalanceLive removes every member of a Stable group, the live logger's too: it loses its
// partition, its next commit fails (as in issue 10) and it rejoins from the group's last
// commit. In a Stable group no join is waiting, so the member hears UNKNOWN_MEMBER_ID at its
// next heartbeat or commit (see evictGroup for why a waiting join must not be evicted).
func rebalanceLive(ctx context.Context, t *testing.T, cl *kgo.Client, group string) int {
	t.Helper()
	return leaveGroup(ctx, t, cl, group, func(state string, m kmsg.DescribeGroupsResponseGroupMember) bool {
		return state == "Stable"
	})
}

// leaveGroup sends a LeaveGroup for the members of group that leave(state, member) picks and
// returns how many it removed.
func leaveGroup(ctx context.Context, t *testing.T, cl *kgo.Client, group string, leave func(string, kmsg.DescribeGroupsResponseGroupMember) bool) int {
	t.Helper()
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{group}
	resp, err := d.RequestWith(ctx, cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Logf("describe group: %v", err)
		return 0
	}
	l := kmsg.NewPtrLeaveGroupRequest()
	l.Group = group
	for _, m := range resp.Groups[0].Members {
		if !leave(resp.Groups[0].State, m) {
			continue
		}
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.MemberID
		l.Members = append(l.Members, lm)
	}
	if len(l.Members) == 0 {
		return 0
	}
	if _, err := l.RequestWith(ctx, cl); err != nil {
		t.Logf("leave group: %v", err)
	}
	return len(l.Members)
}

// rewindGroup sets the committed offset of an empty group on the share topic to offset.
func rewindGroup(ctx context.Context, t *testing.T, cl *kgo.Client, group string, offset int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(bus.DefaultTopics().Share)
	md.Topics = append(md.Topics, mt)
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil || len(mresp.Topics) != 1 {
		t.Fatalf("metadata: %v", err)
	}
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = bus.DefaultTopics().Share
	rt.TopicID = mresp.Topics[0].TopicID
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition = 0
	rp.Offset = offset
	rp.LeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("rewind group: %v", err)
	}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("rewind group: error code %d", p.ErrorCode)
			}
		}
	}
}

// countNonces reads every share in the share-log directory, by nonce.
func countNonces(t *testing.T, dir string) (map[uint32]int, int) {
	t.Helper()
	got := map[uint32]int{}
	n := 0
	for _, shares := range readDir(t, dir) {
		for _, s := range shares {
			got[s.Nonce]++
			n++
		}
	}
	return got, n
}

// missingRanges lists the nonces below want that got lacks, as ranges ("a-b c").
func missingRanges(got map[uint32]int, want int) string {
	var b strings.Builder
	for i := 0; i < want; i++ {
		if got[uint32(i)] != 0 {
			continue
		}
		j := i
		for j+1 < want && got[uint32(j+1)] == 0 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", i, j)
		} else {
			fmt.Fprintf(&b, "%d", i)
		}
		i = j
	}
	return b.String()
}

// TestCrashExactlyOnce runs `hashpool sharelogger` as a process against a Kafka broker in a
// process of its own while a producer publishes shares with unique nonces, and kills the
// logger with SIGKILL at many instants (right after start, at random times, right as a flush
// lands on disk), evicts it from its group while it runs (a rebalance with a lagging group
// commit) and pauses the broker with SIGSTOP mid-stream. In the end the files must hold every
// published share exactly once.
func TestCrashExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hashpool, runs a Kafka broker and kills sharelogger processes")
	}
	bin := buildHashpool(t)
	br := kafkatest.StartServer(t, kafkatest.Options{Topics: bus.DefaultTopics().All()})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	shareDir := filepath.Join(data, "sharelog")
	logPath := filepath.Join(dir, "sharelogger.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("sharelogger output (tail):\n%s", b)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	kb, err := kafka.New(kafka.Config{Brokers: []string{br.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer kb.Close()
	prod, err := kb.NewProducer(bus.ProducerOptions{Linger: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(br.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	// The producer: total shares at about 1,000 a second, each with a unique nonce.
	const total = 20000
	var acked, failed atomic.Int64
	prodDone := make(chan struct{})
	seed := time.Now().UnixNano()
	if v := os.Getenv("HASHPOOL_CRASH_SEED"); v != "" { // to replay a failed run's schedule
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d", seed)
	go func() {
		defer close(prodDone)
		rng := rand.New(rand.NewSource(seed))
		for i := 0; i < total && ctx.Err() == nil; i++ {
			s := realisticShare(rng, i, time.Now().Unix())
			s.Nonce = uint32(i)
			prod.Publish(bus.DefaultTopics().Share, nil, btcpool.AppendShareMessage(nil, &s), func(err error) {
				if err != nil {
					failed.Add(1)
					return
				}
				acked.Add(1)
			})
			if i%50 == 49 {
				time.Sleep(50 * time.Millisecond)
			}
		}
		fctx, c := context.WithTimeout(ctx, 90*time.Second)
		defer c()
		_ = prod.Flush(fctx)
	}()
	defer prod.Close()

	rng := rand.New(rand.NewSource(seed + 1))
	const group = "sharelog_write_btc"
	// A member killed while its join was in flight joins after the test evicted the group and
	// would hold up the next rebalance for a session timeout (45 s): the dead members of a
	// group that stays rebalancing are evicted again, as the coordinator would do once their
	// sessions expired. live is the client id of the logger running now.
	var live atomic.Pointer[string]
	none := ""
	live.Store(&none)
	wdCtx, wdStop := context.WithCancel(ctx)
	wdDone := make(chan struct{})
	go func() {
		defer close(wdDone)
		stuck := 0
		for wdCtx.Err() == nil {
			select {
			case <-wdCtx.Done():
				return
			case <-time.After(time.Second):
			}
			d := kmsg.NewPtrDescribeGroupsRequest()
			d.Groups = []string{group}
			resp, err := d.RequestWith(wdCtx, admin)
			if err != nil || len(resp.Groups) != 1 || !strings.Contains(resp.Groups[0].State, "Rebalance") {
				stuck = 0
				continue
			}
			if stuck++; stuck >= 4 {
				evictGroup(wdCtx, t, admin, group, *live.Load())
				stuck = 0
			}
		}
	}()
	defer func() { wdStop(); <-wdDone }()
	kills, evictions, pauses, rewinds := 0, 0, 0, 0
	start := func() *sharelogger {
		l := startShareLogger(t, bin, br.Addr, data, logPath)
		live.Store(&l.clientID)
		return l
	}
	cur := start()
	dayFiles := func() int64 {
		var n int64
		names, _ := filepath.Glob(filepath.Join(shareDir, "sharelogBTC-*"))
		for _, p := range names {
			if st, err := os.Stat(p); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	sleep := func(d time.Duration) {
		select {
		case <-ctx.Done():
			t.Fatal("timed out")
		case <-time.After(d):
		}
	}
	for cycle := 0; ; cycle++ {
		streamOver := false
		select {
		case <-prodDone:
			streamOver = true
		default:
		}
		if streamOver && kills >= 10 && evictions >= 3 && pauses >= 1 && rewinds >= 1 {
			break
		}
		if cycle > 200 {
			t.Fatal("too many cycles")
		}
		if !cur.Running() {
			t.Fatalf("sharelogger exited on its own (cycle %d)", cycle)
		}
		mode := cycle % 6
		switch {
		case mode == 3 && pauses < 2:
			// The broker stops answering for a while, then comes back.
			sleep(time.Duration(500+rng.Intn(1000)) * time.Millisecond)
			br.Pause()
			sleep(time.Duration(4000+rng.Intn(3000)) * time.Millisecond)
			restarted := pauses == 0
			if restarted {
				// Issue 10: flushes went on while commits failed; a logger that
				// restarts now resumes from a group commit far behind its files.
				cur.Kill()
				kills++
				cur = start()
				sleep(time.Second)
			}
			br.Resume()
			pauses++
			if restarted {
				evictGroup(ctx, t, admin, group, cur.clientID) // the killed logger's member
			}
			continue // the same logger must ride it out
		case mode == 5:
			// A rebalance: the live member loses its partition and rejoins from the
			// group's last commit, which lags behind what it wrote.
			sleep(time.Duration(1000+rng.Intn(2000)) * time.Millisecond)
			if rebalanceLive(ctx, t, admin, group) > 0 {
				evictions++
			}
			if evictions%2 == 1 {
				continue // the same logger must rejoin and skip what it wrote
			}
			// Issue 10: the logger flushes while its commits fail, and dies: the
			// next one resumes from a group commit behind the files.
			sleep(time.Duration(2500+rng.Intn(1500)) * time.Millisecond)
		case mode == 1:
			// Right as a flush lands: kill as soon as the day files grow.
			before := dayFiles()
			deadline := time.Now().Add(4 * time.Second)
			for dayFiles() == before && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		case mode == 2:
			sleep(time.Duration(50+rng.Intn(300)) * time.Millisecond) // during start and recovery
		default:
			sleep(time.Duration(300+rng.Intn(3000)) * time.Millisecond)
		}
		cur.Kill()
		kills++
		evictGroup(ctx, t, admin, group, "") // the dead member's session "expires" at once
		if mode == 4 {
			// The group's commit moved anywhere in the stream: behind the files (issue 10:
			// a commit that failed with ILLEGAL_GENERATION), the next logger re-reads and
			// skips what its checkpoint holds; ahead of them (another consumer in the group,
			// offsets moved by hand), it must read from its checkpoint, not skip records.
			if n := acked.Load(); n > 0 {
				rewindGroup(ctx, t, admin, group, rng.Int63n(n))
				rewinds++
			}
		}
		cur = start()
	}
	<-prodDone
	if failed.Load() != 0 {
		t.Fatalf("%d shares not acknowledged by the broker", failed.Load())
	}
	want := int(acked.Load())
	if want != total {
		t.Fatalf("%d of %d shares acknowledged", want, total)
	}
	check := func(stage string) {
		got, n := countNonces(t, shareDir)
		dups := 0
		for _, c := range got {
			if c > 1 {
				dups += c - 1
			}
		}
		if n != want || len(got) != want || dups != 0 {
			t.Fatalf("%s: the files hold %d records, %d distinct of %d published, %d duplicates", stage, n, len(got), want, dups)
		}
		for i := 0; i < want; i++ {
			if got[uint32(i)] != 1 {
				t.Fatalf("%s: share %d is in the files %d times", stage, i, got[uint32(i)])
			}
		}
	}
	for waitUntil := time.Now().Add(90 * time.Second); ; {
		if !cur.Running() {
			t.Fatal("sharelogger exited on its own")
		}
		got, n := countNonces(t, shareDir)
		if n >= want {
			break
		}
		if time.Now().After(waitUntil) {
			cp, _ := os.ReadFile(logfile.CheckpointPath(shareDir, "BTC"))
			t.Fatalf("the files hold %d records (%d distinct) of %d 90 s after the stream ended; missing %s; logger %s; checkpoint %s",
				n, len(got), want, missingRanges(got, want), cur.clientID, cp)
		}
		sleep(200 * time.Millisecond)
	}
	check("after the stream")
	// One more crash and restart over the finished stream: the restart re-reads from the
	// group's commit and must skip everything the checkpoint covers.
	cur.Kill()
	kills++
	evictGroup(ctx, t, admin, group, "")
	cur = start()
	sleep(5 * time.Second)
	if !cur.Stop(syscall.SIGTERM, 30*time.Second) {
		t.Fatal("sharelogger did not stop on SIGTERM")
	}
	if st := cur.State(); st == nil || !st.Success() {
		t.Fatalf("sharelogger exit: %v", st)
	}
	check("after a last restart")

	t.Logf("%d shares, %d kills, %d group evictions, %d group commits rewound, %d broker pauses", want, kills, evictions, rewinds, pauses)
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hashpool/hashpool/blockmaker"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/kafkatest"
	"github.com/hashpool/hashpool/store"
)

// kafkaRound is one way of breaking the split pool while a block is in flight.
type kafkaRound struct {
	name      string
	target    string        // "sserver", "blkmaker" or "broker"
	failpoint string        // armed in the target process (restarted with it before the submit)
	killAfter time.Duration // kill -9 the target this long after the submit (-1: after the answer; 0 with a failpoint: none)
	sigterm   bool          // SIGTERM the target right after the submit
	pause     time.Duration // broker: SIGSTOP for this long from just before the submit
}

// TestKafkaKeepsEveryBlockThroughCrashes is the durability proof for the split pool: gbtmaker,
// jobmaker, sserver and blkmaker in their own processes on one kfake broker process. sserver
// and blkmaker are killed at every instant that matters (failpoints, kill -9 at delays,
// SIGTERM) and the broker is paused for 45 s with a block in flight; no process is restarted
// by hand for the pause. At the end: blocks answered `true` = blocks on btcd = found_blocks rows.
func TestKafkaKeepsEveryBlockThroughCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hashpool, runs btcd, a broker and four pool processes, pauses the broker for 45 s")
	}
	bin := buildHashpool(t)
	n := btcdtest.Start(t, btcdtest.Options{})
	kf := kafkatest.StartServer(t, kafkatest.Options{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	stratum := fmt.Sprintf("127.0.0.1:%d", freePort(t))
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
[kafka]
session_timeout = 10
[blkmaker]
drain_timeout = 15
[prometheus]
enabled = false
`, data, o.URL, o.User+":"+o.Password, n.MiningAddress())
	if err := os.WriteFile(conf, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"-c", conf, "-kafka", kf.Addr}
	db := "sqlite://" + filepath.Join(data, "pool.db")
	args := map[string][]string{
		"sserver":  append(append([]string{}, common...), "-stratum", stratum, "-min-difficulty", "0.0001", "-default-difficulty", "0.0001"),
		"blkmaker": append(append([]string{}, common...), "-db", db),
		"jobmaker": common,
		"gbtmaker": common,
	}
	procs := map[string]*proc{}
	start := func(name, fp string) *proc {
		p := startProcEnv(t, bin, dir, name, envOf(fp), args[name]...)
		procs[name] = p
		return p
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Log(p.tail())
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start("blkmaker", "")
	eventually(t, "blkmaker's consumer group", func() bool {
		_, ok := committedOffset(ctx, cl, blockmaker.DefaultGroup, bus.DefaultTopics().SolvedShare)
		return ok
	})
	start("sserver", "")
	start("jobmaker", "")
	start("gbtmaker", "")
	waitPort(t, stratum, procs["sserver"])
	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}

	rounds := []kafkaRound{
		{name: "sserver: before the journal", target: "sserver", failpoint: "engine.solved.before-journal"},
		{name: "sserver: journal fsync'd, not answered", target: "sserver", failpoint: "engine.solved.after-fsync"},
		{name: "sserver: answered, not on the bus", target: "sserver", failpoint: "engine.solved.before-publish@150ms^engine.solved.before-journal"},
		{name: "sserver: Kafka acknowledged, ack not journaled", target: "sserver", failpoint: "engine.solved.after-ack^engine.solved.before-journal"},
		{name: "sserver: kill -9 2 ms after the submit", target: "sserver", killAfter: 2 * time.Millisecond},
		{name: "sserver: kill -9 right after the answer", target: "sserver", killAfter: -1},
		{name: "sserver: SIGTERM with the submit", target: "sserver", sigterm: true},
		{name: "blkmaker: submitted, not recorded", target: "blkmaker", failpoint: "blkmaker.after-submit"},
		{name: "blkmaker: recorded, not committed", target: "blkmaker", failpoint: "blkmaker.after-record"},
		{name: "blkmaker: kill -9 right after the answer", target: "blkmaker", killAfter: -1},
		{name: "broker paused 45 s with the block in flight", target: "broker", pause: 45 * time.Second},
	}
	answered := map[string]string{}
	for i, r := range rounds {
		// Whatever the last round left stopped is started again first (the round's target with
		// its failpoint armed; a running target is stopped cleanly and restarted with it).
		for _, name := range []string{"blkmaker", "sserver", "jobmaker", "gbtmaker"} {
			if name == r.target && r.failpoint != "" {
				if p := procs[name]; p.running() {
					if err := p.stop(); err != nil {
						t.Fatalf("round %d: stopping %s: %v\n%s", i, name, err, p.tail())
					}
				}
				start(name, r.failpoint)
			} else if p := procs[name]; !p.running() {
				start(name, "")
			}
		}
		var target *proc
		if r.target != "broker" {
			target = procs[r.target]
		}
		waitPort(t, stratum, procs["sserver"])
		waitAnswered(ctx, t, n, answered)
		m, err := dialCrashMiner(stratum, "alice.rig1")
		if err != nil {
			t.Fatalf("round %d (%s): %v", i, r.name, err)
		}
		if r.pause > 0 {
			if err := m.waitCurrent(ctx, n); err != nil {
				t.Fatal(err)
			}
			kf.Pause()
		}
		hash, ok, err := m.tryBlock(ctx, n, func(first bool) {
			switch {
			case !first || target == nil:
			case r.sigterm:
				target.term()
			case r.failpoint == "" && r.killAfter >= 0:
				time.Sleep(r.killAfter)
				target.kill9()
			}
		})
		if err != nil {
			t.Fatalf("round %d (%s): %v", i, r.name, err)
		}
		if ok {
			answered[hash] = r.name
		}
		if target != nil && r.failpoint == "" && r.killAfter < 0 {
			target.kill9()
		}
		m.conn.Close()
		if r.pause > 0 {
			if !ok {
				t.Fatalf("round %d (%s): with the broker paused the block-solving share was not answered true; the answer must not wait for the bus", i, r.name)
			}
			time.Sleep(r.pause)
			kf.Resume()
			// No process is restarted: the block must get through on its own.
			resumed := time.Now()
			eventuallyFor(t, 3*time.Minute, "the block found during the pause on the node", func() bool { return nodeHas(ctx, n, hash) })
			t.Logf("the block found during the pause reached the node %v after the broker resumed", time.Since(resumed).Round(100*time.Millisecond))
			for name, p := range procs {
				if !p.running() {
					t.Fatalf("round %d (%s): %s exited during the broker pause: %v\n%s", i, r.name, name, p.State(), p.tail())
				}
			}
		}
		if target != nil {
			select {
			case <-target.Exited():
			case <-time.After(60 * time.Second):
				t.Fatalf("round %d (%s): %s did not die or stop\n%s", i, r.name, r.target, target.tail())
			}
			if r.sigterm && !target.State().Success() {
				t.Fatalf("round %d (%s): SIGTERM exit %v\n%s", i, r.name, target.State(), target.tail())
			}
			if r.failpoint != "" {
				if ws, ok := target.State().Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
					t.Fatalf("round %d: failpoint %s was never hit (exit %v)\n%s", i, r.failpoint, target.State(), target.tail())
				}
			}
		}
		if r.target == "blkmaker" && target != nil {
			// A real coordinator expires a killed member after the session timeout; kfake keeps a
			// member that died mid-join for good and the group never rebalances. Do what the
			// coordinator would: the dead member leaves before the next blkmaker joins.
			leaveGroup(ctx, t, cl, blockmaker.DefaultGroup)
		}
		t.Logf("round %d (%s): answered %v", i, r.name, ok)
	}
	for _, name := range []string{"blkmaker", "sserver", "jobmaker", "gbtmaker"} {
		if p := procs[name]; !p.running() {
			start(name, "")
		}
	}
	sdb, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	checkBlocks(ctx, t, n, sdb, startHeight, answered, len(rounds))
}

// eventuallyFor is eventually with a longer wait: a paused broker's clients need a while to
// rejoin their groups.
func eventuallyFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leaveGroup removes every member of group (the test calls it only when none is alive).
func leaveGroup(ctx context.Context, t *testing.T, cl *kgo.Client, group string) {
	t.Helper()
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{group}
	resp, err := d.RequestWith(ctx, cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Logf("describe group %s: %v", group, err)
		return
	}
	l := kmsg.NewPtrLeaveGroupRequest()
	l.Group = group
	for _, m := range resp.Groups[0].Members {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.MemberID
		l.Members = append(l.Members, lm)
	}
	if len(l.Members) == 0 {
		return
	}
	if _, err := l.RequestWith(ctx, cl); err != nil {
		t.Logf("leave group %s: %v", group, err)
	}
}

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

	"github.com/hashpool/hashpool/blockmaker"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/kafkatest"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/store"
)

// TestKafkaKeepsEveryAuxBlockThroughCrashes is TestRunKeepsEveryAuxBlockThroughCrashes for the
// split pool: gbtmaker, auxmaker, jobmaker, sserver and blkmaker in their own processes on one
// kfake broker process, with namecoind regtest merged. sserver and blkmaker are killed on the
// aux path (failpoints, kill -9 right after the answer); each is restarted. At the end every
// aux-solving share answered is an aux block on namecoind, namecoind's aux blocks and the
// found_nmc_blocks rows are one set with one row each, and the parent blocks keep their promise.
func TestKafkaKeepsEveryAuxBlockThroughCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hashpool, runs btcd, namecoind, a broker and five pool processes")
	}
	nmc := namecoindtest.Start(t, namecoindtest.Options{})
	bin := buildHashpool(t)
	n := btcdtest.Start(t, btcdtest.Options{})
	kf := kafkatest.StartServer(t, kafkatest.Options{Topics: bus.DefaultTopics().WithAux().All()})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	journal := filepath.Join(data, "sserver", "solved-shares.journal")
	conf := writeMergedConfig(t, dir, data, nmc)
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A dead member's partitions move after 10 s; blkmaker drains for at most 15 s on SIGTERM.
	_, err = f.WriteString("\n[kafka]\nsession_timeout = 10\n[blkmaker]\ndrain_timeout = 15\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	stratum := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := n.ClientOptions()
	common := []string{"-c", conf, "-kafka", kf.Addr, "-node", o.URL, "-node-auth", o.User + ":" + o.Password,
		"-payout-address", n.MiningAddress()}
	db := "sqlite://" + filepath.Join(data, "pool.db")
	args := map[string][]string{
		"sserver":  append(append([]string{}, common...), "-stratum", stratum, "-min-difficulty", "0.0001", "-default-difficulty", "0.0001"),
		"blkmaker": append(append([]string{}, common...), "-db", db),
		"jobmaker": common, "auxmaker": common, "gbtmaker": common,
	}
	order := []string{"blkmaker", "sserver", "jobmaker", "auxmaker", "gbtmaker"} // consumers first
	procs := map[string]*proc{}
	start := func(name, fp string) { procs[name] = startProcEnv(t, bin, dir, name, envOf(fp), args[name]...) }
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Log(p.tail())
			}
			t.Logf("namecoind log:\n%s", nmc.LogTail())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start("blkmaker", "")
	eventually(t, "blkmaker's consumer groups", func() bool {
		_, ok1 := committedOffset(ctx, cl, blockmaker.DefaultGroup, bus.DefaultTopics().SolvedShare)
		_, ok2 := committedOffset(ctx, cl, blockmaker.DefaultAuxGroup, bus.DefaultTopics().WithAux().AuxSolvedShare)
		return ok1 && ok2
	})
	for _, name := range order[1:] {
		start(name, "")
	}
	waitPort(t, stratum, procs["sserver"])
	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	auxStart, err := nmc.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sdb, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()

	rounds := []kafkaRound{
		{name: "sserver: answered, aux share not on the bus", target: "sserver", failpoint: "engine.solved.before-publish@150ms^engine.solved.before-journal"},
		{name: "sserver: kill -9 right after the answer", target: "sserver", killAfter: -1},
		{name: "blkmaker: submitauxblock answered, not recorded", target: "blkmaker", failpoint: "blkmaker.aux.after-submit"},
		{name: "blkmaker: found_nmc_blocks written, not committed", target: "blkmaker", failpoint: "blkmaker.aux.after-record"},
		{name: "blkmaker: kill -9 right after the answer", target: "blkmaker", killAfter: -1},
	}
	auxAnswered := map[string]string{}
	parentAnswered := map[string]string{}
	for i, r := range rounds {
		// What the last round killed comes back first and finishes what it left (the journal
		// republished, blocks recorded); only then is the round's target restarted with its
		// failpoint, so the failpoint trips on this round's share, not on a leftover.
		for _, name := range order {
			if !procs[name].running() {
				start(name, "")
			}
		}
		waitPort(t, stratum, procs["sserver"])
		waitAuxSettled(ctx, t, nmc, sdb, journal, auxAnswered)
		waitAnswered(ctx, t, n, parentAnswered)
		if r.failpoint != "" {
			if err := procs[r.target].stop(); err != nil {
				t.Fatalf("round %d: stopping %s: %v\n%s", i, r.target, err, procs[r.target].tail())
			}
			start(r.target, r.failpoint)
			waitPort(t, stratum, procs["sserver"])
		}
		target := procs[r.target]
		m, err := dialCrashMiner(stratum, "alice.rig1")
		if err != nil {
			t.Fatalf("round %d (%s): %v", i, r.name, err)
		}
		tries, err := m.tryAuxBlock(ctx, n, nmc, func(bool) {})
		if err != nil {
			t.Fatalf("round %d (%s): %v", i, r.name, err)
		}
		for _, try := range tries {
			if try.answered {
				auxAnswered[try.aux] = r.name
			}
			if try.accepted {
				parentAnswered[try.parent] = r.name
			}
		}
		if r.failpoint == "" {
			target.kill9()
		}
		m.conn.Close()
		select {
		case <-target.Exited():
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d (%s): %s did not die\n%s", i, r.name, r.target, target.tail())
		}
		if r.failpoint != "" {
			if ws, ok := target.State().Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("round %d: failpoint %s was never hit (exit %v)\n%s", i, r.failpoint, target.State(), target.tail())
			}
		}
		if r.target == "blkmaker" {
			// kfake keeps a member killed mid-join for good; a real coordinator expires it after
			// the session timeout. Both of blkmaker's groups lose the dead member, as they would.
			leaveGroup(ctx, t, cl, blockmaker.DefaultGroup)
			leaveGroup(ctx, t, cl, blockmaker.DefaultAuxGroup)
		}
		t.Logf("round %d (%s): %d shares, last answered %v", i, r.name, len(tries), len(tries) > 0 && tries[len(tries)-1].answered)
	}
	for _, name := range order {
		if !procs[name].running() {
			start(name, "")
		}
	}
	checkAuxBlocks(ctx, t, nmc, sdb, auxStart, auxAnswered, len(rounds))
	checkBlocks(ctx, t, n, sdb, startHeight, parentAnswered, len(rounds))
}

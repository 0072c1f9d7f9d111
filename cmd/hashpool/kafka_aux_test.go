package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/kafkatest"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/store"
)

// TestKafkaMergedMining is merged mining in split mode, as btcpool runs it: gbtmaker,
// auxmaker (btcpool's nmcauxmaker), jobmaker, sserver and blkmaker as separate processes over
// a Kafka broker process, every one with the same [[aux]] table. A share that solves both
// chains on regtest makes a parent block on btcd and an aux block namecoind accepts, and both
// get their rows (found_blocks, found_nmc_blocks).
func TestKafkaMergedMining(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hashpool and runs btcd, namecoind, a broker and five pool processes")
	}
	bin := buildHashpool(t)
	nmc := namecoindtest.Start(t, namecoindtest.Options{})
	n := btcdtest.Start(t, btcdtest.Options{})
	brokers := kafkatest.Start(t, bus.DefaultTopics().WithAux().All()...)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	conf := writeMergedConfig(t, dir, data, nmc)
	stratum := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := n.ClientOptions()
	common := []string{"-c", conf, "-kafka", brokers, "-node", o.URL, "-node-auth", o.User + ":" + o.Password,
		"-payout-address", n.MiningAddress()}
	db := "sqlite://" + filepath.Join(data, "pool.db")

	// Consumers before producers, as an operator brings a pool up.
	blkmaker := startProc(t, bin, dir, "blkmaker", append(common, "-db", db)...)
	sserver := startProc(t, bin, dir, "sserver", append(common, "-stratum", stratum,
		"-min-difficulty", "0.0001", "-default-difficulty", "0.0001")...)
	procs := []*proc{blkmaker, sserver,
		startProc(t, bin, dir, "jobmaker", common...),
		startProc(t, bin, dir, "auxmaker", common...),
		startProc(t, bin, dir, "gbtmaker", common...)}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Log(p.tail())
			}
		}
	})
	waitPort(t, stratum, sserver)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := dialMiner(t, stratum, "alice.rig1")
	mineMerged(ctx, t, m, n, nmc, 2) // each round's job commits to the auxmaker's work, through Kafka
	s, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkMergedRows(ctx, t, s, nmc, 2)
	for _, p := range procs {
		if !p.running() {
			t.Fatalf("%s exited\n%s", p.name, p.tail())
		}
	}
}

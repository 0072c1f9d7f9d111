package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// auxTry is one block-solving share sent in a round: its parent block, the aux block its
// job commits to, whether the pool answered it at all and whether the answer was true.
type auxTry struct {
	parent, aux string
	answered    bool
	accepted    bool
}

// waitAuxCurrent waits until the miner's job builds on btcd's tip (waitCurrent) and commits
// to the aux block namecoind hands out now: createauxblock for the pool's address answers
// the same block until namecoind's tip moves, so the job's share solves a block namecoind
// can still take. It returns that aux hash.
func (m *crashMiner) waitAuxCurrent(ctx context.Context, n *btcdtest.Node, nmc *namecoindtest.Node) (string, error) {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if err := m.waitCurrent(ctx, n); err != nil {
			return "", err
		}
		blk, err := nmc.Client().CreateAuxBlock(ctx, nmc.Address)
		if err != nil {
			return "", err
		}
		if h := auxHashOf(m.en1, m.job); h == blk.Hash {
			return h, nil
		}
		if _, err := m.read(time.Second); err != nil { // a job with the new aux work
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				return "", err
			}
		}
	}
	return "", errors.New("the pool's job never committed to namecoind's current aux block")
}

// tryAuxBlock submits shares that solve a parent and an aux block until one is answered
// true or the pool is gone, doing the round's kill with the first submit. Every try is
// returned: a share answered stale (a block the restarted pool republished moved btcd's tip)
// is still an aux-solving share, journaled before its answer like any other.
func (m *crashMiner) tryAuxBlock(ctx context.Context, n *btcdtest.Node, nmc *namecoindtest.Node, kill func(first bool)) ([]auxTry, error) {
	var tries []auxTry
	for attempt := 0; attempt < 5; attempt++ {
		aux, err := m.waitAuxCurrent(ctx, n, nmc)
		if err != nil {
			return tries, err
		}
		line, id, parent, err := m.blockShare("alice.rig1")
		if err != nil {
			return tries, err
		}
		if err := m.send(line); err != nil {
			return tries, err
		}
		kill(attempt == 0)
		try := auxTry{parent: parent, aux: aux}
		rep, err := m.reply(id, 30*time.Second)
		if err != nil {
			return append(tries, try), nil // the pool is gone: no answer
		}
		try.answered = true
		try.accepted = rep["result"] == true
		tries = append(tries, try)
		if try.accepted {
			return tries, nil
		}
		if e, _ := rep["error"].([]any); len(e) == 0 || e[0] != float64(21) {
			return tries, fmt.Errorf("block-solving share answered %v", rep)
		}
	}
	return tries, errors.New("five block-solving shares in a row were stale")
}

// nmcHas reports whether namecoind has the block (main chain or side branch).
func nmcHas(ctx context.Context, nmc *namecoindtest.Node, hash string) bool {
	var hdr map[string]any
	return nmc.Client().Call(ctx, "getblockheader", []any{hash}, &hdr) == nil
}

// auxRows returns the aux block hashes of found_nmc_blocks and the number of rows.
func auxRows(ctx context.Context, t *testing.T, db *store.Store) (map[string]store.FoundAuxBlock, int) {
	t.Helper()
	rows, err := db.FoundAuxBlocks(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.FoundAuxBlock{}
	for _, r := range rows {
		out[r.AuxBlockHash] = r
	}
	return out, len(rows)
}

// journalAuxHashes returns the aux block hashes of the aux solved shares in the pool's
// solved-share journal (the ones a restarted pool publishes again are among them).
func journalAuxHashes(t *testing.T, path string) []string {
	t.Helper()
	entries, err := engine.ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.Aux {
			continue
		}
		var s btcpool.AuxSolvedShare
		if err := btcpool.DecodeAuxSolvedShare(e.Msg, &s); err != nil {
			t.Fatalf("aux solved share in the journal: %v", err)
		}
		out = append(out, strings.ToLower(s.AuxBlockHash))
	}
	return out
}

// waitAuxSettled waits until every aux block answered so far is on namecoind and blkmaker has
// recorded every aux solved share of the journal (what a restarted pool republishes), so that
// the next round's share commits to aux work nothing in flight can make stale.
func waitAuxSettled(ctx context.Context, t *testing.T, nmc *namecoindtest.Node, db *store.Store, journal string, answered map[string]string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		missing := ""
		for h, round := range answered {
			if !nmcHas(ctx, nmc, h) {
				missing = fmt.Sprintf("the aux block answered in round %q is not on namecoind", round)
			}
		}
		rows, _ := auxRows(ctx, t, db)
		for _, h := range journalAuxHashes(t, journal) {
			if _, ok := rows[h]; !ok {
				missing = "the journal's aux solved share " + h[:12] + " is not in found_nmc_blocks"
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunKeepsEveryAuxBlockThroughCrashes is the parent-block promise for merged mining:
// `hashpool run` (in-process bus, SQLite) on btcd regtest with namecoind regtest merged is
// killed while a share that solves a parent and an aux block is in flight — at failpoints on
// the aux path (journal write, its fsync, the answer, the bus's fsync and ack, between
// submitauxblock and the found_nmc_blocks insert, between the insert and the commit) and by
// kill -9 from outside — then restarted on the same data dir. At the end every aux-solving
// share the pool answered is an aux block namecoind accepted, namecoind's aux blocks and the
// found_nmc_blocks rows are the same set with one row each, every row says accepted, and
// the parent blocks keep their own promise (checkBlocks).
func TestRunKeepsEveryAuxBlockThroughCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hashpool, runs btcd and namecoind and restarts the pool many times")
	}
	nmc := namecoindtest.Start(t, namecoindtest.Options{})
	bin := buildHashpool(t)
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	journal := filepath.Join(data, "sserver", "solved-shares.journal")
	stratum := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := writeMergedConfig(t, dir, data, nmc)
	o := n.ClientOptions()
	args := []string{"-c", conf, "-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", stratum, "-min-difficulty", "0.0001", "-default-difficulty", "0.0001"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	auxStart, err := nmc.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The aux solved share is handed to the journal before the parent's (the engine checks
	// aux targets first), so the first journal batch, publish and ack are the aux share's.
	rounds := []crashRound{
		{name: "before the journal", failpoint: "engine.solved.before-journal"},
		{name: "journal written, not fsync'd", failpoint: "engine.solved.before-fsync"},
		{name: "journal fsync'd, not answered", failpoint: "engine.solved.after-fsync"},
		{name: "answered, aux share not on the bus", failpoint: "engine.solved.before-publish@150ms^engine.solved.before-journal"},
		{name: "bus fsync with the aux share in flight", failpoint: "bus.mem.before-fsync@150ms^engine.solved.before-journal"},
		{name: "bus acknowledged, ack not journaled", failpoint: "engine.solved.after-ack^engine.solved.before-journal"},
		{name: "submitauxblock answered, not recorded", failpoint: "blkmaker.aux.after-submit@150ms^engine.solved.before-journal"},
		{name: "found_nmc_blocks written, not committed", failpoint: "blkmaker.aux.after-record@150ms^engine.solved.before-journal"},
		{name: "kill -9 2 ms after the submit", killAfter: 2 * time.Millisecond},
		{name: "kill -9 right after the answer", killAfter: -1},
	}
	auxAnswered := map[string]string{} // aux hash -> round, for every aux-solving share answered
	parentAnswered := map[string]string{}
	var db *store.Store
	for i, r := range rounds {
		p := startProcEnv(t, bin, dir, "run", envOf(r.failpoint), args...)
		waitPort(t, stratum, p)
		if db == nil { // the pool made and migrated it
			if db, err = store.Open(ctx, "sqlite://"+filepath.Join(data, "pool.db")); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
		}
		waitAuxSettled(ctx, t, nmc, db, journal, auxAnswered)
		waitAnswered(ctx, t, n, parentAnswered)
		m, err := dialCrashMiner(stratum, "alice.rig1")
		if err != nil {
			t.Fatalf("round %d (%s): %v\n%s", i, r.name, err, p.tail())
		}
		tries, err := m.tryAuxBlock(ctx, n, nmc, func(first bool) {
			if first && r.failpoint == "" && r.killAfter >= 0 {
				time.Sleep(r.killAfter)
				p.kill9()
			}
		})
		if err != nil {
			t.Fatalf("round %d (%s): %v\n%s", i, r.name, err, p.tail())
		}
		for _, try := range tries {
			if try.answered {
				auxAnswered[try.aux] = r.name
			}
			if try.accepted {
				parentAnswered[try.parent] = r.name
			}
		}
		if r.failpoint == "" && r.killAfter < 0 {
			p.kill9()
		}
		m.conn.Close()
		select {
		case <-p.Exited():
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d (%s): the pool did not die\n%s", i, r.name, p.tail())
		}
		if r.failpoint != "" {
			if ws, ok := p.State().Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("round %d: failpoint %s was never hit (exit %v)\n%s", i, r.failpoint, p.State(), p.tail())
			}
		}
		t.Logf("round %d (%s): %d shares, last answered %v", i, r.name, len(tries), len(tries) > 0 && tries[len(tries)-1].answered)
	}

	// A last, clean run finishes what the crashes left.
	p := startProcEnv(t, bin, dir, "run", nil, args...)
	waitPort(t, stratum, p)
	checkAuxBlocks(ctx, t, nmc, db, auxStart, auxAnswered, len(rounds))
	checkBlocks(ctx, t, n, db, startHeight, parentAnswered, len(rounds))
	if err := p.stop(); err != nil {
		t.Fatalf("final stop: %v\n%s", err, p.tail())
	}
}

// checkAuxBlocks waits until every answered aux block is on namecoind and namecoind's aux
// blocks and the found_nmc_blocks rows are the same set, one row each, every row accepted
// ("true") with an auxpow whose parent is the row's bitcoin_block_hash.
func checkAuxBlocks(ctx context.Context, t *testing.T, nmc *namecoindtest.Node, db *store.Store, auxStart int64, answered map[string]string, rounds int) {
	t.Helper()
	var onChain map[string]bool
	var rows map[string]store.FoundAuxBlock
	var count int
	deadline := time.Now().Add(90 * time.Second)
	for {
		rows, count = auxRows(ctx, t, db)
		onChain = map[string]bool{}
		tip, err := nmc.Client().GetBlockCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for h := auxStart + 1; h <= tip; h++ {
			var hash string
			if err := nmc.Client().Call(ctx, "getblockhash", []any{h}, &hash); err != nil {
				t.Fatal(err)
			}
			onChain[hash] = true
		}
		missing := 0
		for h := range answered {
			if !onChain[h] {
				missing++
			}
		}
		same := len(rows) == len(onChain)
		for h := range rows {
			same = same && onChain[h]
		}
		if missing == 0 && same {
			break
		}
		if time.Now().After(deadline) {
			var rowKeys []string
			for h, r := range rows {
				rowKeys = append(rowKeys, h[:12]+"="+r.SubmitResponse)
				if !onChain[h] && nmcHas(ctx, nmc, h) {
					rowKeys[len(rowKeys)-1] += "(side branch)"
				}
			}
			t.Fatalf("after 90 s: %d answered aux blocks not on namecoind's chain; chain %v, found_nmc_blocks %v; answered %v",
				missing, keys(onChain), rowKeys, answered)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if count != len(rows) {
		t.Fatalf("found_nmc_blocks has %d rows for %d aux blocks", count, len(rows))
	}
	for h, r := range rows {
		var ap auxpow.AuxPow
		raw, err := hex.DecodeString(r.AuxPow)
		if err != nil || auxpow.DecodeAuxPow(raw, &ap) != nil || sha.DisplayHex(ap.ParentHash()) != r.BitcoinBlockHash {
			t.Fatalf("found_nmc_blocks %s: aux_pow does not decode to its parent %s", h, r.BitcoinBlockHash)
		}
		if r.SubmitResponse != "true" || r.ChainName != "nmc" {
			t.Fatalf("found_nmc_blocks %s: chain %q response %q for a block namecoind has", h, r.ChainName, r.SubmitResponse)
		}
	}
	if len(answered) < rounds/2 {
		t.Fatalf("only %d of %d rounds answered an aux-solving share: the crash points left the pool no time to answer", len(answered), rounds)
	}
	t.Logf("%d rounds: %d aux-solving shares answered, %d aux blocks on namecoind, %d found_nmc_blocks rows", rounds, len(answered), len(onChain), count)
}

package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// auxHashOf returns the aux hash (display hex) the job's coinbase commits to (with the
// session's extranonce1), or "" when the coinbase carries no merged-mining commitment.
func auxHashOf(en1 []byte, j *minerJob) string {
	cb := j.job.AppendCoinbase(nil, en1, make([]byte, 8))
	i := bytes.Index(cb, []byte(auxpow.MergedMiningMagic))
	if i < 0 || len(cb) < i+4+32 {
		return ""
	}
	var h [32]byte
	for k := 0; k < 32; k++ { // the commitment holds the root in display order
		h[31-k] = cb[i+4+k]
	}
	return sha.DisplayHex(h)
}

// waitMergedJob reads the pool's messages until the miner's newest job builds on btcd's tip and
// commits to an aux hash other than not, and returns that hash. (A job with the new aux work
// can come before the one for the new parent height: in split mode the auxmaker's work and
// gbtmaker's template travel on different topics.)
func waitMergedJob(ctx context.Context, t *testing.T, m *testMiner, n *btcdtest.Node, not string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		best, err := n.Client().GetBestBlockHash(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.job != nil && sha.DisplayHex(m.job.prev) == best {
			if h := auxHashOf(m.en1, m.job); h != "" && h != not {
				return h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job on btcd's tip %s committing to new aux work within 60 s", best)
		}
		m.next()
	}
}

// writeMergedConfig writes dir/pool.toml for `hashpool run` on regtest with data dir data and
// namecoind nmc as its one aux chain (ZMQ and a 2 s poll, a job on every new aux height;
// Prometheus, the dashboard and the HTTP ports off unless flags say otherwise) and returns
// its path.
func writeMergedConfig(t *testing.T, dir, data string, nmc *namecoindtest.Node) string {
	t.Helper()
	conf := filepath.Join(dir, "pool.toml")
	cfgText := fmt.Sprintf(`
network = "regtest"
data_dir = %q
[log]
level = "info"
[statshttpd]
port = 0
[slparserhttpd]
port = 0
[prometheus]
enabled = false
[dashboard]
enabled = false
[jobmaker]
aux_merged_mining_notify = 1
[[aux]]
chain_name = "nmc"
rpc_addr = %q
rpc_userpwd = %q
coinbase_address = %q
zmq_addr = %q
rpcinterval = 2
`, data, nmc.RPCURL, nmc.RPCUser+":"+nmc.RPCPass, nmc.Address, nmc.ZMQAddr)
	if err := os.WriteFile(conf, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestRunMergedMining runs `hashpool run` on btcd regtest with namecoind regtest as its aux
// chain ([[aux]]): the auxmaker feeds namecoind's work to jobmaker, whose jobs commit to it;
// each share a grinding miner sends solves a parent block (btcd) and an aux block (namecoind
// accepts the auxpow: its block count rises), found_blocks and found_nmc_blocks agree, and
// hashpool_sserver_aux_solved_total counts the aux blocks.
func TestRunMergedMining(t *testing.T) {
	nmc := namecoindtest.Start(t, namecoindtest.Options{})
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	stratumPort := freePort(t)
	conf := writeMergedConfig(t, dir, filepath.Join(dir, "data"), nmc)
	o := n.ClientOptions()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"-c", conf, "-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", fmt.Sprintf("127.0.0.1:%d", stratumPort), "-stats-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-slparser-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-min-difficulty", "0.0001", "-default-difficulty", "0.0001",
		"-metrics", metricsAddr}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	logw := &syncWriter{b: &strings.Builder{}}
	go func() { runErr <- runCommand(runCtx, "run", args, io.Discard, logw) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pool log:\n%s\nnamecoind log:\n%s", lastLines(logw.String(), 80), nmc.LogTail())
		}
	})
	defer func() {
		stop()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("run did not stop within 60 s")
		}
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", stratumPort)
	eventually(t, "the stratum port", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	m := dialMiner(t, addr, "alice.rig1")
	const rounds = 2
	auxHashes := mineMerged(ctx, t, m, n, nmc, rounds)
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "data", "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ab := checkMergedRows(ctx, t, db, nmc, rounds)
	// Each share met namecoind's target once: one aux block found per round.
	if got := scrapeMetrics(t, "http://"+metricsAddr+"/metrics")["hashpool_sserver_aux_solved_total"]; got != rounds {
		t.Fatalf("hashpool_sserver_aux_solved_total = %v, want %d", got, rounds)
	}
	for _, h := range auxHashes {
		found := false
		for _, a := range ab {
			found = found || a.AuxBlockHash == h
		}
		if !found {
			t.Fatalf("aux hash %s mined but not in found_nmc_blocks %+v", h, ab)
		}
	}
}

// mineMerged sends one share per round on a job committing to new aux work; on regtest each
// solves a parent block (btcd) and an aux block (namecoind), and both chains must grow by one.
// It returns the aux hashes mined.
func mineMerged(ctx context.Context, t *testing.T, m *testMiner, n *btcdtest.Node, nmc *namecoindtest.Node, rounds int) []string {
	t.Helper()
	parent0, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aux0, err := nmc.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var auxHashes []string
	prev := ""
	for r := 1; r <= rounds; r++ {
		h := waitMergedJob(ctx, t, m, n, prev)
		if code := m.submit(m.share(m.job, false)); code != 0 {
			t.Fatalf("round %d: share code %d", r, code)
		}
		eventually(t, fmt.Sprintf("round %d: namecoind block count %d", r, aux0+int64(r)), func() bool {
			c, err := nmc.Client().GetBlockCount(ctx)
			return err == nil && c == aux0+int64(r)
		})
		eventually(t, fmt.Sprintf("round %d: btcd block count %d", r, parent0+int64(r)), func() bool {
			c, err := n.Client().GetBlockCount(ctx)
			return err == nil && c == parent0+int64(r)
		})
		auxHashes = append(auxHashes, h)
		prev = h
	}
	return auxHashes
}

// checkMergedRows waits for rounds found_blocks and found_nmc_blocks rows and checks that each
// aux row belongs to a parent row, carries an auxpow whose parent is that block, and names a
// block on namecoind's chain. It returns the aux rows.
func checkMergedRows(ctx context.Context, t *testing.T, db *store.Store, nmc *namecoindtest.Node, rounds int) []store.FoundAuxBlock {
	t.Helper()
	eventually(t, "found_blocks and found_nmc_blocks rows", func() bool {
		fb, err1 := db.FoundBlocks(ctx, 10)
		ab, err2 := db.FoundAuxBlocks(ctx, 10)
		return err1 == nil && err2 == nil && len(fb) == rounds && len(ab) == rounds
	})
	fb, _ := db.FoundBlocks(ctx, 10)
	ab, _ := db.FoundAuxBlocks(ctx, 10)
	parents := map[string]bool{}
	for _, b := range fb {
		parents[b.Hash] = true
	}
	for _, a := range ab {
		if !parents[a.BitcoinBlockHash] || a.ChainName != "nmc" || a.SubmitResponse != "true" {
			t.Fatalf("found_nmc_blocks row %+v does not match found_blocks %+v", a, fb)
		}
		var ap auxpow.AuxPow
		raw, err := hex.DecodeString(a.AuxPow)
		if err != nil || auxpow.DecodeAuxPow(raw, &ap) != nil || sha.DisplayHex(ap.ParentHash()) != a.BitcoinBlockHash {
			t.Fatalf("aux_pow of %s does not decode to its parent block", a.AuxBlockHash)
		}
		var hdr map[string]any
		if err := nmc.Client().Call(ctx, "getblockheader", []any{a.AuxBlockHash}, &hdr); err != nil {
			t.Fatalf("aux block %s not on namecoind: %v", a.AuxBlockHash, err)
		}
	}
	return ab
}

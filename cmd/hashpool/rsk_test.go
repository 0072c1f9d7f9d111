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
	"github.com/hashpool/hashpool/internal/rsktest"
	"github.com/hashpool/hashpool/store"
)

// rskHashOf returns the RSK hash ("0x" and hex) after the last RSKBLOCK: tag of the job's
// coinbase, or "" when it has none.
func rskHashOf(m *testMiner, j *minerJob) string {
	cb := j.job.AppendCoinbase(nil, m.en1, make([]byte, 8))
	i := bytes.LastIndex(cb, []byte(auxpow.RSKTag))
	if i < 0 || len(cb) < i+len(auxpow.RSKTag)+32 {
		return ""
	}
	return "0x" + hex.EncodeToString(cb[i+len(auxpow.RSKTag):i+len(auxpow.RSKTag)+32])
}

// waitRSKJob reads the pool's messages until the miner's newest job commits to RSK work want.
func waitRSKJob(t *testing.T, m *testMiner, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for m.job == nil || rskHashOf(m, m.job) != want {
		if time.Now().After(deadline) {
			t.Fatalf("no job committing to RSK work %s within 60 s", want)
		}
		m.next()
	}
}

// TestRunRSKMergedMining runs `hashpool run` on btcd regtest with an RSK node ([rsk]): the RSK
// server of internal/rsktest, written to RSK's published JSON-RPC API, since no rskj runs
// here. rskmaker polls its mnr_getWork, jobmaker puts the RSKBLOCK: output last in every
// coinbase and makes a job at once on the node's notify flag, each share solves a parent
// block (btcd's count rises) and meets the RSK target, and blkmaker's
// mnr_submitBitcoinBlockPartialMerkle passes the server's verification (header, coinbase tag,
// partial merkle proof, target). found_blocks and found_rsk_blocks agree with what btcd and
// the RSK server hold.
func TestRunRSKMergedMining(t *testing.T) {
	rsk := rsktest.Start(t, rsktest.Options{})
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	stratumPort := freePort(t)
	conf := filepath.Join(dir, "pool.toml")
	cfgText := fmt.Sprintf(`
network = "regtest"
data_dir = %q
[log]
level = "info"
[prometheus]
enabled = false
[dashboard]
enabled = false
[rsk]
rpc_addr = %q
rpc_userpwd = %q
interval = 1
rsk_merged_mining_notify = 1
`, filepath.Join(dir, "data"), rsk.URL, rsk.User+":"+rsk.Password)
	if err := os.WriteFile(conf, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	o := n.ClientOptions()
	args := []string{"-c", conf, "-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", fmt.Sprintf("127.0.0.1:%d", stratumPort), "-stats-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-slparser-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-min-difficulty", "0.0001", "-default-difficulty", "0.0001"}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	logw := &syncWriter{b: &strings.Builder{}}
	go func() { runErr <- runCommand(runCtx, "run", args, io.Discard, logw) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pool log:\n%s\nRSK refusals: %v", lastLines(logw.String(), 80), rsk.Refused())
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
	parent0, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}

	m := dialMiner(t, addr, "alice.rig1")
	const rounds = 2
	var works []string
	for r := 1; r <= rounds; r++ {
		// Each accepted RSK block moves the server to new work (notify set): the next job
		// commits to it without waiting for job_interval.
		w := rsk.Work()
		waitRSKJob(t, m, w)
		if code := m.submit(m.share(m.job, false)); code != 0 {
			t.Fatalf("round %d: share code %d", r, code)
		}
		eventually(t, fmt.Sprintf("round %d: %d RSK submissions", r, r), func() bool { return len(rsk.Submissions()) == r })
		eventually(t, fmt.Sprintf("round %d: btcd block count %d", r, parent0+int64(r)), func() bool {
			c, err := n.Client().GetBlockCount(ctx)
			return err == nil && c == parent0+int64(r)
		})
		works = append(works, w)
	}
	if refused := rsk.Refused(); len(refused) != 0 {
		t.Fatalf("the RSK server refused submissions: %v", refused)
	}

	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "data", "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually(t, "found_blocks and found_rsk_blocks rows", func() bool {
		fb, err1 := db.FoundBlocks(ctx, 10)
		rb, err2 := db.FoundRSKBlocks(ctx, 10)
		return err1 == nil && err2 == nil && len(fb) == rounds && len(rb) == rounds
	})
	fb, _ := db.FoundBlocks(ctx, 10)
	rb, _ := db.FoundRSKBlocks(ctx, 10)
	parents := map[string]bool{}
	for _, b := range fb {
		parents[b.Hash] = true
	}
	subs := map[string]string{} // parent hash -> RSK work hash, as the RSK server imported them
	for _, s := range rsk.Submissions() {
		subs[s.BitcoinBlockHash] = s.BlockHashForMergedMining
	}
	for _, r := range rb {
		if !parents[r.BitcoinBlockHash] || subs[r.BitcoinBlockHash] != "0x"+r.RSKBlockHash ||
			!strings.Contains(r.SubmitResponse, "IMPORTED_BEST") || r.WorkerFullName != "alice.rig1" {
			t.Fatalf("found_rsk_blocks row %+v does not match found_blocks %+v / RSK submissions %v", r, fb, subs)
		}
		// Every parent recorded is on btcd's chain.
		var hdr map[string]any
		if err := n.Client().Call(ctx, "getblockheader", []any{r.BitcoinBlockHash}, &hdr); err != nil {
			t.Fatalf("parent %s not on btcd: %v", r.BitcoinBlockHash, err)
		}
	}
	for _, w := range works {
		found := false
		for _, r := range rb {
			found = found || "0x"+r.RSKBlockHash == w
		}
		if !found {
			t.Fatalf("RSK work %s mined but not in found_rsk_blocks %+v", w, rb)
		}
	}
}

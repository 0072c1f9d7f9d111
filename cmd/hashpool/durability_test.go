package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/failpoint"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// crashMiner is a stratum client for crash tests: unlike testMiner it reports a closed
// connection as an error (the pool is being killed under it) instead of failing the test.
type crashMiner struct {
	conn    net.Conn
	br      *bufio.Reader
	partial []byte // a line cut by a read deadline
	en1     []byte
	diff    float64
	job     *minerJob
	prev    string // the current job's previous block, display hex
	id      int
	en2     uint64
}

func dialCrashMiner(addr, user string) (*crashMiner, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	m := &crashMiner{conn: c, br: bufio.NewReader(c), id: 10}
	fail := func(err error) (*crashMiner, error) { c.Close(); return nil, err }
	if err := m.send(`{"id":1,"method":"mining.subscribe","params":["crash-miner/1.0"]}`); err != nil {
		return fail(err)
	}
	sub, err := m.reply(1, 30*time.Second)
	if err != nil {
		return fail(err)
	}
	res, _ := sub["result"].([]any)
	if len(res) < 2 {
		return fail(fmt.Errorf("subscribe answer %v", sub))
	}
	en1, _ := res[1].(string)
	if m.en1, err = hex.DecodeString(en1); err != nil {
		return fail(err)
	}
	if err := m.send(`{"id":2,"method":"mining.authorize","params":["` + user + `","x"]}`); err != nil {
		return fail(err)
	}
	if r, err := m.reply(2, 30*time.Second); err != nil || r["result"] != true {
		return fail(fmt.Errorf("authorize: %v %v", r, err))
	}
	deadline := time.Now().Add(30 * time.Second)
	for m.job == nil || m.diff == 0 {
		if _, err := m.read(time.Until(deadline)); err != nil {
			return fail(fmt.Errorf("waiting for the first job: %w", err))
		}
	}
	return m, nil
}

func (m *crashMiner) send(line string) error {
	m.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := m.conn.Write([]byte(line + "\n"))
	return err
}

// read returns the next message, keeping the job and difficulty current.
func (m *crashMiner) read(timeout time.Duration) (map[string]any, error) {
	m.conn.SetReadDeadline(time.Now().Add(max(timeout, time.Millisecond)))
	line, err := m.br.ReadBytes('\n')
	if err != nil {
		m.partial = append(m.partial, line...)
		return nil, err
	}
	if len(m.partial) > 0 {
		line = append(m.partial, line...)
		m.partial = nil
	}
	var v map[string]any
	if err := json.Unmarshal(line, &v); err != nil {
		return nil, fmt.Errorf("bad line %q: %w", line, err)
	}
	p, _ := v["params"].([]any)
	switch v["method"] {
	case "mining.set_difficulty":
		if len(p) > 0 {
			m.diff, _ = p[0].(float64)
		}
	case "mining.notify":
		j, err := parseNotifyParams(p)
		if err != nil {
			return nil, err
		}
		m.job = j
		m.prev = sha.DisplayHex(j.prev)
	}
	return v, nil
}

func (m *crashMiner) reply(id int, timeout time.Duration) (map[string]any, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, err := m.read(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if n, ok := v["id"].(float64); ok && int(n) == id {
			return v, nil
		}
	}
}

// blockShare grinds a share of the current job that meets the share target; on regtest
// (network target ≈ 2^255) such a share always solves a block. It returns the submit line,
// its id and the block hash in display hex.
func (m *crashMiner) blockShare(user string) (line string, id int, hash string, err error) {
	j := m.job
	var h sha.Hasher
	target := sha.DiffToTarget(m.diff)
	network := sha.CompactToTarget(j.bits)
	m.en2++
	en2 := binary.BigEndian.AppendUint64(nil, m.en2)
	for nonce := uint32(0); nonce < 1<<24; nonce++ {
		hs := h.ShareHash(j.job, m.en1, en2, j.ntime, nonce, 0)
		if sha.HashMeetsTarget(&hs, &target) && sha.HashMeetsTarget(&hs, &network) {
			m.id++
			line = fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["%s","%s","%x","%08x","%08x"]}`, m.id, user, j.id, en2, j.ntime, nonce)
			return line, m.id, sha.DisplayHex(hs), nil
		}
	}
	return "", 0, "", errors.New("no block-solving nonce found")
}

// parseNotifyParams reads a mining.notify's params into a job the miner can grind.
func parseNotifyParams(p []any) (*minerJob, error) {
	if len(p) < 9 {
		return nil, fmt.Errorf("notify with %d params", len(p))
	}
	str := func(i int) string { s, _ := p[i].(string); return s }
	hx := func(i int) []byte { b, _ := hex.DecodeString(str(i)); return b }
	u32 := func(i int) uint32 { v, _ := strconv.ParseUint(str(i), 16, 32); return uint32(v) }
	var prev [32]byte
	be := hx(1)
	if len(be) != 32 {
		return nil, fmt.Errorf("notify prevhash %q", str(1))
	}
	for w := 0; w < 8; w++ { // notify prevhash: each 4-byte word byte-swapped
		for k := 0; k < 4; k++ {
			prev[w*4+k] = be[w*4+3-k]
		}
	}
	var branch [][32]byte
	steps, _ := p[4].([]any)
	for _, s := range steps {
		var h [32]byte
		b, _ := hex.DecodeString(s.(string))
		copy(h[:], b)
		branch = append(branch, h)
	}
	clean, _ := p[8].(bool)
	return &minerJob{id: str(0), job: sha.NewJob(hx(2), hx(3), branch, u32(5), prev, u32(6)), bits: u32(6), ntime: u32(7), clean: clean, prev: prev}, nil
}

// waitCurrent waits until the miner's job builds on the node's tip and the tip has held for a
// moment (a restarted pool submits the blocks its journal kept, which moves the tip), so that
// the next share solves a block instead of being stale.
func (m *crashMiner) waitCurrent(ctx context.Context, n *btcdtest.Node) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		best, err := n.Client().GetBestBlockHash(ctx)
		if err != nil {
			return err
		}
		if best == m.prev {
			_, err := m.read(500 * time.Millisecond) // let a block in flight move the tip
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				return err
			}
			if again, err := n.Client().GetBestBlockHash(ctx); err == nil && again == best && m.prev == best {
				return nil
			}
			continue
		}
		if _, err := m.read(time.Second); err != nil {
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				return err
			}
		}
	}
	return errors.New("the pool's job never caught up with the node's tip")
}

// waitAnswered waits until every block answered so far is on the node, so that the next round
// mines on top of them instead of forking (durability says they all get there).
func waitAnswered(ctx context.Context, t *testing.T, n *btcdtest.Node, answered map[string]string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for h, round := range answered {
		for !nodeHas(ctx, n, h) {
			if time.Now().After(deadline) {
				t.Fatalf("the block answered in round %q never reached the node", round)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// tryBlock submits block-solving shares until one is answered or the pool is gone, doing the
// round's kill or signal with the first submit. A share made stale by a block the restarted
// pool republished is followed by another one.
func (m *crashMiner) tryBlock(ctx context.Context, n *btcdtest.Node, kill func(first bool)) (hash string, answered bool, err error) {
	for attempt := 0; attempt < 5; attempt++ {
		if err := m.waitCurrent(ctx, n); err != nil {
			return "", false, err
		}
		line, id, h, err := m.blockShare("alice.rig1")
		if err != nil {
			return "", false, err
		}
		if err := m.send(line); err != nil {
			return "", false, err
		}
		kill(attempt == 0)
		rep, err := m.reply(id, 30*time.Second)
		if err != nil {
			return h, false, nil // the pool is gone: no answer
		}
		if rep["result"] == true {
			return h, true, nil
		}
		if e, _ := rep["error"].([]any); len(e) == 0 || e[0] != float64(21) {
			return h, false, fmt.Errorf("block-solving share answered %v", rep)
		}
	}
	return "", false, errors.New("five block-solving shares in a row were stale")
}

// crashRound is one way of ending `hashpool run` while a block is in flight.
type crashRound struct {
	name      string
	failpoint string        // armed in the process: it kills itself there
	killAfter time.Duration // kill -9 from outside this long after the submit was sent (-1: after the answer)
	sigterm   bool          // SIGTERM right after the submit instead of a kill; the process must exit 0
}

// TestRunKeepsEveryBlockThroughCrashes is the pool's first promise, tried as an operator
// would break it: `hashpool run` (in-process bus, SQLite) is killed while a block-solving share
// is in flight, at every instant that matters (failpoints inside the process, kill -9 from
// outside at several delays, SIGTERM), then restarted on the same data dir. At the end:
// every block-solving share answered `true` is a block on btcd, every block on btcd has
// exactly one found_blocks row, and no row is for a block the node does not have.
func TestRunKeepsEveryBlockThroughCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hashpool, runs btcd and restarts the pool many times")
	}
	bin := buildHashpool(t)
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	stratum := fmt.Sprintf("127.0.0.1:%d", freePort(t))
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
`, data)
	if err := os.WriteFile(conf, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	o := n.ClientOptions()
	args := []string{"-c", conf, "-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", stratum, "-min-difficulty", "0.0001", "-default-difficulty", "0.0001"}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}

	rounds := []crashRound{
		{name: "before the journal", failpoint: "engine.solved.before-journal"},
		{name: "journal written, not fsync'd", failpoint: "engine.solved.before-fsync"},
		{name: "journal fsync'd, not answered", failpoint: "engine.solved.after-fsync"},
		{name: "answered, not on the bus", failpoint: "engine.solved.before-publish@150ms^engine.solved.before-journal"},
		{name: "bus acknowledged, ack not journaled", failpoint: "engine.solved.after-ack^engine.solved.before-journal"},
		{name: "submitted, not recorded", failpoint: "blkmaker.after-submit^engine.solved.before-journal"},
		{name: "recorded, not committed", failpoint: "blkmaker.after-record^engine.solved.before-journal"},
		{name: "bus fsync", failpoint: "bus.mem.before-fsync^engine.solved.before-journal"},
		{name: "kill -9 with the submit", killAfter: 0},
		{name: "kill -9 1 ms after the submit", killAfter: time.Millisecond},
		{name: "kill -9 5 ms after the submit", killAfter: 5 * time.Millisecond},
		{name: "kill -9 20 ms after the submit", killAfter: 20 * time.Millisecond},
		{name: "kill -9 right after the answer", killAfter: -1},
		{name: "SIGTERM with the submit", sigterm: true},
	}
	answered := map[string]string{} // block hash -> round, for every block-solving share answered true
	for i, r := range rounds {
		name := "run"
		p := startProcEnv(t, bin, dir, name, envOf(r.failpoint), args...)
		waitPort(t, stratum, p)
		waitAnswered(ctx, t, n, answered)
		m, err := dialCrashMiner(stratum, "alice.rig1")
		if err != nil {
			t.Fatalf("round %d (%s): %v\n%s", i, r.name, err, p.tail())
		}
		hash, ok, err := m.tryBlock(ctx, n, func(first bool) {
			switch {
			case !first:
			case r.sigterm:
				p.term()
			case r.failpoint == "" && r.killAfter >= 0:
				time.Sleep(r.killAfter)
				p.kill9()
			}
		})
		if err != nil {
			t.Fatalf("round %d (%s): %v\n%s", i, r.name, err, p.tail())
		}
		if ok {
			answered[hash] = r.name
		}
		if r.failpoint == "" && r.killAfter < 0 {
			p.kill9()
		}
		m.conn.Close()
		select {
		case <-p.Exited():
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d (%s): the pool did not die or stop\n%s", i, r.name, p.tail())
		}
		if r.sigterm && !p.State().Success() {
			t.Fatalf("round %d (%s): SIGTERM exit %v\n%s", i, r.name, p.State(), p.tail())
		}
		if r.failpoint != "" {
			if ws, ok := p.State().Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("round %d: failpoint %s was never hit (exit %v)\n%s", i, r.failpoint, p.State(), p.tail())
			}
		}
		t.Logf("round %d (%s): answered %v", i, r.name, ok)
	}

	// A last, clean run finishes whatever the crashes left: journals republished, blocks
	// submitted and recorded.
	p := startProcEnv(t, bin, dir, "run", nil, args...)
	waitPort(t, stratum, p)
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(data, "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkBlocks(ctx, t, n, db, startHeight, answered, len(rounds))
	if err := p.stop(); err != nil {
		t.Fatalf("final stop: %v\n%s", err, p.tail())
	}
}

// checkBlocks waits until every block answered `true` is on the node and the node's blocks
// and the found_blocks rows are the same set, with one row per block.
func checkBlocks(ctx context.Context, t *testing.T, n *btcdtest.Node, db *store.Store, startHeight int64, answered map[string]string, rounds int) {
	t.Helper()
	var onNode, rows map[string]bool
	deadline := time.Now().Add(90 * time.Second)
	for {
		// A block republished after a restart may lose a race with the next round's block at
		// the same height: the node then keeps it on a side branch. The node's blocks are its
		// main chain above the start plus every block it knows of those answered or recorded.
		rows = foundBlockRows(ctx, t, db)
		onNode = nodeBlocks(ctx, t, n, startHeight)
		for h := range answered {
			if nodeHas(ctx, n, h) {
				onNode[h] = true
			}
		}
		for h := range rows {
			if nodeHas(ctx, n, h) {
				onNode[h] = true
			}
		}
		missing := 0
		for h := range answered {
			if !onNode[h] {
				missing++
			}
		}
		if missing == 0 && sameSet(onNode, rows) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: %d answered blocks missing on the node; node %v, found_blocks %v; answered %v",
				missing, keys(onNode), keys(rows), answered)
		}
		time.Sleep(200 * time.Millisecond)
	}
	total, err := db.FoundBlocks(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(total) != len(rows) {
		t.Fatalf("found_blocks has %d rows for %d distinct blocks", len(total), len(rows))
	}
	if len(answered) < rounds/2 {
		t.Fatalf("only %d of %d rounds got an answer: the crash points did not leave the pool time to answer", len(answered), rounds)
	}
	t.Logf("%d rounds: %d blocks answered true, %d on the node, %d found_blocks rows", rounds, len(answered), len(onNode), len(rows))
}

func envOf(fp string) []string {
	if fp == "" {
		return nil
	}
	return []string{failpoint.EnvVar + "=" + fp}
}

// nodeBlocks returns the hashes of the node's blocks above height from.
func nodeBlocks(ctx context.Context, t *testing.T, n *btcdtest.Node, from int64) map[string]bool {
	t.Helper()
	tip, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for h := from + 1; h <= tip; h++ {
		var hash string
		if err := n.Client().Call(ctx, "getblockhash", []any{h}, &hash); err != nil {
			t.Fatal(err)
		}
		out[hash] = true
	}
	return out
}

func foundBlockRows(ctx context.Context, t *testing.T, db *store.Store) map[string]bool {
	t.Helper()
	rows, err := db.FoundBlocks(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range rows {
		out[r.Hash] = true
	}
	return out
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k[:12])
	}
	sort.Strings(out)
	return out
}

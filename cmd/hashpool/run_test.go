package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/config"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/sharelog/logfile"
	"github.com/hashpool/hashpool/store"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testMiner is a minimal stratum client that grinds real shares.
type testMiner struct {
	t      *testing.T
	conn   net.Conn
	lines  chan map[string]any
	en1    []byte
	diff   float64
	job    *minerJob
	clean  *minerJob // the newest job that came with clean_jobs
	nextID int
	en2    uint64
}

type minerJob struct {
	prev  [32]byte // previous block hash, internal byte order
	id    string
	job   *sha.Job
	bits  uint32
	ntime uint32
	clean bool
}

func dialMiner(t *testing.T, addr, user string) *testMiner {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return startMiner(t, c, user)
}

// startMiner subscribes and authorizes on an open connection (plain or TLS).
func startMiner(t *testing.T, c net.Conn, user string) *testMiner {
	t.Helper()
	var err error
	m := &testMiner{t: t, conn: c, lines: make(chan map[string]any, 64), nextID: 10}
	go func() {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var v map[string]any
			if json.Unmarshal(sc.Bytes(), &v) == nil {
				m.lines <- v
			}
		}
		close(m.lines)
	}()
	m.send(`{"id":1,"method":"mining.subscribe","params":["e2e-miner/1.0"]}`)
	sub := m.reply(1)
	res := sub["result"].([]any)
	if m.en1, err = hex.DecodeString(res[1].(string)); err != nil {
		t.Fatal(err)
	}
	m.send(`{"id":2,"method":"mining.authorize","params":["` + user + `","x"]}`)
	if r := m.reply(2); r["result"] != true {
		t.Fatalf("authorize: %v", r)
	}
	m.waitJob()
	return m
}

func (m *testMiner) send(line string) {
	m.t.Helper()
	m.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(m.conn, line+"\n"); err != nil {
		m.t.Fatal(err)
	}
}

// next returns the next message, handling notifications on the way when it is not the one wanted.
func (m *testMiner) next() map[string]any {
	m.t.Helper()
	select {
	case v, ok := <-m.lines:
		if !ok {
			m.t.Fatal("connection closed")
		}
		switch v["method"] {
		case "mining.set_difficulty":
			m.diff = v["params"].([]any)[0].(float64)
		case "mining.notify":
			m.job = m.parseNotify(v["params"].([]any))
			if m.job.clean {
				m.clean = m.job
			}
		}
		return v
	case <-time.After(30 * time.Second):
		m.t.Fatal("no message from the pool in 30 s")
		return nil
	}
}

func (m *testMiner) reply(id int) map[string]any {
	m.t.Helper()
	for {
		v := m.next()
		if n, ok := v["id"].(float64); ok && int(n) == id {
			return v
		}
	}
}

// waitJob waits for a notify.
func (m *testMiner) waitJob() {
	m.t.Helper()
	for {
		if v := m.next(); v["method"] == "mining.notify" {
			return
		}
	}
}

// waitCleanJobAfter waits until a clean job other than old has arrived; it
// may already have come while the miner waited for a reply (a block's next
// height often overtakes the answer to the following submit).
func (m *testMiner) waitCleanJobAfter(old *minerJob) {
	m.t.Helper()
	for m.clean == nil || m.clean == old {
		m.next()
	}
}

func (m *testMiner) parseNotify(p []any) *minerJob {
	m.t.Helper()
	hx := func(i int) []byte {
		b, err := hex.DecodeString(p[i].(string))
		if err != nil {
			m.t.Fatal(err)
		}
		return b
	}
	u32 := func(i int) uint32 {
		v, err := strconv.ParseUint(p[i].(string), 16, 32)
		if err != nil {
			m.t.Fatal(err)
		}
		return uint32(v)
	}
	var prev [32]byte
	be := hx(1)
	for w := 0; w < 8; w++ { // notify prevhash: each 4-byte word byte-swapped
		for k := 0; k < 4; k++ {
			prev[w*4+k] = be[w*4+3-k]
		}
	}
	var branch [][32]byte
	for _, s := range p[4].([]any) {
		var h [32]byte
		b, _ := hex.DecodeString(s.(string))
		copy(h[:], b)
		branch = append(branch, h)
	}
	return &minerJob{prev: prev, id: p[0].(string), job: sha.NewJob(hx(2), hx(3), branch, u32(5), prev, u32(6)), bits: u32(6), ntime: u32(7),
		clean: p[8].(bool)}
}

// share finds a nonce whose hash meets the share target of job j or, with low, misses both the
// share target and the network target (on regtest the network target is the easier one, and a
// block is never rejected as low difficulty).
func (m *testMiner) share(j *minerJob, low bool) (params string) {
	m.t.Helper()
	var h sha.Hasher
	target := sha.DiffToTarget(m.diff)
	network := sha.CompactToTarget(j.bits)
	m.en2++
	en2 := binary.BigEndian.AppendUint64(nil, m.en2)
	for nonce := uint32(0); nonce < 1<<24; nonce++ {
		hash := h.ShareHash(j.job, m.en1, en2, j.ntime, nonce, 0)
		meets := sha.HashMeetsTarget(&hash, &target)
		if low && !meets && !sha.HashMeetsTarget(&hash, &network) || !low && meets {
			return fmt.Sprintf(`"alice.rig1","%s","%x","%08x","%08x"`, j.id, en2, j.ntime, nonce)
		}
	}
	m.t.Fatal("no nonce found")
	return ""
}

// submit sends a submit and returns the error code (0 for accepted).
func (m *testMiner) submit(params string) int {
	m.t.Helper()
	m.nextID++
	m.send(fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":[%s]}`, m.nextID, params))
	r := m.reply(m.nextID)
	if r["result"] == true {
		return 0
	}
	e, ok := r["error"].([]any)
	if !ok {
		m.t.Fatalf("submit reply %v", r)
	}
	return int(e[0].(float64))
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunEndToEnd runs the whole pool in one process against a regtest btcd: a miner sends a
// known mix of shares; the blocks must land on the node and in found_blocks, and the share log,
// slparser, statshttpd and their HTTP answers must agree with what was sent, to the share.
func TestRunEndToEnd(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	stratumPort, statsPort, slPort := freePort(t), freePort(t), freePort(t)
	conf := filepath.Join(dir, "pool.toml")
	cfgText := fmt.Sprintf(`
network = "regtest"
data_dir = %q
[log]
level = "info"
[statshttpd]
flush_db_interval = 1
[slparserhttpd]
flush_db_interval = 1
[prometheus]
enabled = false
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(conf, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	o := n.ClientOptions()
	args := []string{"-c", conf, "-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", fmt.Sprintf("127.0.0.1:%d", stratumPort), "-stats-http", fmt.Sprintf("127.0.0.1:%d", statsPort),
		"-slparser-http", fmt.Sprintf("127.0.0.1:%d", slPort), "-min-difficulty", "0.0001", "-default-difficulty", "0.0001"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	logw := &syncWriter{b: &strings.Builder{}}
	go func() { runErr <- runCommand(runCtx, "run", args, io.Discard, logw) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pool log:\n%s", lastLines(logw.String(), 80))
		}
	})
	defer func() {
		stop()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("run: %v\n%s", err, logw.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not stop within 30 s")
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
	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}

	m := dialMiner(t, addr, "alice.rig1")
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
	// On regtest that share was a block: the next height brings a clean job, and the old job is stale.
	m.waitCleanJobAfter(job1)
	if code := m.submit(m.share(job1, false)); code != 21 {
		t.Fatalf("stale share: code %d, want 21", code)
	}
	if code := m.submit(m.share(m.job, false)); code != 0 {
		t.Fatalf("second good share: code %d", code)
	}
	eventually(t, "two blocks on the node", func() bool {
		h, err := n.Client().GetBlockCount(ctx)
		return err == nil && h == startHeight+2
	})

	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "data", "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually(t, "two found_blocks rows", func() bool {
		rows, err := db.FoundBlocks(ctx, 10)
		return err == nil && len(rows) == 2
	})
	rows, _ := db.FoundBlocks(ctx, 10)
	for _, r := range rows {
		if r.WorkerFullName != "alice.rig1" || r.PUID != 1 || r.Rewards <= 0 {
			t.Fatalf("found block %+v", r)
		}
		if best, err := n.Client().GetBestBlockHash(ctx); err == nil && r.Height == int32(startHeight+2) && best != r.Hash {
			t.Fatalf("tip %s, found block %s", best, r.Hash)
		}
	}

	// The shares that reach the share topic: 2 accepted (solved), 1 stale, 1 low difficulty;
	// the duplicate is answered but, as in btcpool, not recorded. Difficulty < 1 is credited as 1.
	var statuses []btcpool.Status
	eventually(t, "four records in the share log", func() bool {
		statuses = readShareLog(t, filepath.Join(dir, "data", "sharelog"))
		return len(statuses) >= 4
	})
	want := map[btcpool.Status]int{btcpool.StatusSolved: 2, btcpool.StatusStaleShare: 1, btcpool.StatusLowDifficulty: 1}
	got := map[btcpool.Status]int{}
	for _, s := range statuses {
		got[s]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("share log statuses %v, want %v", got, want)
	}

	var ws struct {
		Data map[string]struct {
			Accept       []int64           `json:"accept"`
			Stale        []int64           `json:"stale"`
			Reject       []int64           `json:"reject"`
			RejectDetail []json.RawMessage `json:"reject_detail"`
			AcceptCount  int               `json:"accept_count"`
		} `json:"data"`
	}
	eventually(t, "statshttpd windows", func() bool {
		getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/worker_status?user_id=1&worker_id=0", statsPort), &ws)
		d, ok := ws.Data["0"]
		return ok && d.AcceptCount == 2 && d.Stale[2] == 1 && d.Reject[2] == 1
	})
	if d := ws.Data["0"]; d.Accept[1] != 2 || string(d.RejectDetail[2]) != `{"23":1}` {
		t.Fatalf("statshttpd %+v", d)
	}
	var ss struct {
		Data map[string][]struct {
			Accept       int64           `json:"accept"`
			Stale        int64           `json:"stale"`
			Reject       int64           `json:"reject"`
			RejectDetail json.RawMessage `json:"reject_detail"`
		} `json:"data"`
	}
	eventually(t, "slparser day stats", func() bool {
		getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/share_stats?user_id=1&worker_id=0&hour=24", slPort), &ss)
		d := ss.Data["0"]
		return len(d) == 1 && d[0].Accept == 2 && d[0].Stale == 1 && d[0].Reject == 1
	})
	if d := ss.Data["0"][0]; string(d.RejectDetail) != `{"23":1}` {
		t.Fatalf("slparser %+v", d)
	}
	eventually(t, "stats_users_day row", func() bool {
		days, err := db.StatsUserDays(ctx, 1, store.DayOf(time.Now()), store.DayOf(time.Now()))
		return err == nil && len(days) == 1 && days[0].Accept == 2 && days[0].Stale == 1 && days[0].Reject == 1
	})
	eventually(t, "mining_workers row", func() bool {
		w, ok, err := db.MiningWorker(ctx, 1, 0)
		return err == nil && ok && w.AcceptCount == 2 && w.Reject15m == 1 && w.Stale15m == 1
	})

	// slparser's one-shot modes on the same files: dump the user's shares, re-parse the day.
	var dump strings.Builder
	today := time.Now().UTC().Format("20060102")
	if err := runCommand(ctx, "slparser", []string{"-c", conf, "-date", today, "-dump", "1"}, &dump, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(dump.String(), "puid=1 "); n != 4 {
		t.Fatalf("dump printed %d shares of user 1, want 4:\n%s", n, dump.String())
	}
	if err := runCommand(ctx, "slparser", []string{"-c", conf, "-date", today}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
}

// readShareLog returns the statuses of every record in the share-log files of dir.
func readShareLog(t *testing.T, dir string) []btcpool.Status {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "sharelog*.bin"))
	var out []btcpool.Status
	for _, f := range files {
		r, err := logfile.OpenReader(f, logfile.ReaderOptions{Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var s btcpool.Share
			if err := btcpool.DecodeShareProto(rec, &s); err != nil {
				t.Fatal(err)
			}
			if s.UserID != 1 || s.ShareDiff != 1 {
				t.Fatalf("record %+v", s)
			}
			out = append(out, s.Status)
		}
		r.Close()
	}
	return out
}

// TestConfigDocIsCurrent keeps docs/CONFIG.md's default block equal to the real defaults.
func TestConfigDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	def := defaultConfig()
	if err := config.Encode(&want, &def); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```toml\n"+want.String()+"```") {
		t.Fatal("docs/CONFIG.md is out of date: regenerate its block with `go run ./cmd/hashpool config`")
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestVersionMaskForms: version rolling is on by default, and the mask can be written the way
// miners and ckpool write it.
func TestVersionMaskForms(t *testing.T) {
	if def := defaultConfig(); def.SServer.VersionMask != 0x1fffe000 {
		t.Fatalf("default version_mask %#x, want 0x1fffe000", uint32(def.SServer.VersionMask))
	}
	for text, want := range map[string]uint32{
		"version_mask = 0x1fffe000": 0x1fffe000, "version_mask = 536862720": 0x1fffe000,
		"version_mask = '0x1fffe000'": 0x1fffe000, "version_mask = '1FFFE000'": 0x1fffe000, "version_mask = 0": 0,
	} {
		cfg := defaultConfig()
		if err := config.Decode([]byte("[sserver]\n"+text+"\n"), &cfg); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if got := uint32(cfg.SServer.VersionMask); got != want {
			t.Errorf("%s: %#x, want %#x", text, got, want)
		}
	}
	for _, bad := range []string{"version_mask = 'zz'", "version_mask = ''", "version_mask = '0x1fffe0000'"} {
		cfg := defaultConfig()
		if err := config.Decode([]byte("[sserver]\n"+bad+"\n"), &cfg); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

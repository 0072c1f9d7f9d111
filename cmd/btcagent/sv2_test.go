package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/childproc"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// argsEnv makes the test binary run btcagent's run with these JSON args
// (TestMain), so tests run btcagent as a real process that gets signals.
const argsEnv = "BTCAGENT_TEST_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(argsEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, "btcagent test:", err)
			os.Exit(2)
		}
		if err := run(args, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "btcagent:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// poolDiff is the pool's share difficulty (2^-30, below regtest's network
// difficulty): every share a miner finds is also a block.
const poolDiff = "0.000000001"

// sv2TestPool is `hashpool run` as a child process on a regtest node, with
// Stratum V2 on its own port and a certificate signed by an authority key
// generated here: the pool role users run, with its blkmaker submitting
// the blocks and found_blocks recording them.
type sv2TestPool struct {
	proc      *childproc.Process
	addr      string // the SV2 listener
	authority string // base58check, as a pool publishes it
	data      string // data_dir (pool.db)
}

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

// startSV2Pool starts bin (cmd/hashpool) as `hashpool run` on node n.
func startSV2Pool(t *testing.T, bin string, n *btcdtest.Node) *sv2TestPool {
	t.Helper()
	auth, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authority.key")
	if err := os.WriteFile(keyFile, []byte(fmt.Sprintf("%x\n", auth.Serialize())), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &sv2TestPool{authority: noise.FormatAuthorityKey(noise.XOnly(auth)), data: filepath.Join(dir, "data")}
	conf := filepath.Join(dir, "pool.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("network = \"regtest\"\ndata_dir = %q\n[statshttpd]\nport = 0\n[slparserhttpd]\nport = 0\n[prometheus]\nenabled = false\n", p.data)), 0o600); err != nil {
		t.Fatal(err)
	}
	var ports [2]int
	for i := range ports {
		if ports[i], err = childproc.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	p.addr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	o := n.ClientOptions()
	p.proc, err = childproc.Start(childproc.Options{Path: bin, Log: filepath.Join(dir, "hashpool.log"), Args: []string{"run", "-c", conf,
		"-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", fmt.Sprintf("127.0.0.1:%d", ports[0]), "-sv2", p.addr, "-sv2-authority-key", keyFile,
		"-min-difficulty", poolDiff, "-default-difficulty", poolDiff}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.proc.Stop(syscall.SIGTERM, 30*time.Second) {
			t.Error("hashpool run did not stop on SIGTERM within 30 s")
		}
		if t.Failed() {
			t.Logf("hashpool log:\n%s", p.proc.LogTail(8<<10))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.proc.Await(ctx, 90*time.Second, 100*time.Millisecond, "hashpool sv2 listener", func(context.Context) error {
		c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// foundBlocks returns the pool's found_blocks rows.
func (p *sv2TestPool) foundBlocks(t *testing.T) []store.FoundBlock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(p.data, "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.FoundBlocks(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func blockCount(t *testing.T, n *btcdtest.Node) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// agentProc is btcagent running as a child process.
type agentProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	log   strings.Builder
	lines chan string
	done  chan error
}

func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), argsEnv+"="+string(a))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{cmd: cmd, lines: make(chan string, 1024), done: make(chan error, 1)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() { <-read; p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		p.done <- nil
		if t.Failed() {
			t.Logf("btcagent log:\n%s", p.output())
		}
	})
	return p
}

func (p *agentProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// listenAddr waits for btcagent's "btcagent listening" line and returns its addr.
func (p *agentProc) listenAddr(t *testing.T) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if !strings.Contains(l, `msg="btcagent listening"`) {
				continue
			}
			_, rest, _ := strings.Cut(l, " addr=")
			addr, _, _ := strings.Cut(rest, " ")
			return addr
		case <-timeout:
			t.Fatal("btcagent did not listen in 60 s")
		}
	}
}

// stop sends sig and waits for a clean exit.
func (p *agentProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for Cleanup
		if err != nil {
			t.Fatalf("btcagent exited with %v after %v", err, sig)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("btcagent did not exit in 30 s after %v", sig)
	}
}

// miner is a minimal SV1 miner that grinds real shares.
type miner struct {
	t       *testing.T
	c       net.Conn
	user    string
	lines   chan map[string]any
	en1     []byte
	en2Size int
	diff    float64
	job     []any // the last mining.notify params
	id      int
}

func dialMiner(t *testing.T, addr, user string) *miner {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &miner{t: t, c: c, user: user, lines: make(chan map[string]any, 256), id: 10}
	go func() {
		defer close(m.lines)
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var v map[string]any
			if json.Unmarshal(sc.Bytes(), &v) == nil {
				m.lines <- v
			}
		}
	}()
	m.send(`{"id":1,"method":"mining.subscribe","params":["btcagent-test/1.0"]}`)
	res, ok := m.reply(1)["result"].([]any)
	if !ok || len(res) < 3 {
		t.Fatal("bad subscribe answer")
	}
	if m.en1, err = hex.DecodeString(res[1].(string)); err != nil {
		t.Fatal(err)
	}
	m.en2Size = int(res[2].(float64))
	m.send(`{"id":2,"method":"mining.authorize","params":["` + user + `","x"]}`)
	if r := m.reply(2); r["result"] != true {
		t.Fatalf("authorize: %v", r)
	}
	return m
}

func (m *miner) send(line string) {
	m.t.Helper()
	m.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := m.c.Write([]byte(line + "\n")); err != nil {
		m.t.Fatal(err)
	}
}

func (m *miner) next() map[string]any {
	m.t.Helper()
	select {
	case v, ok := <-m.lines:
		if !ok {
			m.t.Fatal("btcagent closed the miner")
		}
		switch v["method"] {
		case "mining.set_difficulty":
			m.diff = v["params"].([]any)[0].(float64)
		case "mining.notify":
			m.job = v["params"].([]any)
		}
		return v
	case <-time.After(60 * time.Second):
		m.t.Fatal("nothing from btcagent in 60 s")
		return nil
	}
}

func (m *miner) reply(id int) map[string]any {
	m.t.Helper()
	for {
		if v := m.next(); v["method"] == nil {
			if n, ok := v["id"].(float64); ok && int(n) == id {
				return v
			}
		}
	}
}

// mine waits for a job and a difficulty, grinds a share that meets it,
// submits it and returns the answer.
func (m *miner) mine() map[string]any {
	m.t.Helper()
	for m.job == nil || m.diff == 0 {
		m.next()
	}
	p := m.job
	hx := func(i int) []byte {
		b, err := hex.DecodeString(p[i].(string))
		if err != nil {
			m.t.Fatal(err)
		}
		return b
	}
	var prev [32]byte
	pb := hx(1)
	for w := 0; w < 32; w += 4 { // prevhash: each 4-byte word byte-reversed
		for k := 0; k < 4; k++ {
			prev[w+k] = pb[w+3-k]
		}
	}
	var branch [][32]byte
	for _, b := range p[4].([]any) {
		var h [32]byte
		bb, _ := hex.DecodeString(b.(string))
		copy(h[:], bb)
		branch = append(branch, h)
	}
	version, bits, ntime := binary.BigEndian.Uint32(hx(5)), binary.BigEndian.Uint32(hx(6)), binary.BigEndian.Uint32(hx(7))
	en2 := make([]byte, m.en2Size)
	en2[len(en2)-1] = byte(m.id)
	cb := append(append(append(append([]byte(nil), hx(2)...), m.en1...), en2...), hx(3)...)
	root := sha.MerkleRoot(sha.DoubleSHA256(cb), branch)
	target := sha.DiffToTarget(m.diff)
	hdr := make([]byte, 0, 80)
	for nonce := uint32(0); nonce < 1<<26; nonce++ {
		hdr = sha.AppendHeader(hdr[:0], version, &prev, &root, ntime, bits, nonce)
		if h := sha.DoubleSHA256(hdr); sha.HashMeetsTarget(&h, &target) {
			m.id++
			m.send(fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["%s","%s","%x","%08x","%08x"]}`, m.id, m.user, p[0], en2, ntime, nonce))
			return m.reply(m.id)
		}
	}
	m.t.Fatal("no share in 2^26 nonces")
	return nil
}

// TestSV2Regtest runs btcagent as a process with an sv2:// pool in its
// BtcAgent JSON config: an SV1 miner connected to it mines a real btcd
// regtest block through the engine's Stratum V2 listener (`hashpool run
// -sv2` as a child process) over Noise, the certificate signed by an
// authority key the test generates and configures, in both sv2_mode
// values. The block reaches the node through the pool's blkmaker and its
// found_blocks row names the worker the pool saw: the config's
// sub-account and the miner's worker (per-miner) or the sub-account alone
// (shared, btcpool's "farm.__default__"). -stats writes the translator's counters and SIGTERM / SIGINT
// stop btcagent cleanly.
func TestSV2Regtest(t *testing.T) {
	bin := buildHashpool(t)
	n := btcdtest.Start(t, btcdtest.Options{})
	n.MineBlocks(t, 1)
	for _, tc := range []struct {
		mode, worker string
		sig          syscall.Signal
	}{{"per-miner", "farm.rig1", syscall.SIGTERM}, {"shared", "farm.__default__", syscall.SIGINT}} {
		t.Run(tc.mode, func(t *testing.T) {
			pool := startSV2Pool(t, bin, n)
			dir := t.TempDir()
			conf := filepath.Join(dir, "agent_conf.json")
			statsFile := filepath.Join(dir, "stats.json")
			if err := os.WriteFile(conf, []byte(`{
    "agent_listen_ip": "127.0.0.1",
    "agent_listen_port": 0,
    "sv2_mode": "`+tc.mode+`",
    "pools": [["sv2://`+pool.addr+`", "`+pool.authority+`", "farm"]]
}`), 0o644); err != nil {
				t.Fatal(err)
			}
			a := startAgent(t, "-c", conf, "-stats", "100ms", "-stats-file", statsFile)
			addr := a.listenAddr(t)
			m := dialMiner(t, addr, "anyone.rig1")
			before := blockCount(t, n)
			if r := m.mine(); r["result"] != true {
				t.Fatalf("share answered %v", r)
			}
			deadline := time.Now().Add(60 * time.Second)
			for blockCount(t, n) < before+1 {
				if time.Now().After(deadline) {
					t.Fatalf("the node did not reach height %d in 60 s", before+1)
				}
				time.Sleep(50 * time.Millisecond)
			}
			var rows []store.FoundBlock
			for len(rows) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no found_blocks row in 60 s")
				}
				time.Sleep(100 * time.Millisecond)
				rows = pool.foundBlocks(t)
			}
			if len(rows) != 1 || rows[0].WorkerFullName != tc.worker {
				t.Fatalf("found_blocks %+v, want one block by %q", rows, tc.worker)
			}
			// -stats-file holds the translator's counters.
			var rec SV2StatsRecord
			deadline = time.Now().Add(60 * time.Second)
			for {
				if b, err := os.ReadFile(statsFile); err == nil && json.Unmarshal(b, &rec) == nil && rec.SV2.Accepted == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("stats file never showed the accepted share: %+v", rec)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if rec.SV2.Miners != 1 || rec.SV2.Pool != pool.addr || rec.SV2.Connects != 1 {
				t.Fatalf("stats %+v", rec.SV2)
			}
			a.stop(t, tc.sig)
			out := a.output()
			for _, want := range []string{"upstream=sv2", "sv2_mode=" + tc.mode, `msg=stats`, `msg="btcagent stopped" accepted=1`} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestCheckSV2Config: -check accepts an sv2:// config (with a warning for
// an agent-protocol key) and refuses a wrong authority key and a mix of
// sv2:// and plain pools with errors naming the key.
func TestCheckSV2Config(t *testing.T) {
	k, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key := noise.FormatAuthorityKey(noise.XOnly(k))
	path := filepath.Join(t.TempDir(), "agent_conf.json")
	for _, tc := range []struct {
		name, pools string
		extra       string
		want        []string // in the output (ok) or the error
		ok          bool
	}{
		{"ok", `[["sv2://127.0.0.1:3336", "` + key + `", "farm"]]`, `"extensions": [], `,
			[]string{`"extensions" has no effect with sv2:// pools`, "configuration ok"}, true},
		{"wrong key", `[["sv2://127.0.0.1:3336", "` + key[:20] + `", "farm"]]`, "", []string{"pools[0]", "authority key"}, false},
		{"mixed", `[["sv2://127.0.0.1:3336", "` + key + `", "farm"], ["127.0.0.1", 3333, "farm"]]`, "",
			[]string{"pools: 1 sv2:// and 1 plain entries"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(`{`+tc.extra+`"pools": `+tc.pools+`}`), 0o644); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			err := run([]string{"-c", path, "-check"}, &out)
			got := out.String()
			if err != nil {
				got = err.Error()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
		})
	}
}

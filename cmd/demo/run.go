package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"

	"github.com/hashpool/hashpool/internal/childproc"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/store"
)

// Summary is what a demo run achieved.
type Summary struct {
	Elapsed        time.Duration
	StartHeight    int64
	Height         int64
	Blocks         int64 // found_blocks rows
	AuxStart       int64 // namecoind's height before mining (with Options.Aux)
	AuxHeight      int64
	AuxBlocks      int64 // found_nmc_blocks rows namecoind accepted
	Accepted       float64
	Rejected       float64
	Miners         float64
	WorkDir        string
	PayoutAddress  string
	LoadgenSummary string
}

func (s *Summary) print(w io.Writer) {
	fmt.Fprintf(w, "\n== demo summary\n")
	fmt.Fprintf(w, "ran for          %s\n", s.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "chain height     %d → %d (+%d blocks, all mined by the pool's miners)\n", s.StartHeight, s.Height, s.Height-s.StartHeight)
	fmt.Fprintf(w, "found_blocks     %d rows\n", s.Blocks)
	if s.AuxHeight > 0 {
		fmt.Fprintf(w, "namecoind height %d → %d (+%d aux blocks, merge-mined)\n", s.AuxStart, s.AuxHeight, s.AuxHeight-s.AuxStart)
		fmt.Fprintf(w, "found_nmc_blocks %d rows accepted by namecoind\n", s.AuxBlocks)
	}
	fmt.Fprintf(w, "shares           %.0f accepted, %.0f rejected, from %.0f miners\n", s.Accepted, s.Rejected, s.Miners)
	fmt.Fprintf(w, "payout address   %s\n", s.PayoutAddress)
	if s.LoadgenSummary != "" {
		fmt.Fprintf(w, "loadgen          %s\n", s.LoadgenSummary)
	}
	if s.WorkDir != "" {
		fmt.Fprintf(w, "work dir         %s (logs: btcd.log, hashpool.log, loadgen.log)\n", s.WorkDir)
	}
}

// proc is a child process in its own process group, killed with the demo.
type proc struct {
	name string
	*childproc.Process
}

func start(dir, name, bin string, args ...string) (*proc, error) {
	p, err := childproc.Start(childproc.Options{Path: bin, Args: args, Log: filepath.Join(dir, name+".log"), Group: true})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &proc{name: name, Process: p}, nil
}

// moduleRoot is the directory of hashpool's go.mod, found from the working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/hashpool/hashpool\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the demo inside the hashpool module (no go.mod of github.com/hashpool/hashpool above the working directory)")
		}
		dir = parent
	}
}

func goBuild(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// regtestAddress returns a fresh regtest P2WPKH address (no key is kept: the demo's coins are
// never spent).
func regtestAddress() (string, error) {
	h := make([]byte, 20)
	rand.Read(h)
	a, err := address.NewAddressWitnessPubKeyHash(h, &chaincfg.RegressionNetParams)
	if err != nil {
		return "", err
	}
	return a.EncodeAddress(), nil
}

// Run performs one demo.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if o.Blocks < 1 || o.Miners < 1 || o.Miners > 5000 {
		return nil, errors.New("want at least 1 block and 1..5000 miners")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	began := time.Now()
	dir := o.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "hashpool-demo-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	}
	sum := &Summary{}
	if o.Keep || o.WorkDir != "" {
		sum.WorkDir = dir
	}
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	say("== building hashpool, loadgen and btcd (from the btcd Go module)")
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "bin")
	for _, b := range []struct{ out, pkg string }{
		{"hashpool", "./cmd/hashpool"}, {"loadgen", "./cmd/loadgen"}, {"btcd", "github.com/btcsuite/btcd"},
	} {
		if err := goBuild(ctx, root, filepath.Join(bin, b.out), b.pkg); err != nil {
			return nil, err
		}
	}
	ports := make([]int, 6)
	for i := range ports {
		p, err := childproc.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	rpcPort, p2pPort, stratumPort, statsPort, slPort, metricsPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	payout, err := regtestAddress()
	if err != nil {
		return nil, err
	}
	sum.PayoutAddress = payout

	say("== starting btcd in regtest on 127.0.0.1:%d", rpcPort)
	btcd, err := start(dir, "btcd", filepath.Join(bin, "btcd"), "--regtest", "--notls", "--rpcuser=demo", "--rpcpass=demo",
		fmt.Sprintf("--rpclisten=127.0.0.1:%d", rpcPort), fmt.Sprintf("--listen=127.0.0.1:%d", p2pPort), "--nodnsseed",
		"--configfile=/dev/null", "--datadir="+filepath.Join(dir, "btcd"), "--logdir="+filepath.Join(dir, "btcd"),
		"--miningaddr="+payout)
	if err != nil {
		return nil, err
	}
	defer btcd.Stop(syscall.SIGINT, 10*time.Second)
	client, err := node.NewClient(node.Options{URL: fmt.Sprintf("http://127.0.0.1:%d", rpcPort), User: "demo", Password: "demo", Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	for {
		if h, err := client.GetBlockCount(ctx); err == nil {
			sum.StartHeight, sum.Height = h, h
			break
		}
		if !btcd.Running() {
			return nil, fmt.Errorf("btcd exited; see %s", filepath.Join(dir, "btcd.log"))
		}
		if !node.Sleep(ctx, 200*time.Millisecond) {
			return nil, fmt.Errorf("btcd did not answer: %w", ctx.Err())
		}
	}

	var poolConf []string
	var nmc *namecoindtest.Node
	if o.Aux {
		say("== starting namecoind in regtest (the aux chain)")
		if err := os.MkdirAll(filepath.Join(dir, "namecoind"), 0o755); err != nil {
			return nil, err
		}
		nmc, err = namecoindtest.Launch(ctx, namecoindtest.Options{Dir: filepath.Join(dir, "namecoind")})
		if err != nil {
			return nil, fmt.Errorf("namecoind: %w", err)
		}
		defer nmc.Stop()
		if sum.AuxStart, err = nmc.Client().GetBlockCount(ctx); err != nil {
			return nil, fmt.Errorf("namecoind: %w", err)
		}
		sum.AuxHeight = sum.AuxStart
		conf := filepath.Join(dir, "pool.toml")
		text := fmt.Sprintf("[jobmaker]\naux_merged_mining_notify = 1\n\n[[aux]]\nchain_name = \"nmc\"\nrpc_addr = %q\n"+
			"rpc_userpwd = %q\ncoinbase_address = %q\nzmq_addr = %q\nrpcinterval = 2\n",
			nmc.RPCURL, nmc.RPCUser+":"+nmc.RPCPass, nmc.Address, nmc.ZMQAddr)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return nil, err
		}
		poolConf = []string{"-c", conf}
	}

	say("== starting hashpool run (stratum 127.0.0.1:%d, stats :%d, share stats :%d, metrics :%d)", stratumPort, statsPort, slPort, metricsPort)
	pool, err := start(dir, "hashpool", filepath.Join(bin, "hashpool"), append(append([]string{"run"}, poolConf...), "-network", "regtest",
		"-data-dir", filepath.Join(dir, "pool"), "-node", fmt.Sprintf("http://127.0.0.1:%d", rpcPort), "-node-auth", "demo:demo",
		"-payout-address", payout, "-coinbase-info", "/hashpool-demo/", "-stratum", fmt.Sprintf("127.0.0.1:%d", stratumPort),
		"-stats-http", fmt.Sprintf("127.0.0.1:%d", statsPort), "-slparser-http", fmt.Sprintf("127.0.0.1:%d", slPort),
		"-metrics", fmt.Sprintf("127.0.0.1:%d", metricsPort), "-min-difficulty", "0.000001", "-default-difficulty", "0.000001")...)
	if err != nil {
		return nil, err
	}
	defer pool.Stop(syscall.SIGTERM, 20*time.Second)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	for {
		if _, err := scrape(ctx, metricsURL); err == nil {
			break
		}
		if !pool.Running() {
			return nil, fmt.Errorf("hashpool exited; see %s:\n%s", filepath.Join(dir, "hashpool.log"), tail(filepath.Join(dir, "hashpool.log")))
		}
		if !node.Sleep(ctx, 200*time.Millisecond) {
			return nil, fmt.Errorf("hashpool did not start: %w", ctx.Err())
		}
	}

	say("== dashboard: http://127.0.0.1:%d/dashboard/ (live while the demo mines; `make demo LINGER=10m` keeps mining 10 min after the last block)", statsPort)
	say("== starting loadgen: %d miners grinding real shares", o.Miners)
	report := filepath.Join(dir, "loadgen.json")
	lg, err := start(dir, "loadgen", filepath.Join(bin, "loadgen"), "-url", fmt.Sprintf("127.0.0.1:%d", stratumPort),
		"-miners", strconv.Itoa(o.Miners), "-duration", (o.Timeout + o.Linger).String(), "-user", "demo", "-json", report)
	if err != nil {
		return nil, err
	}
	defer lg.Stop(syscall.SIGINT, 10*time.Second)

	say("== mining until btcd has accepted %d blocks from the pool (Ctrl-C stops early)", o.Blocks)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last map[string]float64
	for sum.Height-sum.StartHeight < int64(o.Blocks) {
		select {
		case <-ctx.Done():
			sum.Elapsed = time.Since(began)
			return sum, fmt.Errorf("stopped after %d of %d blocks: %w", sum.Height-sum.StartHeight, o.Blocks, ctx.Err())
		case <-tick.C:
		}
		for _, p := range []*proc{pool, lg, btcd} {
			if !p.Running() {
				sum.Elapsed = time.Since(began)
				return sum, fmt.Errorf("%s exited; see %s:\n%s", p.name, filepath.Join(dir, p.name+".log"), tail(filepath.Join(dir, p.name+".log")))
			}
		}
		if h, err := client.GetBlockCount(ctx); err == nil {
			sum.Height = h
		}
		aux := ""
		if nmc != nil {
			if h, err := nmc.Client().GetBlockCount(ctx); err == nil {
				sum.AuxHeight = h
			}
			aux = fmt.Sprintf(" | aux blocks %d", sum.AuxHeight-sum.AuxStart)
		}
		m, err := scrape(ctx, metricsURL)
		if err != nil {
			continue
		}
		acc := m[`hashpool_sserver_shares_total{status="accepted"}`] + m[`hashpool_sserver_shares_total{status="solved"}`]
		rej := m[`hashpool_sserver_shares_total{status="stale"}`] + m[`hashpool_sserver_shares_total{status="duplicate"}`] +
			m[`hashpool_sserver_shares_total{status="low_difficulty"}`] + m[`hashpool_sserver_shares_total{status="other"}`]
		var accRate, rejRate float64
		if last != nil {
			accRate, rejRate = acc-last["acc"], rej-last["rej"]
		}
		last = map[string]float64{"acc": acc, "rej": rej}
		sum.Accepted, sum.Rejected, sum.Miners = acc, rej, m["hashpool_sserver_sessions"]
		say("[%4ds] miners %3.0f | shares/s %6.1f accepted %5.1f rejected | blocks %d/%d | height %d%s",
			int(time.Since(began).Seconds()), sum.Miners, accRate, rejRate, sum.Height-sum.StartHeight, o.Blocks, sum.Height, aux)
	}

	if o.Linger > 0 {
		say("== %d blocks found; mining on for %s so the dashboard stays live (Ctrl-C ends it)", o.Blocks, o.Linger)
		t := time.NewTimer(o.Linger)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	lg.Stop(syscall.SIGINT, 10*time.Second)
	pool.Stop(syscall.SIGTERM, 20*time.Second)
	sum.Elapsed = time.Since(began)
	if b, err := os.ReadFile(report); err == nil {
		sum.LoadgenSummary = fmt.Sprintf("report %d bytes in %s", len(b), report)
	}
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "pool", "pool.db"))
	if err != nil {
		return sum, err
	}
	defer db.Close()
	rows, err := db.FoundBlocks(context.Background(), 1000)
	if err != nil {
		return sum, err
	}
	sum.Blocks = int64(len(rows))
	if sum.Blocks < int64(o.Blocks) {
		return sum, fmt.Errorf("btcd accepted %d blocks but found_blocks has %d rows", sum.Height-sum.StartHeight, sum.Blocks)
	}
	if nmc != nil {
		return sum, checkAux(db, nmc, sum)
	}
	return sum, nil
}

// checkAux counts the found_nmc_blocks rows namecoind accepted: each must be on its chain, and
// merge-mining must have given namecoind at least one block. (A share on aux work that a newer
// aux block made stale gets a row with namecoind's refusal: a real outcome, not counted.)
func checkAux(db *store.Store, nmc *namecoindtest.Node, sum *Summary) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if h, err := nmc.Client().GetBlockCount(ctx); err == nil {
		sum.AuxHeight = h
	}
	rows, err := db.FoundAuxBlocks(ctx, 1000)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r.SubmitResponse != "true" {
			continue
		}
		var hdr map[string]any
		if err := nmc.Client().Call(ctx, "getblockheader", []any{r.AuxBlockHash}, &hdr); err != nil {
			return fmt.Errorf("found_nmc_blocks row for %s, but namecoind does not have it: %w", r.AuxBlockHash, err)
		}
		sum.AuxBlocks++
	}
	if sum.AuxHeight <= sum.AuxStart || sum.AuxBlocks == 0 {
		return fmt.Errorf("merged mining gave namecoind no block (height %d → %d, %d accepted rows)", sum.AuxStart, sum.AuxHeight, sum.AuxBlocks)
	}
	return nil
}

// scrape reads a Prometheus text page into name{labels} → value.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// tail returns the last lines of a log file for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

package ckpool

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"

	"github.com/hashpool/hashpool/internal/childproc"
	"github.com/hashpool/hashpool/loadgen"
)

// startProc starts bin in its own process group (so a stop reaches what it forks) with dir
// as its working directory and its output in dir/<name>.log; it is killed if we die.
func startProc(dir, name, bin string, args ...string) (*childproc.Process, error) {
	p, err := childproc.Start(childproc.Options{Path: bin, Args: args, Dir: dir, Log: filepath.Join(dir, name+".log"), Group: true})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// pool is one running stratum server under measurement.
type pool struct {
	name    string             // "ckpool" or "hashpool"
	addr    string             // stratum host:port
	proc    *childproc.Process // nil: a server in this process (tests)
	pidN    int                // the process measured when proc is nil
	command string             // how it was started

	start func(ctx context.Context) (*pool, error) // starts a fresh one (restart)
	grace time.Duration                            // SIGTERM → SIGKILL
}

func (p *pool) pid() int {
	if p.proc == nil {
		return p.pidN
	}
	return p.proc.Pid
}

// gone reports whether the pool's process has exited, with its log.
func (p *pool) gone() (bool, string) {
	if p.proc == nil || p.proc.Running() {
		return false, ""
	}
	return true, p.logTail()
}

// stop sends SIGTERM to the pool's process group, then SIGKILL after p.grace.
func (p *pool) stop() {
	if p.proc != nil {
		p.proc.Stop(syscall.SIGTERM, p.grace)
	}
}

// logTail is the end of the pool's log, for errors.
func (p *pool) logTail() string { return strings.TrimSpace(p.proc.LogTail(2000)) }

// regtestP2PKH returns a fresh regtest P2PKH address (base58: the form
// ckpool's 2017 address code reads); no key is kept, coins are never spent.
func regtestP2PKH() (string, error) {
	h := make([]byte, 20)
	rand.Read(h)
	a, err := address.NewAddressPubKeyHash(h, &chaincfg.RegressionNetParams)
	if err != nil {
		return "", err
	}
	return a.EncodeAddress(), nil
}

// ckpoolConfig is the ckpool.conf written for a run (see ckpool's README:
// btcd servers, btcaddress, serverurl, mindiff/startdiff/maxdiff, logdir).
type ckpoolConfig struct {
	Btcd           []ckpoolBtcd `json:"btcd"`
	BTCAddress     string       `json:"btcaddress"`
	BTCSig         string       `json:"btcsig"`
	Blockpoll      int          `json:"blockpoll"`
	Nonce1Length   int          `json:"nonce1length"`
	Nonce2Length   int          `json:"nonce2length"`
	UpdateInterval int          `json:"update_interval"`
	ServerURL      []string     `json:"serverurl"`
	MinDiff        int          `json:"mindiff"`
	StartDiff      int          `json:"startdiff"`
	MaxDiff        int          `json:"maxdiff"`
	LogDir         string       `json:"logdir"`
}

type ckpoolBtcd struct {
	URL    string `json:"url"`
	Auth   string `json:"auth"`
	Pass   string `json:"pass"`
	Notify bool   `json:"notify"`
}

// startCkpool writes a config for the node behind proxyAddr and starts
// ckpool on a free loopback port. Its defaults are kept (blockpoll 100 ms,
// nonce1length 4, nonce2length 8, update_interval 30 s) except the
// difficulty, fixed at 1 like hashpool's.
func startCkpool(ctx context.Context, dir, bin, proxyAddr string) (*pool, error) {
	port, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	payout, err := regtestP2PKH()
	if err != nil {
		return nil, err
	}
	cdir, err := os.MkdirTemp(dir, "ckpool-")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cdir, "logs"), 0o755); err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := ckpoolConfig{
		Btcd:       []ckpoolBtcd{{URL: proxyAddr, Auth: "ckpool", Pass: "ckpool", Notify: false}},
		BTCAddress: payout, BTCSig: "/ckpool-bench/", Blockpoll: 100, Nonce1Length: 4, Nonce2Length: 8,
		UpdateInterval: 30, ServerURL: []string{addr}, MinDiff: 1, StartDiff: 1, MaxDiff: 1,
		LogDir: filepath.Join(cdir, "logs"),
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	conf := filepath.Join(cdir, "ckpool.conf")
	if err := os.WriteFile(conf, b, 0o644); err != nil {
		return nil, err
	}
	args := []string{"-c", conf, "-s", filepath.Join(cdir, "sock"), "-n", "ckpool-bench-" + strconv.Itoa(port), "-k", "-l", "5"}
	p, err := startProc(cdir, "ckpool", bin, args...)
	if err != nil {
		return nil, err
	}
	pl := &pool{name: "ckpool", addr: addr, proc: p, command: bin + " " + strings.Join(args, " ")}
	if err := waitStratum(ctx, pl, 60*time.Second); err != nil {
		p.Stop(syscall.SIGTERM, 10*time.Second)
		return nil, err
	}
	return pl, nil
}

// startHashpool starts `hashpool run` with its defaults plus regtest
// flags: the node, a payout address, loopback listeners and difficulty 1.
func startHashpool(ctx context.Context, dir, bin, rpcURL, rpcUser, rpcPass string) (*pool, error) {
	ports := make([]int, 4)
	for i := range ports {
		p, err := childproc.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	payout, err := regtestP2PKH()
	if err != nil {
		return nil, err
	}
	// A fresh data directory for each start: a restart on the last run's
	// data dir would begin with that run's bus log and state.
	hdir, err := os.MkdirTemp(dir, "hashpool-")
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	args := []string{"run", "-network", "regtest", "-data-dir", filepath.Join(hdir, "data"),
		"-node", rpcURL, "-node-auth", rpcUser + ":" + rpcPass, "-payout-address", payout,
		"-stratum", addr, "-stats-http", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"-slparser-http", "127.0.0.1:" + strconv.Itoa(ports[2]), "-metrics", "127.0.0.1:" + strconv.Itoa(ports[3]),
		"-min-difficulty", "1", "-default-difficulty", "1"}
	p, err := startProc(hdir, "hashpool", bin, args...)
	if err != nil {
		return nil, err
	}
	shown := strings.Replace(strings.Join(args, " "), rpcUser+":"+rpcPass, "<user>:<pass>", 1)
	pl := &pool{name: "hashpool", addr: addr, proc: p, command: "hashpool " + shown}
	if err := waitStratum(ctx, pl, 60*time.Second); err != nil {
		p.Stop(syscall.SIGTERM, 20*time.Second)
		return nil, err
	}
	return pl, nil
}

// waitStratum waits until the pool answers subscribe and authorize and
// sends a mining.notify: it has a job and can be measured.
func waitStratum(ctx context.Context, p *pool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !p.proc.Running() {
			return fmt.Errorf("%s exited at start:\n%s", p.name, p.logTail())
		}
		if last = probe(p.addr, 5*time.Second); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	if last == nil {
		last = ctx.Err()
	}
	return fmt.Errorf("%s: no job on %s within %v (%v):\n%s", p.name, p.addr, timeout, last, p.logTail())
}

func probe(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(`{"id":1,"method":"mining.subscribe","params":["probe/1"]}` + "\n" +
		`{"id":2,"method":"mining.authorize","params":["probe.p1","x"]}` + "\n")); err != nil {
		return err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	for i := 0; i < 20; i++ {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if strings.Contains(string(line), `"mining.notify"`) {
			return nil
		}
	}
	return errors.New("no mining.notify in the first 20 lines")
}

// sample is one reading of a pool process.
type sample struct {
	at    time.Time
	rssKB int64
	cpu   time.Duration
	fds   int
}

// sampler reads a process every interval until stopped.
type sampler struct {
	pid     int
	fds     bool
	samples chan []sample
	stop    context.CancelFunc
}

func startSampler(pid int, interval time.Duration, countFDs bool) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{pid: pid, fds: countFDs, samples: make(chan []sample, 1), stop: cancel}
	go func() {
		var out []sample
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; i < 1_000_000; i++ {
			if sm, err := readSample(pid, countFDs); err == nil {
				out = append(out, sm)
			}
			select {
			case <-ctx.Done():
				if sm, err := readSample(pid, countFDs); err == nil {
					out = append(out, sm)
				}
				s.samples <- out
				return
			case <-t.C:
			}
		}
		s.samples <- out
	}()
	return s
}

// finish stops the sampler and returns its samples.
func (s *sampler) finish() []sample {
	s.stop()
	return <-s.samples
}

func readSample(pid int, countFDs bool) (sample, error) {
	ps, err := loadgen.ReadProc(pid)
	if err != nil {
		return sample{}, err
	}
	sm := sample{at: ps.At, rssKB: ps.RSSKB, cpu: ps.CPUTime}
	if countFDs {
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
		if err != nil {
			return sample{}, err
		}
		names, err := f.Readdirnames(100_000)
		f.Close()
		if err != nil && len(names) == 0 {
			return sample{}, err
		}
		sm.fds = len(names)
	}
	return sm, nil
}

// at returns the first sample at or after t (the last one if none).
func at(ss []sample, t time.Time) sample {
	for _, s := range ss {
		if !s.at.Before(t) {
			return s
		}
	}
	if len(ss) == 0 {
		return sample{}
	}
	return ss[len(ss)-1]
}

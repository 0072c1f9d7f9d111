package baseline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/engine/userlist"
)

// The comparison runs each server in a child process of the test binary
// (so VmRSS is that server's alone and neither run inherits the other's
// heap) and the miners in another child (so server and client sockets each
// stay under the 20,000 descriptors a process may hold).
const (
	serverChildEnv = "HASHPOOL_COMPARE_SERVER"  // "baseline" or "engine"
	clientChildEnv = "HASHPOOL_COMPARE_CLIENTS" // "<addr> <sessions>"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(serverChildEnv); kind != "" {
		os.Exit(serverChild(kind))
	}
	if v := os.Getenv(clientChildEnv); v != "" {
		os.Exit(clientChild(v))
	}
	os.Exit(m.Run())
}

// compareJob returns the job both servers publish at a height: a 12-step
// branch, like a mainnet block with a few thousand transactions.
func compareJob(height int32) *Job {
	j := testJob(height)
	j.Branch = make([][32]byte, 12)
	for i := range j.Branch {
		j.Branch[i][0], j.Branch[i][1], j.Branch[i][31] = byte(i), byte(height), 0x5a
	}
	j.PrevHash[1] = byte(height)
	return j
}

// stratumServer is the part of either server the child drives.
type stratumServer struct {
	addr    string
	publish func(*Job) error
	last    func() int64 // server-side duration of the last broadcast, ns
	stop    func()
}

func startBaseline() (*stratumServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := New(Options{Difficulty: 16384})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return &stratumServer{
		addr:    ln.Addr().String(),
		publish: func(j *Job) error { srv.Broadcast(j); return nil },
		last:    srv.Metrics().LastBroadcastNanos.Load,
		stop:    func() { cancel(); <-done },
	}, nil
}

func startEngine(dir string) (*stratumServer, error) {
	o := engine.NewOptions()
	o.Listen = "127.0.0.1:0"
	o.ReusePort = false
	o.DataDir = dir
	o.DefaultDifficulty = 16384
	o.MinDifficulty = 64
	o.VersionMask = 0x1fffe000
	o.GracePeriod = 100 * time.Millisecond
	b := mem.New(mem.Options{})
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		return nil, err
	}
	users, err := userlist.OpenEmbedded(dir, nil)
	if err != nil {
		return nil, err
	}
	srv, err := engine.New(o, engine.Deps{Producer: prod, Users: users})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("engine: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		return nil, errors.New("engine not ready")
	}
	return &stratumServer{
		addr: srv.Addr().String(),
		publish: func(j *Job) error {
			return srv.AddJob(&engine.JobParams{ID: j.ID, Height: j.Height, PrevHash: j.PrevHash, Coinbase1: j.Coinbase1,
				Coinbase2: j.Coinbase2, Branch: j.Branch, Version: j.Version, Bits: j.Bits, Time: j.Time, MinTime: j.MinTime})
		},
		last: srv.Metrics().LastBroadcastNanos.Load,
		stop: func() { cancel(); <-done; prod.Close(); b.Close() },
	}, nil
}

// serverChild serves one kind of server and answers commands on stdin:
// "rss" (after GC and FreeOSMemory: "rss <VmRSS kB> <HeapInuse> <StackInuse>
// <goroutines>"), "job" (publish a job on the next height: "sent"), "last"
// (the server-side duration of the last broadcast), "cpu" (user+system
// nanoseconds so far), "quit".
func serverChild(kind string) int {
	dir, err := os.MkdirTemp("", "compare-engine-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	var srv *stratumServer
	switch kind {
	case "baseline":
		srv, err = startBaseline()
	case "engine":
		srv, err = startEngine(dir)
	default:
		err = fmt.Errorf("unknown server %q", kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.stop()
	height := int32(1000)
	// Sessions get this job (and set_difficulty) right after authorize, as
	// idle miners on a live pool hold one.
	if err := srv.publish(compareJob(height)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("addr", srv.addr)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "rss":
			runtime.GC()
			debug.FreeOSMemory()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Println("rss", vmRSS(), ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine())
		case "job":
			height++
			if err := srv.publish(compareJob(height)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Println("sent")
		case "last":
			fmt.Println("last", srv.last())
		case "cpu":
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			fmt.Println("cpu", ru.Utime.Nano()+ru.Stime.Nano())
		case "quit":
			return 0
		}
	}
	return 0
}

// vmRSS returns VmRSS from /proc/self/status in kB (0 if unreadable).
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// clientChild opens the sessions, subscribes and authorizes each, prints
// "ready" once every session has its first notify, then "got" each time
// every session has received one more.
func clientChild(arg string) int {
	f := strings.Fields(arg)
	if len(f) != 2 {
		return 2
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 || n > 15000 {
		return 2
	}
	var ready sync.WaitGroup
	var notifies atomic.Int64
	var out sync.Mutex
	ready.Add(n)
	for i := 0; i < n; i++ {
		var c net.Conn
		for try := 0; ; try++ {
			if c, err = net.Dial("tcp", f[0]); err == nil || try == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		go func(c net.Conn) {
			io.WriteString(c, "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"bench/1\"]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"bench.w\",\"x\"]}\n")
			r := bufio.NewReaderSize(c, 4096)
			authorized, first := false, false
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				switch {
				case !authorized:
					authorized = bytes.HasPrefix(line, []byte(`{"id":2,"result":true`))
				case !bytes.Contains(line, []byte(`"mining.notify"`)):
				case !first:
					first = true
					ready.Done()
				default:
					if notifies.Add(1)%int64(n) == 0 {
						out.Lock()
						fmt.Println("got")
						out.Unlock()
					}
				}
			}
		}(c)
	}
	ready.Wait()
	out.Lock()
	fmt.Println("ready")
	out.Unlock()
	select {} // the parent kills us
}

// child is a running child process of the test binary with line-oriented
// stdin and stdout.
type child struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startChild(t *testing.T, env string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, in: in, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if !strings.HasPrefix(sc.Text(), "[gnet]") { // gnet logs its start to stdout
				c.lines <- sc.Text()
			}
		}
		close(c.lines)
	}()
	t.Cleanup(c.kill)
	return c
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// expect waits for a line starting with prefix and returns its fields
// after the prefix.
func (c *child) expect(prefix string, timeout time.Duration) []string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok || !strings.HasPrefix(l, prefix) {
			c.t.Fatalf("child said %q (open %v), want %q", l, ok, prefix)
		}
		return strings.Fields(strings.TrimPrefix(l, prefix))
	case <-time.After(timeout):
		c.t.Fatalf("child did not say %q within %v", prefix, timeout)
	}
	return nil
}

func (c *child) ask(cmd, prefix string) []string {
	c.t.Helper()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		c.t.Fatal(err)
	}
	return c.expect(prefix, 30*time.Second)
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// compareResult is one server's numbers.
type compareResult struct {
	kind                     string
	rss0, rss1, rss2         int64 // kB: before sessions, idle sessions, after the broadcasts
	heap, stack, goroutines  int64 // with the idle sessions
	fanout                   []time.Duration
	serverSide               []time.Duration
	cpuPerBroadcast          time.Duration
	perSessionKB, afterBcsKB float64
}

func runCompare(t *testing.T, kind string, n, rounds int) compareResult {
	r := compareResult{kind: kind}
	srv := startChild(t, serverChildEnv+"="+kind)
	addr := srv.expect("addr ", 30*time.Second)[0]
	r.rss0 = atoi(t, srv.ask("rss", "rss ")[0])
	cl := startChild(t, clientChildEnv+"="+addr+" "+strconv.Itoa(n))
	cl.expect("ready", 300*time.Second)
	time.Sleep(2 * time.Second) // let the last replies drain
	f := srv.ask("rss", "rss ")
	r.rss1, r.heap, r.stack, r.goroutines = atoi(t, f[0]), atoi(t, f[1]), atoi(t, f[2]), atoi(t, f[3])
	cpu0 := atoi(t, srv.ask("cpu", "cpu ")[0])
	for i := 0; i < rounds; i++ {
		start := time.Now()
		srv.ask("job", "sent")
		cl.expect("got", 120*time.Second)
		r.fanout = append(r.fanout, time.Since(start))
		r.serverSide = append(r.serverSide, time.Duration(atoi(t, srv.ask("last", "last ")[0])))
		time.Sleep(200 * time.Millisecond) // the box is shared: let it settle between rounds
	}
	cpu1 := atoi(t, srv.ask("cpu", "cpu ")[0])
	// The CPU window includes the "last"/"cpu" exchanges and idle sessions'
	// timers, the same for both servers.
	r.cpuPerBroadcast = time.Duration((cpu1 - cpu0) / int64(rounds))
	r.rss2 = atoi(t, srv.ask("rss", "rss ")[0])
	r.perSessionKB = float64(r.rss1-r.rss0) / float64(n)
	r.afterBcsKB = float64(r.rss2-r.rss0) / float64(n)
	cl.kill()
	io.WriteString(srv.in, "quit\n")
	srv.kill()
	return r
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestCompareEngine opens N authorized idle sessions against the baseline
// and against the engine, in the same run, and reports RSS per session and
// the time for one mining.notify to reach all N (published → every client
// has read it), as a ratio. Set HASHPOOL_BENCH=1 to run it;
// HASHPOOL_BENCH_SESSIONS (default 10000), HASHPOOL_BENCH_ROUNDS (default 7)
// and HASHPOOL_BENCH_OUT (a file for the report) tune it.
func TestCompareEngine(t *testing.T) {
	if os.Getenv("HASHPOOL_BENCH") != "1" {
		t.Skip("set HASHPOOL_BENCH=1 to compare the baseline with the engine (10k sessions, ~1 min)")
	}
	n, rounds := 10000, 7
	if v, err := strconv.Atoi(os.Getenv("HASHPOOL_BENCH_SESSIONS")); err == nil && v > 0 && v <= 15000 {
		n = v
	}
	if v, err := strconv.Atoi(os.Getenv("HASHPOOL_BENCH_ROUNDS")); err == nil && v > 0 && v <= 100 {
		rounds = v
	}
	var res []compareResult
	for _, kind := range []string{"baseline", "engine"} {
		res = append(res, runCompare(t, kind, n, rounds))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sessions %d, broadcast rounds %d, GOMAXPROCS %d, %s\n\n", n, rounds, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(&b, "%-9s %9s %9s %9s %8s %9s %10s %11s %11s %11s %11s\n", "server", "rss0 kB", "rss1 kB",
		"KB/sess", "heap MB", "stack MB", "goroutines", "fanout p50", "fanout min", "server p50", "cpu/bcast")
	for _, r := range res {
		fmt.Fprintf(&b, "%-9s %9d %9d %9.2f %8.1f %9.1f %10d %11s %11s %11s %11s\n", r.kind, r.rss0, r.rss1,
			r.perSessionKB, float64(r.heap)/1e6, float64(r.stack)/1e6, r.goroutines,
			median(r.fanout).Round(10*time.Microsecond), slices.Min(r.fanout).Round(10*time.Microsecond),
			median(r.serverSide).Round(10*time.Microsecond), r.cpuPerBroadcast.Round(10*time.Microsecond))
	}
	base, eng := res[0], res[1]
	fmt.Fprintf(&b, "\nRSS after the broadcasts, per session: baseline %.2f KB, engine %.2f KB\n", base.afterBcsKB, eng.afterBcsKB)
	fmt.Fprintf(&b, "ratio baseline/engine: RSS per idle session %.1fx, fan-out p50 %.2fx, fan-out min %.2fx, server CPU per broadcast %.2fx\n",
		base.perSessionKB/eng.perSessionKB,
		float64(median(base.fanout))/float64(median(eng.fanout)),
		float64(slices.Min(base.fanout))/float64(slices.Min(eng.fanout)),
		float64(base.cpuPerBroadcast)/float64(eng.cpuPerBroadcast))
	fmt.Fprintf(&b, "fan-out rounds: baseline %v\n                engine   %v\n", base.fanout, eng.fanout)
	t.Log("\n" + b.String())
	if out := os.Getenv("HASHPOOL_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !(eng.perSessionKB > 0) || !(base.perSessionKB > 0) {
		t.Errorf("RSS per session not measured: baseline %.2f engine %.2f", base.perSessionKB, eng.perSessionKB)
	}
}

package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// broadcastChildEnv makes the test binary act as the client side of
// BenchmarkBroadcast: "<addr> <sessions>". The clients live in a child
// process so that server and client sockets together stay under the
// 20,000 descriptors a process may hold.
const broadcastChildEnv = "HASHPOOL_BROADCAST_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(broadcastChildEnv); v != "" {
		os.Exit(broadcastChild(v))
	}
	if v := os.Getenv(engineChildEnv); v != "" {
		os.Exit(engineChild(v))
	}
	if v := os.Getenv(submitChildEnv); v != "" {
		os.Exit(submitChild(v))
	}
	os.Exit(m.Run())
}

// broadcastChild opens the sessions, authorizes them, prints "ready", then
// prints "got" each time every session has received one more notify.
func broadcastChild(arg string) int {
	f := strings.Fields(arg)
	if len(f) != 2 {
		return 2
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 || n > 15000 {
		return 2
	}
	var authorized sync.WaitGroup
	var notifies atomic.Int64
	var out sync.Mutex
	authorized.Add(n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", f[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		go func(c net.Conn) {
			fmt.Fprintf(c, "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"bench.w\"]}\n")
			r := bufio.NewReaderSize(c, 4096)
			seenAuth := false
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				if !seenAuth && bytes.HasPrefix(line, []byte(`{"id":2,"result":true`)) {
					seenAuth = true
					authorized.Done()
					continue
				}
				if bytes.Contains(line, []byte("mining.notify")) && seenAuth {
					if notifies.Add(1)%int64(n) == 0 {
						out.Lock()
						fmt.Println("got")
						out.Unlock()
					}
				}
			}
		}(c)
	}
	authorized.Wait()
	out.Lock()
	fmt.Println("ready")
	out.Unlock()
	select {} // the parent kills us
}

// BenchmarkBroadcast measures one mining.notify fan-out to every session
// over real loopback sockets: from AddJob to the last client having read it.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{10000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) { benchBroadcast(b, n) })
	}
}

func benchBroadcast(b *testing.B, n int) {
	o := testOptions(b)
	o.DefaultDifficulty = 16384
	o.MinDifficulty = 64
	p := startPool(b, o)
	// Sessions authorize without a job; the first notify is the first round.
	cmd, lines := startBroadcastChild(b, p.srv.Addr().String(), n)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	wait := func(want string) { waitChild(b, lines, want) }
	wait("ready")
	base := time.Now().Unix()
	height := int32(1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		height++
		job := testJobParams(height, false)
		job.ID = uint64(base)<<32 | uint64(i)
		if err := p.srv.AddJob(job); err != nil {
			b.Fatal(err)
		}
		wait("got")
	}
	b.StopTimer()
	b.ReportMetric(float64(p.srv.metrics.LastBroadcastNanos.Load())/1e6, "ms-enqueue-last")
}

// BenchmarkSessionMemory holds 15,000 authorized stratum sessions (clients
// in a child process) and reports the server process's resident memory per
// session: VmRSS after the sessions authorized minus VmRSS before, both
// after a GC that returns freed memory to the OS. Run it with
// -benchtime=1x; b.N rounds only repeat the final measurement.
func BenchmarkSessionMemory(b *testing.B) {
	const n = 15000
	o := testOptions(b)
	o.DefaultDifficulty = 16384
	o.MinDifficulty = 64
	// The in-process bus stands for the broker: it keeps one common event,
	// not the 15,000 connects, so that only the server is measured.
	bs := mem.New(mem.Options{Topics: map[string]mem.Retention{o.Topics.CommonEvents: {MaxRecords: 1}}})
	prod, err := bs.NewProducer(bus.ProducerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	defer prod.Close()
	p := startPoolOn(b, o, bs, prod)
	rssBefore, heapBefore := settledMemory(b)
	cmd, lines := startBroadcastChild(b, p.srv.Addr().String(), n)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitChild(b, lines, "ready")
	// Every session gets a job (and its set_difficulty) before measuring.
	if err := p.srv.AddJob(testJobParams(1000, false)); err != nil {
		b.Fatal(err)
	}
	waitChild(b, lines, "got")
	if got := p.srv.metrics.Sessions.Load(); got != n {
		b.Fatalf("%d sessions open, want %d", got, n)
	}
	var rss, heap uint64
	for b.Loop() {
		rss, heap = settledMemory(b)
	}
	// HASHPOOL_HEAPPROFILE=<file> writes the heap profile taken with the
	// sessions open (use -test.memprofilerate=256 for a useful one).
	if f := os.Getenv("HASHPOOL_HEAPPROFILE"); f != "" {
		fh, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		err = pprof.Lookup("heap").WriteTo(fh, 0)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	perSession := float64(int64(rss)-int64(rssBefore)) / n
	if perSession > 2048 {
		b.Errorf("%.0f bytes of RSS per session, over the 2 KB budget", perSession)
	}
	b.ReportMetric(perSession, "rss-B/session")
	b.ReportMetric(float64(int64(heap)-int64(heapBefore))/n, "heap-B/session")
}

// settledMemory returns VmRSS and the Go heap in use after a forced GC that
// returns free pages to the OS.
func settledMemory(tb testing.TB) (rss, heap uint64) {
	tb.Helper()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status:", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, ms.HeapInuse
		}
	}
	tb.Skip("no VmRSS in /proc/self/status")
	return 0, 0
}

// startBroadcastChild runs broadcastChild with n sessions against addr in a
// child process and returns its stdout lines.
func startBroadcastChild(b testing.TB, addr string, n int) (*exec.Cmd, <-chan string) {
	b.Helper()
	cmd, _, lines := startChild(b, broadcastChildEnv+"="+addr+" "+strconv.Itoa(n))
	return cmd, lines
}

// startChild runs the test binary with env added (one of the *ChildEnv
// settings) and returns it, its stdin and its stdout lines.
func startChild(b testing.TB, env string) (*exec.Cmd, io.WriteCloser, <-chan string) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, stdin, lines
}

// waitChild waits (at most 120 s) for the child's next line, which must be
// want.
func waitChild(b testing.TB, lines <-chan string, want string) {
	b.Helper()
	select {
	case l, ok := <-lines:
		if !ok || l != want {
			b.Fatalf("child said %q (open %v), want %q", l, ok, want)
		}
	case <-time.After(120 * time.Second):
		b.Fatalf("child did not say %q", want)
	}
}

// BenchmarkBroadcastSubmitLatency measures what a job broadcast to 10,000
// sessions costs a miner on the same event loop: one miner submits every
// 2 ms over loopback while each round broadcasts a new job to every
// session (clients in a child process) and waits until all have read it.
// It reports the miner's answer latency (p50, p99, max) over the rounds and
// the broadcast time. One event loop, so every session shares it. Rounds
// are 300 ms apart, so p99 shows the answers delayed by a broadcast;
// answers-in-broadcast/op counts the answers whose submit was written while
// one was under way (near zero when a broadcast holds the loop), and the
// in-bc-* and quiet-* percentiles are over those answers and the others.
func BenchmarkBroadcastSubmitLatency(b *testing.B) {
	const n = 10000
	o := testOptions(b)
	o.EventLoops = 1
	o.DefaultDifficulty = 16384
	o.MinDifficulty = 64
	p := startPool(b, o)
	cmd, lines := startBroadcastChild(b, p.srv.Addr().String(), n)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitChild(b, lines, "ready")

	c := p.dial()
	c.subscribeAuthorize("cgminer/4.10", "bench.miner")
	base := time.Now().Unix()
	addJob := jobAdder(b, p, 5000)
	addJob(0)
	waitChild(b, lines, "got")

	var mu sync.Mutex
	sent := map[int]time.Time{}
	var lat []submitAnswer
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the miner's reader: answers carry the submit's id
		defer wg.Done()
		for {
			c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			line, err := c.r.ReadString('\n')
			if err != nil {
				return
			}
			var id int
			if _, err := fmt.Sscanf(line, `{"id":%d,`, &id); err != nil {
				continue // notify, set_difficulty
			}
			now := time.Now()
			mu.Lock()
			if t0, ok := sent[id]; ok {
				lat = append(lat, submitAnswer{sent: t0, took: now.Sub(t0)})
				delete(sent, id)
			}
			mu.Unlock()
		}
	}()
	go func() { // the miner: a submit every 2 ms
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for id := 10; ; id++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			sent[id] = time.Now()
			mu.Unlock()
			line := fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["bench.miner","0","%016x","%08x","00000000"]}`+"\n", id, id, base)
			if _, err := c.conn.Write([]byte(line)); err != nil {
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()
	var windows [][2]time.Time // each broadcast: AddJob → every session read it
	var spreads []time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		t0 := time.Now()
		addJob(i)
		waitChild(b, lines, "got")
		windows = append(windows, [2]time.Time{t0, time.Now()})
		spreads = append(spreads, time.Duration(p.srv.metrics.LastBroadcastNanos.Load()))
		b.StopTimer()
		time.Sleep(300 * time.Millisecond) // quiet time between broadcasts
		b.StartTimer()
	}
	b.StopTimer()
	close(stop)
	time.Sleep(50 * time.Millisecond)
	c.conn.Close()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		b.Fatal("no answers measured")
	}
	var all, in, out []time.Duration
	for _, a := range lat {
		all = append(all, a.took)
		if slices.ContainsFunc(windows, func(w [2]time.Time) bool { return !a.sent.Before(w[0]) && a.sent.Before(w[1]) }) {
			in = append(in, a.took)
		} else {
			out = append(out, a.took)
		}
	}
	report := func(d []time.Duration, prefix string) {
		if len(d) == 0 {
			return
		}
		slices.Sort(d)
		q := func(f float64) float64 {
			return float64(d[min(len(d)-1, int(f*float64(len(d))))].Microseconds()) / 1000
		}
		b.ReportMetric(q(0.50), prefix+"p50-ms")
		b.ReportMetric(q(0.99), prefix+"p99-ms")
		b.ReportMetric(float64(d[len(d)-1].Microseconds())/1000, prefix+"max-ms")
	}
	report(all, "")
	report(in, "in-bc-")
	report(out, "quiet-")
	b.ReportMetric(float64(len(lat)), "answers")
	b.ReportMetric(float64(len(in))/float64(b.N), "answers-in-broadcast/op")
	slices.Sort(spreads)
	b.ReportMetric(float64(spreads[len(spreads)/2].Microseconds())/1000, "broadcast-median-ms")
	b.ReportMetric(float64(p.srv.metrics.LastBroadcastNanos.Load())/1e6, "broadcast-ms")
}

// submitAnswer is one answer of BenchmarkBroadcastSubmitLatency's miner:
// when its submit was written and how long the answer took.
type submitAnswer struct {
	sent time.Time
	took time.Duration
}

package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// submitChildEnv makes the test binary act as the miners of
// BenchmarkSubmitLoopback: "<addr> <sessions> <submits/s> <seconds>".
const submitChildEnv = "HASHPOOL_SUBMIT_CHILD"

// submitRing is how many submits per session are remembered for matching
// answers (ids are per session, so a ring slot is reused after that many).
const submitRing = 16

// submitMiner is one session of submitChild.
type submitMiner struct {
	conn  net.Conn
	job   atomic.Value // string: the short job id of the newest notify
	ntime atomic.Value // string: its ntime
	next  atomic.Uint32
	sent  [submitRing]atomic.Int64 // unix nanos a submit with id%submitRing was written
}

// notifyJob returns the job id and ntime of a mining.notify line (the first
// and the eighth parameter), or ok false.
func notifyJob(line []byte) (job, ntime string, ok bool) {
	const pre = `"method":"mining.notify","params":["`
	i := bytes.Index(line, []byte(pre))
	if i < 0 {
		return "", "", false
	}
	rest := line[i+len(pre):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", "", false
	}
	job = string(rest[:j])
	// ...,"<version>","<nbits>","<ntime>",<clean>]}
	k := bytes.LastIndexByte(rest, ',')
	if k < 10 || rest[k-1] != '"' {
		return "", "", false
	}
	return job, string(rest[k-9 : k-1]), true
}

// submitChild opens the sessions, authorizes them, waits until each has a
// job, prints "ready", waits for "go" on stdin, submits for the given
// seconds at the given rate (spread evenly over the sessions, every share a
// new nonce), waits for the last answers and prints one result line:
//
//	done <sent> <answered> <p50 µs> <p99 µs> <max µs> <in-broadcast answers> <in p50> <in p99> <in max> <spreads µs,...>
//
// "in-broadcast" are the submits written between the first and the last
// receipt of a job that arrived after "go"; spreads are those first→last
// times, one per such job.
func submitChild(arg string) int {
	f := strings.Fields(arg)
	if len(f) != 4 {
		return 2
	}
	n, err1 := strconv.Atoi(f[1])
	rate, err2 := strconv.Atoi(f[2])
	secs, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil || n < 1 || n > 15000 || rate < 1 || secs < 1 {
		return 2
	}
	type answer struct{ sent, took int64 }
	var (
		mu      sync.Mutex
		answers []answer
		started atomic.Bool
		jobMu   sync.Mutex
		jobSeen = map[string][2]int64{} // job id → first, last receipt (after go)
		jobCnt  = map[string]int{}
	)
	var ready sync.WaitGroup
	ready.Add(n)
	miners := make([]*submitMiner, n)
	for i := range miners {
		c, err := net.Dial("tcp", f[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		m := &submitMiner{conn: c}
		miners[i] = m
		fmt.Fprintf(c, "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"bench.w\"]}\n")
		go func() {
			r := bufio.NewReaderSize(c, 4096)
			first := true
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				now := time.Now().UnixNano()
				if bytes.HasPrefix(line, []byte(`{"id":`)) && !bytes.HasPrefix(line, []byte(`{"id":null`)) {
					id, err := strconv.Atoi(string(line[6 : bytes.IndexAny(line[6:], ",}")+6]))
					if err != nil || id < 10 {
						continue
					}
					t0 := m.sent[id%submitRing].Swap(0)
					if t0 != 0 && started.Load() {
						mu.Lock()
						answers = append(answers, answer{t0, now - t0})
						mu.Unlock()
					}
					continue
				}
				job, ntime, ok := notifyJob(line)
				if !ok {
					continue
				}
				m.job.Store(job)
				m.ntime.Store(ntime)
				if first {
					first = false
					ready.Done()
				}
				if started.Load() {
					jobMu.Lock()
					s, had := jobSeen[job]
					if !had {
						s[0] = now
					}
					s[1] = now
					jobSeen[job] = s
					jobCnt[job]++
					jobMu.Unlock()
				}
			}
		}()
	}
	ready.Wait()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 1
	}
	started.Store(true)
	var sent atomic.Int64
	senders := max(1, (rate+4999)/5000)
	end := time.Now().Add(time.Duration(secs) * time.Second)
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			// Each sender owns every senders-th session and writes its share
			// of the rate each millisecond (carrying the fraction over).
			mine := (n - s + senders - 1) / senders
			perMs := float64(rate) / float64(senders) / 1000
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			credit, at := 0.0, 0
			buf := make([]byte, 0, 256)
			last := time.Now()
			for now := range t.C {
				if now.After(end) {
					return
				}
				credit += perMs * float64(now.Sub(last)) / float64(time.Millisecond)
				last = now
				for ; credit >= 1; credit-- {
					m := miners[s+senders*at]
					at = (at + 1) % mine
					job, _ := m.job.Load().(string)
					ntime, _ := m.ntime.Load().(string)
					id := 10 + m.next.Add(1)
					buf = fmt.Appendf(buf[:0], `{"id":%d,"method":"mining.submit","params":["bench.w","%s","%016x","%s","%08x"]}`+"\n",
						id, job, uint64(id)<<20|uint64(s), ntime, id*2654435761)
					m.sent[id%submitRing].Store(time.Now().UnixNano())
					if _, err := m.conn.Write(buf); err != nil {
						return
					}
					sent.Add(1)
				}
			}
		}(s)
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // the last answers
	mu.Lock()
	defer mu.Unlock()
	jobMu.Lock()
	defer jobMu.Unlock()
	var wins [][2]int64
	var spreads []string
	for j, w := range jobSeen {
		if jobCnt[j] >= n*99/100 { // a broadcast to (almost) every session
			wins = append(wins, w)
			spreads = append(spreads, strconv.FormatInt((w[1]-w[0])/1000, 10))
		}
	}
	if len(spreads) == 0 {
		spreads = append(spreads, "-")
	}
	var all, in []int64
	for _, a := range answers {
		all = append(all, a.took)
		if slices.ContainsFunc(wins, func(w [2]int64) bool { return a.sent >= w[0] && a.sent < w[1] }) {
			in = append(in, a.took)
		}
	}
	q := func(d []int64) string {
		if len(d) == 0 {
			return "0 0 0"
		}
		slices.Sort(d)
		at := func(f float64) int64 { return d[min(len(d)-1, int(f*float64(len(d))))] / 1000 }
		return fmt.Sprintf("%d %d %d", at(0.5), at(0.99), d[len(d)-1]/1000)
	}
	fmt.Printf("done %d %d %s %d %s %s\n", sent.Load(), len(all), q(all), len(in), q(in), strings.Join(spreads, ","))
	return 0
}

// BenchmarkSubmitLoopback measures the share path as miners see it and as
// the server pays for it: 10,000 stratum sessions in a child process
// submit over loopback TCP at a fixed total rate for a few seconds (every
// share hashed and rejected as low difficulty, as in bench/ckpool's
// scenarios), against a server with two event loops (hashpool run's
// default on this box). It reports the server process's CPU time per
// answered submit (which includes the idle cost of the sessions), the
// answer latency (p50, p99, max), and, in the broadcast variants, where a
// new job goes to every session a third into the window, the latency of
// the submits written while it was under way and the broadcast's
// first→last receipt spread. b.N is ignored past one window: run with
// -benchtime 1x.
func BenchmarkSubmitLoopback(b *testing.B) {
	for _, c := range []struct {
		rate      int
		broadcast bool
	}{{2000, false}, {10000, false}, {20000, false}, {10000, true}} {
		name := fmt.Sprintf("rate=%d", c.rate)
		if c.broadcast {
			name += "/broadcast"
		}
		b.Run(name, func(b *testing.B) { benchSubmitLoopback(b, 10000, c.rate, 6, c.broadcast) })
	}
}

func benchSubmitLoopback(b *testing.B, n, rate, secs int, broadcast bool) {
	o := testOptions(b)
	o.MinDifficulty = 1
	o.DefaultDifficulty = 1
	p := startPool(b, o)
	addJob := jobAdder(b, p, 7000)
	addJob(0)
	cmd, stdin, lines := startChild(b, fmt.Sprintf("%s=%s %d %d %d", submitChildEnv, p.srv.Addr(), n, rate, secs))
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitChild(b, lines, "ready")
	time.Sleep(time.Second) // the sessions' connect work is done
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		b.Fatal(err)
	}
	window := time.After(time.Duration(secs) * time.Second)
	if broadcast {
		time.Sleep(time.Duration(secs) * time.Second / 3)
		addJob(1)
	}
	<-window // the server's CPU is taken over the submit window only
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	var res string
	select {
	case l, ok := <-lines:
		if !ok || !strings.HasPrefix(l, "done ") {
			b.Fatalf("child said %q", l)
		}
		res = l
	case <-time.After(time.Duration(secs)*time.Second + 60*time.Second):
		b.Fatal("child did not finish")
	}
	b.StopTimer()
	fs := strings.Fields(res)
	if len(fs) != 11 {
		b.Fatalf("child said %q", res)
	}
	num := func(i int) float64 { v, _ := strconv.ParseFloat(fs[i], 64); return v }
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) -
		syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
	answered := num(2)
	if answered == 0 {
		b.Fatal("no answers")
	}
	b.ReportMetric(float64(cpu.Microseconds())/answered, "cpu-µs/submit")
	b.ReportMetric(answered/float64(secs), "answers/s")
	b.ReportMetric(num(3)/1000, "p50-ms")
	b.ReportMetric(num(4)/1000, "p99-ms")
	b.ReportMetric(num(5)/1000, "max-ms")
	if broadcast {
		b.ReportMetric(num(6), "in-bc-answers")
		b.ReportMetric(num(7)/1000, "in-bc-p50-ms")
		b.ReportMetric(num(8)/1000, "in-bc-p99-ms")
		b.ReportMetric(num(9)/1000, "in-bc-max-ms")
		if sp, err := strconv.ParseFloat(strings.Split(fs[10], ",")[0], 64); err == nil {
			b.ReportMetric(sp/1000, "fanout-ms")
		}
	}
}

// TestSlicedBroadcastKeepsOrderAndEveryLine: with one event loop and 300
// sessions, a broadcast is written in many slices (broadcastCheck sessions
// or broadcastSlice each) with the loop reading sockets between them. One
// of the sessions submits throughout. Every session must get each job's
// set_difficulty (when it changed) before its notify, every notify exactly
// once and as a whole line, the newest job last when two broadcasts
// overlap, and the submitter every answer, in order, as whole lines.
func TestSlicedBroadcastKeepsOrderAndEveryLine(t *testing.T) {
	const n = 300
	o := testOptions(t)
	o.EventLoops = 1
	p := startPool(t, o)
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = p.dial()
		clients[i].subscribeAuthorize("cgminer/4.10", "slice.w")
	}
	base := time.Now().Unix()
	addJob := jobAdder(t, p, 2000)
	// The submitter: ids from 100 on, its answers must come back in order.
	sub := clients[0]
	stop := make(chan struct{})
	var sent atomic.Int64
	go func() {
		for id := 100; ; id++ {
			select {
			case <-stop:
				return
			default:
			}
			line := fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["slice.w","0","%016x","%08x","00000000"]}`+"\n", id, id, base)
			if _, err := sub.conn.Write([]byte(line)); err != nil {
				return
			}
			sent.Add(1)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	addJob(1)
	addJob(2) // overlaps the first broadcast: the newer job must end up last everywhere
	newest := strconv.Itoa(int(p.srv.Jobs().Latest().ShortID))
	type result struct {
		notifies map[string]int
		last     string
		answers  int
		err      error
	}
	results := make(chan result, n)
	for i, c := range clients {
		go func(i int, c *client) {
			r := result{notifies: map[string]int{}}
			defer func() { results <- r }()
			nextID := 100
			diffSeen := false
			for {
				_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				line, err := c.r.ReadString('\n')
				if err != nil {
					r.err = fmt.Errorf("session %d: %v (after %d notifies)", i, err, len(r.notifies))
					return
				}
				if !strings.HasPrefix(line, "{") || !strings.HasSuffix(line, "}\n") || strings.Count(line, "\n") != 1 {
					r.err = fmt.Errorf("session %d: torn line %q", i, line)
					return
				}
				switch {
				case strings.Contains(line, `"mining.set_difficulty"`):
					diffSeen = true
				case strings.Contains(line, `"mining.notify"`):
					if !diffSeen {
						r.err = fmt.Errorf("session %d: notify before any set_difficulty", i)
						return
					}
					job, _, ok := notifyJob([]byte(line))
					if !ok {
						r.err = fmt.Errorf("session %d: bad notify %q", i, line)
						return
					}
					r.notifies[job]++
					r.last = job
					if r.last == newest && (i != 0 || r.answers >= 50) {
						return
					}
				case strings.HasPrefix(line, `{"id":`):
					var id int
					if _, err := fmt.Sscanf(line, `{"id":%d,`, &id); err != nil || id != nextID {
						r.err = fmt.Errorf("session %d: answer %q, want id %d", i, line, nextID)
						return
					}
					nextID++
					r.answers++
					if r.last == newest && r.answers >= 50 {
						return
					}
				}
			}
		}(i, c)
	}
	for range clients {
		r := <-results
		if r.err != nil {
			close(stop)
			t.Fatal(r.err)
		}
		if r.last != newest {
			t.Errorf("last notify of a session is job %q, want %s", r.last, newest)
		}
		for job, k := range r.notifies {
			if k != 1 {
				t.Errorf("job %s notified %d times to one session", job, k)
			}
		}
	}
	close(stop)
	if sent.Load() == 0 {
		t.Fatal("the submitter sent nothing")
	}
}

// jobAdder returns a function that adds job i (IDs from the current second,
// heights from height+1) to p's server.
func jobAdder(tb testing.TB, p *testPool, height int32) func(i int) {
	base := time.Now().Unix()
	return func(i int) {
		tb.Helper()
		height++
		job := testJobParams(height, false)
		job.ID = uint64(base)<<32 | uint64(i)
		if err := p.srv.AddJob(job); err != nil {
			tb.Fatal(err)
		}
	}
}

package scenarios

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
)

// Issue 10, proof item "hostile authorize": an honest miner submits a share
// every 2 ms to a real engine (gnet, loopback TCP, the embedded user list in
// a temporary directory, the default NewUsersPerConn/NewUsersPerIP bounds,
// one event loop so that the hostile client shares the miner's loop) while
// a hostile client from the same IP tries many new user names, either as
// mining.authorize calls on one connection or as one connection per name.
// The miner's submit→answer latency is measured before and during.

// hostileConfig sizes one run.
type hostileConfig struct {
	Names  int           // distinct new names the hostile client tries
	Window time.Duration // honest measurement before, and during from the hostile start
	PerIP  bool          // one connection per name (else every name on one connection)
	Limit  time.Duration // bound on the hostile client's run
	// Known makes the control run: the same connections and calls, every
	// one with the one name already in the list (no registration), so the
	// cost of the connections alone shows.
	Known bool
}

// latencyStats are the honest miner's answers to the submits sent in one window.
type latencyStats struct {
	Sent, Answered, Accepted int
	P50, P99, Max            time.Duration
}

func (l latencyStats) String() string {
	return fmt.Sprintf("sent %d answered %d (true %d) p50 %.3f ms p99 %.3f ms max %.3f ms",
		l.Sent, l.Answered, l.Accepted, msOf(l.P50), msOf(l.P99), msOf(l.Max))
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// hostileResult is one run's outcome.
type hostileResult struct {
	Before, During, Span latencyStats // Span: submits sent while the hostile client ran
	HostileTook          time.Duration
	Tried                int         // names sent
	Accepted             int         // authorize answered true
	Codes                map[int]int // authorize errors by code
	Unanswered           int         // names without an answer (connection closed, time bound)
	ConnErrors           int         // dial or I/O errors (per-IP mode)
	UsersRefused         int64       // engine Metrics.UsersRefused
	Registered           int         // names in the user list at the end
}

// honestSample is one honest submit.
type honestSample struct {
	sent time.Time
	lat  time.Duration // 0: no answer
	ok   bool
}

// honestMiner submits a share every 2 ms on its own connection and records
// each answer's latency.
type honestMiner struct {
	conn net.Conn
	mu   sync.Mutex
	s    []honestSample // index = id - firstID
	stop chan struct{}
	wg   sync.WaitGroup
}

const firstID = 100

type stratumLine struct {
	ID     json.RawMessage   `json:"id"`
	Result json.RawMessage   `json:"result"`
	Error  json.RawMessage   `json:"error"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

// startHonest connects, subscribes, authorizes user (already known to the
// user list), waits for a job and starts submitting.
func startHonest(t *testing.T, addr, user string) *honestMiner {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, `{"id":1,"method":"mining.subscribe","params":["honest/1.0"]}`+"\n"+
		`{"id":2,"method":"mining.authorize","params":["%s.w1","x"]}`+"\n", user)
	var en2Size int
	var jobID, ntime string
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for jobID == "" {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("honest miner setup: %v", err)
		}
		var m stratumLine
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("honest miner: %q: %v", line, err)
		}
		switch {
		case string(m.ID) == "1":
			var res []json.RawMessage
			if err := json.Unmarshal(m.Result, &res); err != nil || len(res) < 3 {
				t.Fatalf("subscribe answer %q", line)
			}
			json.Unmarshal(res[2], &en2Size)
		case string(m.ID) == "2":
			if string(m.Result) != "true" {
				t.Fatalf("honest authorize answered %q", line)
			}
		case m.Method == "mining.notify" && len(m.Params) >= 8:
			json.Unmarshal(m.Params[0], &jobID)
			json.Unmarshal(m.Params[7], &ntime)
		}
	}
	if en2Size < 4 || en2Size > 8 {
		t.Fatalf("extranonce2 size %d", en2Size)
	}
	conn.SetReadDeadline(time.Time{})
	h := &honestMiner{conn: conn, stop: make(chan struct{})}
	h.wg.Add(2)
	go func() { // answers carry the submit's id
		defer h.wg.Done()
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			now := time.Now()
			var m stratumLine
			if json.Unmarshal(line, &m) != nil || m.Method != "" {
				continue
			}
			id, err := strconv.Atoi(string(m.ID))
			if err != nil || id < firstID {
				continue
			}
			h.mu.Lock()
			if i := id - firstID; i < len(h.s) && h.s[i].lat == 0 {
				h.s[i].lat = now.Sub(h.s[i].sent)
				h.s[i].ok = string(m.Result) == "true"
			}
			h.mu.Unlock()
		}
	}()
	go func() { // a submit every 2 ms, each a distinct nonce
		defer h.wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var buf []byte
		for id := firstID; ; id++ {
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
			buf = fmt.Appendf(buf[:0], `{"id":%d,"method":"mining.submit","params":["%s.w1","%s","%0*x","%s","%08x"]}`+"\n",
				id, user, jobID, en2Size*2, id, ntime, uint32(id))
			h.mu.Lock()
			h.s = append(h.s, honestSample{sent: time.Now()})
			h.mu.Unlock()
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}()
	return h
}

// finish stops submitting, waits (bounded) for the last answers and closes.
func (h *honestMiner) finish() {
	close(h.stop)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		pending := 0
		for _, s := range h.s[max(0, len(h.s)-50):] {
			if s.lat == 0 {
				pending++
			}
		}
		h.mu.Unlock()
		if pending == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.conn.Close()
	h.wg.Wait()
}

// stats summarises the submits sent in [from, to).
func (h *honestMiner) stats(from, to time.Time) latencyStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	var st latencyStats
	var lat []time.Duration
	for _, s := range h.s {
		if s.sent.Before(from) || !s.sent.Before(to) {
			continue
		}
		st.Sent++
		if s.lat > 0 {
			st.Answered++
			lat = append(lat, s.lat)
			if s.ok {
				st.Accepted++
			}
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
		st.P50, st.P99, st.Max = q(0.50), q(0.99), lat[len(lat)-1]
	}
	return st
}

// authorizeOutcome tallies authorize answers.
type authorizeOutcome struct {
	mu                   sync.Mutex
	accepted, unanswered int
	connErrors           int
	codes                map[int]int
}

func (o *authorizeOutcome) add(m *stratumLine) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if string(m.Result) == "true" {
		o.accepted++
		return
	}
	var e []json.RawMessage
	code := -1
	if json.Unmarshal(m.Error, &e) == nil && len(e) > 0 {
		json.Unmarshal(e[0], &code)
	}
	o.codes[code]++
}

// hostileNames is the name the hostile client sends in its i-th call.
type hostileNames func(i int) string

func newNames(i int) string { return fmt.Sprintf("hostile%05d.w", i) }

func knownName(i int) string { return fmt.Sprintf("honest.h%05d", i) }

// hostileOneConn sends n authorize calls with new names on one connection
// as fast as the socket takes them and reads every answer.
func hostileOneConn(addr string, name hostileNames, n int, limit time.Duration, out *authorizeOutcome) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		out.connErrors++
		out.unanswered = n
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(limit))
	go func() {
		w := bufio.NewWriterSize(conn, 64<<10)
		fmt.Fprintf(w, `{"id":1,"method":"mining.subscribe","params":["hostile/1.0"]}`+"\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, `{"id":%d,"method":"mining.authorize","params":["%s","x"]}`+"\n", 10+i, name(i))
		}
		w.Flush()
	}()
	r := bufio.NewReader(conn)
	got := 0
	for got < n {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break
		}
		var m stratumLine
		if json.Unmarshal(line, &m) != nil || m.Method != "" {
			continue
		}
		if id, err := strconv.Atoi(string(m.ID)); err == nil && id >= 10 {
			out.add(&m)
			got++
		}
	}
	out.unanswered = n - got
}

// hostilePerConn opens one connection per name (workers at a time, each
// closed after its answer, so the descriptors stay bounded) until n names
// were tried or limit passed.
func hostilePerConn(addr string, name hostileNames, n, workers int, limit time.Duration, out *authorizeOutcome) {
	deadline := time.Now().Add(limit)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if time.Now().After(deadline) {
					out.mu.Lock()
					out.unanswered++
					out.mu.Unlock()
					continue
				}
				if !authorizeOnce(addr, name(i), deadline, out) {
					out.mu.Lock()
					out.unanswered++
					out.connErrors++
					out.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

func authorizeOnce(addr, name string, deadline time.Time, out *authorizeOutcome) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	if _, err := fmt.Fprintf(conn, `{"id":1,"method":"mining.subscribe","params":["hostile/1.0"]}`+"\n"+
		`{"id":2,"method":"mining.authorize","params":["%s","x"]}`+"\n", name); err != nil {
		return false
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return false
		}
		var m stratumLine
		if json.Unmarshal(line, &m) == nil && string(m.ID) == "2" {
			out.add(&m)
			return true
		}
	}
}

// runHostile starts an engine, runs the honest miner for cfg.Window, then
// the hostile client, measuring the miner for cfg.Window from its start
// (and over the hostile client's own run).
func runHostile(t *testing.T, cfg hostileConfig) hostileResult {
	t.Helper()
	e := enginetest.Start(t, func(o *engine.Options) {
		o.EventLoops = 1 // hostile and honest sessions on one loop
		o.Simulator = true
		o.NewUsersPerConn, o.NewUsersPerIP = 0, 0 // the engine's defaults
	})
	if _, ok := e.Users.Register("honest"); !ok {
		t.Fatal("register honest")
	}
	known := e.Users.Len()
	e.AddJob(false)
	h := startHonest(t, e.Addr, "honest")
	time.Sleep(300 * time.Millisecond) // warm-up, not measured
	t0 := time.Now()
	time.Sleep(cfg.Window)
	t1 := time.Now()
	out := &authorizeOutcome{codes: map[int]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		name := hostileNames(newNames)
		if cfg.Known {
			name = knownName
		}
		if cfg.PerIP {
			hostilePerConn(e.Addr, name, cfg.Names, 64, cfg.Limit, out)
		} else {
			hostileOneConn(e.Addr, name, cfg.Names, cfg.Limit, out)
		}
	}()
	var t2 time.Time
	select {
	case <-done:
		t2 = time.Now()
		time.Sleep(time.Until(t1.Add(cfg.Window)))
	case <-time.After(cfg.Window):
		<-done
		t2 = time.Now()
	}
	t3 := t1.Add(cfg.Window)
	h.finish()
	res := hostileResult{
		Before: h.stats(t0, t1), During: h.stats(t1, t3), Span: h.stats(t1, t2),
		HostileTook: t2.Sub(t1), Tried: cfg.Names,
		Accepted: out.accepted, Codes: out.codes, Unanswered: out.unanswered, ConnErrors: out.connErrors,
		UsersRefused: e.Server.Metrics().UsersRefused.Load(),
		Registered:   e.Users.Len() - known,
	}
	mode := "one connection"
	if cfg.PerIP {
		mode = "one connection per name, 64 at a time, from 127.0.0.1"
	}
	if cfg.Known {
		mode = "control: the same calls with one known user name"
	}
	t.Logf("hostile authorize, %d names, %s: took %v, accepted %d, errors by code %v, unanswered %d, conn errors %d, UsersRefused %d, names registered %d",
		cfg.Names, mode, res.HostileTook.Round(time.Millisecond), res.Accepted, res.Codes, res.Unanswered, res.ConnErrors, res.UsersRefused, res.Registered)
	t.Logf("honest before (%v): %v", cfg.Window, res.Before)
	t.Logf("honest during (%v from the hostile start): %v", cfg.Window, res.During)
	t.Logf("honest during the hostile run only (%v): %v", res.HostileTook.Round(time.Millisecond), res.Span)
	if res.Before.P99 > 0 {
		t.Logf("honest p99 during/before: %.2f (hostile run only: %.2f)",
			float64(res.During.P99)/float64(res.Before.P99), float64(res.Span.P99)/float64(res.Before.P99))
	}
	return res
}

// checkHostile fails the test unless the honest miner got answers (all
// true) in both windows and the bounds held.
func checkHostile(t *testing.T, cfg hostileConfig, r hostileResult) {
	t.Helper()
	for _, w := range []struct {
		name string
		st   latencyStats
	}{{"before", r.Before}, {"during", r.During}} {
		if w.st.Answered == 0 || w.st.Accepted != w.st.Answered {
			t.Errorf("honest miner %s: %v, want answers, all true", w.name, w.st)
		}
		if w.st.Answered < w.st.Sent*9/10 {
			t.Errorf("honest miner %s: only %d of %d submits answered", w.name, w.st.Answered, w.st.Sent)
		}
	}
	if cfg.Known {
		if r.Registered != 0 || r.UsersRefused != 0 || r.Accepted+r.Unanswered != cfg.Names {
			t.Errorf("control: %d accepted, %d unanswered, %d registered, %d refused; want all %d accepted, none registered",
				r.Accepted, r.Unanswered, r.Registered, r.UsersRefused, cfg.Names)
		}
		return
	}
	d := engine.NewOptions()
	bound := d.NewUsersPerIP
	if !cfg.PerIP {
		bound = d.NewUsersPerConn
	}
	if r.Accepted > bound || r.Registered != r.Accepted {
		t.Errorf("accepted %d new names, registered %d, want equal and at most %d", r.Accepted, r.Registered, bound)
	}
	if r.Accepted == 0 {
		t.Errorf("no new name accepted")
	}
	if r.Unanswered != 0 && !cfg.PerIP {
		t.Errorf("%d names unanswered", r.Unanswered)
	}
	if cfg.PerIP && r.Codes[29] != cfg.Names-r.Accepted-r.Unanswered {
		t.Errorf("per IP: %d refused with 29, want %d", r.Codes[29], cfg.Names-r.Accepted-r.Unanswered)
	}
}

// TestHostileAuthorizeQuick is the make-test form: a few hundred names each
// way, one-second windows; it checks answers and bounds, not timings.
func TestHostileAuthorizeQuick(t *testing.T) {
	for _, perIP := range []bool{false, true} {
		t.Run(map[bool]string{false: "conn", true: "ip"}[perIP], func(t *testing.T) {
			cfg := hostileConfig{Names: 300, Window: time.Second, PerIP: perIP, Limit: 60 * time.Second}
			checkHostile(t, cfg, runHostile(t, cfg))
		})
	}
}

// TestHostileAuthorize is the measurement recorded in bench/RESULTS.md:
// 10,000 names each way, 10-second windows, and the per-IP run again with
// one known name as a control. Skipped under -short and -race.
//
//	go test -count=1 -run 'TestHostileAuthorize$' -v ./bench/scenarios
func TestHostileAuthorize(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measurement: not under -short or -race")
	}
	for _, c := range []struct {
		name         string
		perIP, known bool
	}{{"conn", false, false}, {"ip", true, false}, {"ip-control", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := hostileConfig{Names: 10000, Window: 10 * time.Second, PerIP: c.perIP, Known: c.known, Limit: 120 * time.Second}
			checkHostile(t, cfg, runHostile(t, cfg))
		})
	}
}

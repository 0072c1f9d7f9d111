package mem_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
)

// The crash test: a child process (this test binary, running TestCrashChild)
// publishes shares, MB-size templates and solved shares and commits a group
// offset, printing every acknowledgement; the parent kills it with SIGKILL at
// varied instants, reopens the Dir and checks that nothing acknowledged was
// lost.

const (
	crashDirEnv = "HASHPOOL_BUS_CRASH_DIR"
	crashRunEnv = "HASHPOOL_BUS_CRASH_RUN"
)

var crashTopics = []string{"share", "tpl", "solved"}

// crashPool is deterministic bytes that record values are cut from.
var crashPool = func() []byte {
	v := make([]byte, 4<<20)
	x := uint64(0x9E3779B97F4A7C15)
	for j := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[j] = byte(x)
	}
	return v
}()

// crashValue is the deterministic value of record seq of run on topic.
func crashValue(topic string, run, seq int) []byte {
	size := 100
	switch topic {
	case "tpl":
		size = 64<<10 + (seq*7919)%(1<<20)
	case "solved":
		size = 80
	}
	v := make([]byte, size)
	start := (seq*4099 + run*131 + len(topic)) % (2 << 20)
	copy(v, crashPool[start:])
	copy(v, fmt.Sprintf("%s/%d/%d/", topic, run, seq))
	return v
}

func parseCrashValue(v []byte) (topic string, run, seq int, ok bool) {
	parts := strings.SplitN(string(v[:min(len(v), 64)]), "/", 4)
	if len(parts) < 4 {
		return "", 0, 0, false
	}
	run, err1 := strconv.Atoi(parts[1])
	seq, err2 := strconv.Atoi(parts[2])
	return parts[0], run, seq, err1 == nil && err2 == nil
}

// TestCrashChild is the child side; it does nothing unless started by
// TestCrashKill9.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashKill9")
	}
	run, _ := strconv.Atoi(os.Getenv(crashRunEnv))
	b, err := mem.Open(mem.Options{Dir: dir, SegmentBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		fmt.Println("OPEN-ERROR", err)
		os.Exit(3)
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		line := fmt.Appendf(nil, format+"\n", args...)
		outMu.Lock()
		os.Stdout.Write(line)
		outMu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Shares: bursts of Publish with done callbacks.
	go func() {
		p, _ := b.NewProducer(bus.ProducerOptions{MaxBufferedRecords: 2000})
		for seq := 0; ctx.Err() == nil; seq++ {
			p.Publish("share", nil, crashValue("share", run, seq), func(err error) {
				if err == nil {
					say("A share %d %d", run, seq)
				}
			})
			if seq%500 == 499 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	// Templates, each followed by a solved share built on it (PublishSync:
	// fsync-heavy).
	go func() {
		p, _ := b.NewProducer(bus.ProducerOptions{})
		for seq := 0; ctx.Err() == nil; seq++ {
			p.Publish("tpl", nil, crashValue("tpl", run, seq), func(err error) {
				if err == nil {
					say("A tpl %d %d", run, seq)
				}
			})
			if err := p.PublishSync(ctx, "solved", nil, crashValue("solved", run, seq)); err == nil {
				say("A solved %d %d", run, seq)
			}
		}
	}()
	// A group member committing as it goes.
	go func() {
		c, err := b.NewConsumer("share", bus.Start{Group: "g"})
		if err != nil {
			say("GROUP-ERROR %v", err)
			return
		}
		n := 0
		for ctx.Err() == nil {
			msgs, err := c.Poll(ctx)
			if err != nil || len(msgs) == 0 {
				continue
			}
			n += len(msgs)
			if n >= 300 {
				n = 0
				last := msgs[len(msgs)-1]
				if err := c.Commit(ctx, last); err == nil {
					say("C %d", last.Offset+1)
				}
			}
		}
	}()
	say("READY")
	<-ctx.Done()
	os.Exit(0)
}

// crashLog is what one child acknowledged.
type crashLog struct {
	acked     map[string]int // topic -> highest acknowledged seq (-1: none)
	committed int64          // highest acknowledged commit (-1: none)
}

func TestCrashKill9(t *testing.T) {
	const dirs, runsPerDir = 3, 7 // 21 kills
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var cuts, kills int
	total := map[string]int{}
	for d := range dirs {
		dir := filepath.Join(t.TempDir(), "bus")
		acked := map[string]map[int]int{} // topic -> run -> highest seq
		for _, tp := range crashTopics {
			acked[tp] = map[int]int{}
		}
		var committed int64 = -1
		for r := range runsPerDir {
			run := d*runsPerDir + r
			// Varied instants: right after READY, within the first ms, deep
			// into fsync-heavy template bursts, and a few before READY.
			delays := []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond,
				80 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}
			delay := delays[r] + time.Duration(rng.IntN(10000))*time.Microsecond
			early := r == 6 && d == 1 // kill without waiting for READY
			log := runCrashChild(t, dir, run, delay, early)
			kills++
			for tp, seq := range log.acked {
				if seq >= 0 {
					acked[tp][run] = seq
					total[tp] += seq + 1
				}
			}
			committed = max(committed, log.committed)
			cuts += verifyCrashDir(t, dir, run, acked, committed)
		}
		os.RemoveAll(dir)
	}
	t.Logf("%d kills, %d torn tails cut at reopen; acknowledged and verified: %v", kills, cuts, total)
}

// runCrashChild starts a child, kills it with SIGKILL delay after it is
// ready (or after it started, if early), and returns what it acknowledged.
func runCrashChild(t *testing.T, dir string, run int, delay time.Duration, early bool) crashLog {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRunEnv+"="+strconv.Itoa(run))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var readyOnce sync.Once
	res := make(chan crashLog, 1)
	var openErr string
	go func() {
		log := crashLog{acked: map[string]int{"share": -1, "tpl": -1, "solved": -1}, committed: -1}
		br := bufio.NewReaderSize(out, 1<<16)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				break // a line without its newline was cut by the kill
			}
			f := strings.Fields(line)
			switch {
			case len(f) == 1 && f[0] == "READY":
				readyOnce.Do(func() { close(ready) })
			case len(f) == 4 && f[0] == "A":
				seq, _ := strconv.Atoi(f[3])
				if seq != log.acked[f[1]]+1 {
					openErr = fmt.Sprintf("run %d: %s acknowledged %d after %d: callbacks out of order", run, f[1], seq, log.acked[f[1]])
				}
				log.acked[f[1]] = seq
			case len(f) == 2 && f[0] == "C":
				off, _ := strconv.ParseInt(f[1], 10, 64)
				log.committed = max(log.committed, off)
			default:
				openErr = "child: " + line
			}
		}
		io.Copy(io.Discard, out)
		res <- log
	}()
	if !early {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("run %d: child never became ready", run)
		}
	} else {
		delay = 30 * time.Millisecond
	}
	time.Sleep(delay) // the instant of the kill is what varies
	cmd.Process.Kill()
	cmd.Wait()
	log := <-res
	if openErr != "" {
		t.Fatal(openErr)
	}
	return log
}

// verifyCrashDir reopens dir and checks every acknowledged record and commit.
// It returns how many torn tails the open cut.
func verifyCrashDir(t *testing.T, dir string, lastRun int, acked map[string]map[int]int, committed int64) int {
	t.Helper()
	var logs bytes.Buffer
	b, err := mem.Open(mem.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("reopen after kill of run %d: %v", lastRun, err)
	}
	defer b.Close()
	present := map[string]map[int]int{} // topic -> run -> highest seq present
	for _, tp := range crashTopics {
		present[tp] = map[int]int{}
		lastRunSeen, next := -1, 0
		for _, m := range readAll(t, b, tp) {
			topic, run, seq, ok := parseCrashValue(m.Value)
			if !ok || topic != tp {
				t.Fatalf("%s offset %d: foreign record %q", tp, m.Offset, m.Value[:min(len(m.Value), 40)])
			}
			if run != lastRunSeen {
				if run < lastRunSeen {
					t.Fatalf("%s offset %d: run %d after run %d", tp, m.Offset, run, lastRunSeen)
				}
				lastRunSeen, next = run, 0
			}
			if seq != next {
				t.Fatalf("%s offset %d: run %d seq %d, want %d (duplicate or hole)", tp, m.Offset, run, seq, next)
			}
			if !bytes.Equal(m.Value, crashValue(tp, run, seq)) {
				t.Fatalf("%s offset %d: run %d seq %d is not byte-identical", tp, m.Offset, run, seq)
			}
			present[tp][run] = seq
			next++
		}
	}
	for _, tp := range crashTopics {
		for run, seq := range acked[tp] {
			got, ok := present[tp][run]
			if !ok || got < seq {
				t.Fatalf("after kill of run %d: %s run %d acknowledged up to seq %d, present up to %d (%v)\nopen log:\n%s",
					lastRun, tp, run, seq, got, ok, logs.String())
			}
		}
	}
	// A solved share acknowledged means its template is durable too.
	for run, seq := range acked["solved"] {
		if got, ok := present["tpl"][run]; !ok || got < seq {
			t.Fatalf("run %d: solved share %d acknowledged but template %d missing (have %d)", run, seq, seq, got)
		}
	}
	if committed >= 0 {
		off, ok := b.Committed("g", "share")
		if !ok || off < committed {
			t.Fatalf("after kill of run %d: group offset %d (%v), acknowledged commit %d", lastRun, off, ok, committed)
		}
	}
	return strings.Count(logs.String(), "cutting it")
}

package engine

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// connectOnce dials addr, sends subscribe and authorize in one write, reads
// until the first mining.notify (the session is then up: subscribed,
// authorized, given its difficulty and a job) and closes with a reset, so
// loopback ports do not pile up in TIME_WAIT.
func connectOnce(addr, user string, buf []byte) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	tc := c.(*net.TCPConn)
	defer func() { _ = tc.SetLinger(0); tc.Close() }()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req := `{"id":1,"method":"mining.subscribe","params":["bench/1.0"]}` + "\n" +
		`{"id":2,"method":"mining.authorize","params":["` + user + `","x"]}` + "\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	n := 0
	for {
		if n == len(buf) {
			return errors.New("no notify in the first answers")
		}
		m, err := c.Read(buf[n:])
		if err != nil {
			return fmt.Errorf("read after %q: %w", buf[:n], err)
		}
		n += m
		if bytes.Contains(buf[:n], []byte(`"mining.notify"`)) && buf[n-1] == '\n' {
			if !bytes.Contains(buf[:n], []byte(`"id":2,"result":true`)) {
				return fmt.Errorf("not authorized: %q", buf[:n])
			}
			return nil
		}
	}
}

// TestConnectSubscribeAuthorize: many sessions connect, subscribe and
// authorize at once (a known user and new ones), each gets its answers,
// difficulty and job, and closing them leaves no session behind.
func TestConnectSubscribeAuthorize(t *testing.T) {
	p := startPool(t, testOptions(t))
	if err := p.srv.AddJob(testJobParams(100, false)); err != nil {
		t.Fatal(err)
	}
	addr := p.srv.Addr().String()
	const workers, per = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := range per {
				user := "alice.w" + fmt.Sprint(i)
				if i%5 == 0 {
					user = fmt.Sprintf("u%d", w) // new names, within the per-IP bound
				}
				if err := connectOnce(addr, user, buf); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := p.srv.metrics.Authorized.Load(); got != workers*per {
		t.Fatalf("authorized %d, want %d", got, workers*per)
	}
	waitFor(t, "sessions closed", func() bool { return p.srv.metrics.Sessions.Load() == 0 })
}

// BenchmarkConnectSubscribeAuthorize measures one connect + subscribe +
// authorize + first set_difficulty and notify over loopback TCP, with 64
// clients in flight in this process (so ns/op includes the clients' own
// cost; the server's share is in the CPU profile). Client sockets close
// with a reset, so the ephemeral ports do not run out.
func BenchmarkConnectSubscribeAuthorize(b *testing.B) {
	o := testOptions(b)
	p := startPool(b, o)
	if err := p.srv.AddJob(testJobParams(100, false)); err != nil {
		b.Fatal(err)
	}
	addr := p.srv.Addr().String()
	// Register the name once: the benchmark measures known users.
	if err := connectOnce(addr, "alice.w1", make([]byte, 4096)); err != nil {
		b.Fatal(err)
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var failed atomic.Value
	var wg sync.WaitGroup
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for left.Add(-1) >= 0 {
				if err := connectOnce(addr, "alice.w1", buf); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(b.N)/el.Seconds(), "connects/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/connect")
}

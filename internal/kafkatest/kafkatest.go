package kafkatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/childproc"
)

// pkg is the kfakeserver command's import path.
const pkg = "github.com/hashpool/hashpool/internal/kafkatest/cmd/kfakeserver"

// readyPrefix starts the line kfakeserver prints once it listens.
const readyPrefix = "kfakeserver listening "

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the kfakeserver binary, building it on the first call of the
// process into a directory of os.TempDir() shared by test processes. The file is named by a
// hash of its contents: test processes of other checkouts (another branch, an older commit)
// build their own file next to it instead of replacing the one this process runs. It is built
// under a private name and renamed into place, so no process ever runs a half-written file.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.path, build.err = buildBinary() })
	if build.err != nil {
		t.Fatalf("kafkatest: build kfakeserver: %v", build.err)
	}
	return build.path
}

func buildBinary() (string, error) {
	// go test puts its own GOROOT/bin first on the test's $PATH.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command on $PATH: %w", err)
	}
	dir := filepath.Join(os.TempDir(), "hashpool-kfakeserver")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "kfakeserver-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", tmp.Name(), pkg)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		return "", fmt.Errorf("go build %s: %w: %s", pkg, err, msg)
	}
	f, err := os.Open(tmp.Name())
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("kfakeserver-%x", h.Sum(nil)[:8]))
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// Start runs a kfakeserver seeded with topics (btcpool's five default topics when none are
// given), waits until it listens, and returns its address "127.0.0.1:port" for -kafka or
// kafka.Config.Brokers. The server is stopped when the test ends; one that does not come up
// within 30 s fails the test with its output. It is StartServer with Options{Topics: topics}.
func Start(t testing.TB, topics ...string) string {
	t.Helper()
	return StartServer(t, Options{Topics: topics}).Addr
}

// Options configure StartServer. The zero value is Start's server: btcpool's topics with one
// partition each, in memory.
type Options struct {
	// Topics to create (btcpool's five default topics when empty). With Persist they are
	// created only by the first start; a Restart reloads whatever the cluster held.
	Topics []string
	// Partitions of each created topic (default 1, btcpool's layout).
	Partitions int
	// Persist keeps the cluster in a directory of t.TempDir() (kfake's DataDir): the log,
	// topics, committed group offsets and producer ids survive Kill and Restart. Records are
	// written with plain write(2) and survive a kill -9 (the page cache is the kernel's), but
	// kfake rebuilds neither the idempotent producers' sequence windows nor live group
	// members after a kill -9: a batch that was in flight at the kill and is retried by its
	// producer after the restart is written a second time, and every group member rejoins.
	// Without Persist a Restart is a new, empty broker on the same port (the topics are
	// created again, empty, with new topic ids; committed offsets are gone).
	Persist bool
}

// Server is a kfakeserver process that a test can pause, resume, kill and restart on the same
// port. Its methods fail the test on error, so call them from the test's goroutine.
type Server struct {
	// Addr is "127.0.0.1:port"; it stays the same across Restart.
	Addr string

	t    testing.TB
	bin  string
	args []string // without -port

	mu  sync.Mutex
	cur *proc // the running process; nil after Kill
}

// proc is one run of the kfakeserver binary.
type proc struct {
	*childproc.Process
	lines   chan string
	errPath string
}

// StartServer runs a kfakeserver as opts say and waits until it listens. The server is stopped
// when the test ends (resumed first if paused); one that does not come up within 30 s fails the
// test with its output.
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t)}
	if len(opts.Topics) > 0 {
		s.args = append(s.args, "-topics", strings.Join(opts.Topics, ","))
	}
	if opts.Partitions != 0 {
		s.args = append(s.args, "-partitions", fmt.Sprint(opts.Partitions))
	}
	if opts.Persist {
		s.args = append(s.args, "-data", filepath.Join(t.TempDir(), "kfake"))
	}
	t.Cleanup(s.stop)
	p, addr, err := s.launch(0)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	s.cur, s.Addr = p, addr
	return s
}

// launch starts the binary on port (0: any) and waits for its "listening" line.
func (s *Server) launch(port int) (*proc, string, error) {
	errPath := filepath.Join(s.t.TempDir(), "kfakeserver.err")
	errf, err := os.Create(errPath)
	if err != nil {
		return nil, "", err
	}
	p := &proc{lines: make(chan string, 1), errPath: errPath}
	// The kernel kills the server if the test process dies without running its cleanups.
	p.Process, err = childproc.Start(childproc.Options{
		Path:   s.bin,
		Args:   append([]string{"-port", fmt.Sprint(port)}, s.args...),
		Stdout: &lineWriter{lines: p.lines}, // read until the server closes stdout, so the pipe never fills
		Stderr: errf,
	})
	if err != nil {
		errf.Close()
		return nil, "", fmt.Errorf("start kfakeserver: %w", err)
	}
	go func() {
		<-p.Exited()
		errf.Close()
	}()
	fail := func(err error) (*proc, string, error) {
		p.Kill()
		out, _ := os.ReadFile(errPath)
		return nil, "", fmt.Errorf("kfakeserver: %w\n--- its stderr ---\n%s", err, out)
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case line := <-p.lines:
		addr, ok := strings.CutPrefix(line, readyPrefix)
		if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
			return fail(fmt.Errorf("unexpected first line %q", line))
		}
		return p, addr, nil
	case <-p.Exited():
		return fail(errors.New("exited before listening: " + p.State().String()))
	case <-timer.C:
		return fail(errors.New("not listening within 30 s"))
	}
}

// lineWriter hands each complete line of the server's stdout to lines, dropping lines nobody
// waits for and cutting a line at maxLine bytes.
type lineWriter struct {
	lines chan string
	buf   []byte
}

const maxLine = 64 << 10

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.add(b)
			return n, nil
		}
		w.add(b[:i])
		select {
		case w.lines <- string(w.buf):
		default:
		}
		w.buf, b = w.buf[:0], b[i+1:]
	}
}

func (w *lineWriter) add(b []byte) { w.buf = append(w.buf, b[:min(len(b), maxLine-len(w.buf))]...) }

// stop ends the server at the end of the test: SIGCONT (a stopped process would not act on
// SIGTERM), SIGTERM so that a persisting cluster saves its state, then SIGKILL after 10 s.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.cur
	s.cur = nil
	if p == nil || !p.Running() {
		return
	}
	_ = p.Signal(syscall.SIGCONT)
	p.Stop(syscall.SIGTERM, 10*time.Second)
}

// running returns the current process or fails the test.
func (s *Server) running(what string) *proc {
	s.t.Helper()
	if s.cur == nil {
		s.t.Fatalf("kafkatest: %s: the server is not running (killed)", what)
	}
	if !s.cur.Running() {
		s.t.Fatalf("kafkatest: %s: the server exited: %s", what, s.cur.State())
	}
	return s.cur
}

// Pid is the process id of the running server (0 after Kill).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	return s.cur.Pid
}

// Pause stops the server with SIGSTOP, as an operator's `kill -STOP` or a stalled VM would, and
// returns once the kernel reports the process stopped. Open connections stay open and the
// kernel still accepts new ones into the listen backlog, but nothing is answered until Resume.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal("Pause", syscall.SIGSTOP, true)
}

// Resume continues a paused server with SIGCONT and returns once it runs again.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal("Resume", syscall.SIGCONT, false)
}

// signal sends sig to the running server and waits until it is stopped or not.
func (s *Server) signal(what string, sig syscall.Signal, stopped bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.running(what)
	if err := p.Signal(sig); err != nil {
		s.t.Fatalf("kafkatest: %s: %v", what, err)
	}
	s.waitState(p, stopped)
}

// waitState waits (at most 10 s) until /proc says p is stopped (state T) or not.
func (s *Server) waitState(p *proc, stopped bool) {
	s.t.Helper()
	path := fmt.Sprintf("/proc/%d/stat", p.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			s.t.Fatalf("kafkatest: %v", err)
		}
		// The state follows the command name, which is in parentheses.
		st := ""
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			st = string(b[i+2])
		}
		if (st == "T" || st == "t") == stopped {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("kafkatest: process %d in state %q, want stopped=%v", p.Pid, st, stopped)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL (kill -9, also when paused) and waits until it is gone:
// clients see their connections reset and new ones refused.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// kill ends the running process, if any; s.mu is held.
func (s *Server) kill() {
	if s.cur != nil {
		s.cur.Kill()
		s.cur = nil
	}
}

// Restart kills the server with SIGKILL if it runs, then starts it again on the same port
// (with Persist: on the same data; without: as a new, empty broker with the topics created
// again) and waits until it listens.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
	_, portStr, _ := strings.Cut(s.Addr, "127.0.0.1:")
	var port int
	if _, err := fmt.Sscan(portStr, &port); err != nil || port == 0 {
		s.t.Fatalf("kafkatest: bad address %q", s.Addr)
	}
	// The port is free as soon as the old process is reaped; retry briefly in case the
	// kernel is slow to release it.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		p, addr, err := s.launch(port)
		if err == nil {
			if addr != s.Addr {
				p.Kill()
				s.t.Fatalf("kafkatest: restarted on %s, want %s", addr, s.Addr)
			}
			s.cur = p
			return
		}
		lastErr = err
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	s.t.Fatalf("kafkatest: restart on %s: %v", s.Addr, lastErr)
}

package childproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child: CHILDPROC_MODE selects what it does.
func TestMain(m *testing.M) {
	switch os.Getenv("CHILDPROC_MODE") {
	case "":
		os.Exit(m.Run())
	case "exit3":
		wd, _ := os.Getwd()
		fmt.Printf("hello from the child in %s with X=%s\n", wd, os.Getenv("CHILDPROC_X"))
		fmt.Fprintln(os.Stderr, "and its stderr")
		os.Exit(3)
	case "sleep":
		fmt.Println("ready")
		time.Sleep(time.Minute)
		os.Exit(0)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Minute)
		os.Exit(0)
	case "parent":
		// Starts a grandchild in the same process group, without the parent-death signal (so
		// only a signal to the group ends it before its minute is up), and prints its pid.
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "CHILDPROC_MODE=sleep")
		if err := c.Start(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("grandchild %d\n", c.Process.Pid)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(2)
}

func start(t *testing.T, mode string, o Options) *Process {
	t.Helper()
	o.Path = os.Args[0]
	o.Env = append(o.Env, "CHILDPROC_MODE="+mode)
	p, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// waitLog waits (at most 30 s) until the child's log holds want.
func waitLog(t *testing.T, p *Process, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.LogTail(1<<20), want) {
		if time.Now().After(deadline) || !p.Running() {
			t.Fatalf("log lacks %q (running %v): %s", want, p.Running(), p.LogTail(4000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestExitStateLogDirEnv(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "exit3", Options{Log: filepath.Join(dir, "child.log"), Dir: dir, Env: []string{"CHILDPROC_X=42"}})
	select {
	case <-p.Exited():
	case <-time.After(time.Minute):
		t.Fatal("child did not exit")
	}
	if p.Running() || p.State() == nil || p.State().ExitCode() != 3 {
		t.Fatalf("running %v, state %v: want exit status 3", p.Running(), p.State())
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) {
		t.Fatalf("Err %v: want an exit error", p.Err())
	}
	log := p.LogTail(1 << 20)
	if !strings.Contains(log, "in "+dir+" with X=42") || !strings.Contains(log, "and its stderr") {
		t.Fatalf("log %q: want the child's dir, env and both streams", log)
	}
	if got := p.LogTail(6); got != "tderr\n" {
		t.Fatalf("LogTail(6) = %q", got)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Signal after the exit: %v, want os.ErrProcessDone", err)
	}
	if !p.Stop(syscall.SIGTERM, time.Second) {
		t.Fatal("Stop of an exited child: want true")
	}
}

func TestStopGraceAndKill(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "sleep", Options{Log: filepath.Join(dir, "a.log")})
	waitLog(t, p, "ready")
	if !p.Stop(syscall.SIGTERM, time.Minute) {
		t.Fatal("a child that obeys SIGTERM was killed")
	}
	if ws := p.State().Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("state %v: want killed by SIGTERM", p.State())
	}

	q := start(t, "ignore-term", Options{Log: filepath.Join(dir, "b.log")})
	waitLog(t, q, "ready")
	if q.Stop(syscall.SIGTERM, 200*time.Millisecond) {
		t.Fatal("a child that ignores SIGTERM: Stop reported a clean stop")
	}
	if ws := q.State().Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("state %v: want killed by SIGKILL after the grace", q.State())
	}
}

func TestGroupKillReachesGrandchild(t *testing.T) {
	var out lockedBuffer
	p := start(t, "parent", Options{Stdout: &out, Group: true})
	var pid int
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no grandchild pid in %q", out.String())
		}
		if s, ok := strings.CutPrefix(out.String(), "grandchild "); ok {
			if i := strings.IndexByte(s, '\n'); i > 0 {
				pid, _ = strconv.Atoi(s[:i])
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Kill()
	// The grandchild is reparented and reaped by init (or a subreaper) once it is dead.
	deadline = time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && bytes.Contains(b, []byte(") Z ")) {
			break // dead, not reaped yet
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still alive after the group was killed", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAwait(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "sleep", Options{Log: filepath.Join(dir, "a.log")})
	calls := 0
	err := p.Await(context.Background(), time.Minute, time.Millisecond, "sleeper", func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Await: %v after %d calls, want nil after 3", err, calls)
	}
	err = p.Await(context.Background(), 50*time.Millisecond, time.Millisecond, "sleeper", func(context.Context) error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "sleeper not ready within 50ms: never") {
		t.Fatalf("Await past the timeout: %v", err)
	}
	p.Kill()
	err = p.Await(context.Background(), time.Minute, time.Millisecond, "sleeper", func(context.Context) error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "sleeper exited before it was ready") {
		t.Fatalf("Await of an exited child: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := start(t, "sleep", Options{})
	if err := q.Await(ctx, time.Minute, time.Millisecond, "q", func(context.Context) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Await with a done context: %v", err)
	}
}

func TestRetryAndFreePort(t *testing.T) {
	n := 0
	v, err := Retry(context.Background(), 3, func() (int, error) {
		n++
		if n < 3 {
			return 0, fmt.Errorf("attempt %d", n)
		}
		return 7, nil
	})
	if v != 7 || err != nil {
		t.Fatalf("Retry = %d, %v", v, err)
	}
	_, err = Retry(context.Background(), 2, func() (int, error) { return 0, errors.New("always") })
	if err == nil || err.Error() != "always" {
		t.Fatalf("Retry of a failing start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Retry(ctx, 2, func() (int, error) { return 1, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Retry with a done context: %v", err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("FreePort %d cannot be listened on: %v", port, err)
	}
	l.Close()
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Options{}); err == nil {
		t.Fatal("Start without a path: want an error")
	}
	if _, err := Start(Options{Path: filepath.Join(t.TempDir(), "absent")}); err == nil {
		t.Fatal("Start of a missing program: want an error")
	}
	if _, err := Start(Options{Path: os.Args[0], Log: filepath.Join(t.TempDir(), "no", "such", "dir.log")}); err == nil {
		t.Fatal("Start with an unwritable log: want an error")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

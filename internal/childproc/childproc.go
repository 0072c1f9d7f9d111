package childproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Options configure [Start].
type Options struct {
	// Path is the program to run.
	Path string
	// Args are its arguments (without the program name).
	Args []string
	// Dir is its working directory ("": this process's).
	Dir string
	// Env holds extra KEY=value variables on top of this process's environment.
	Env []string
	// Log, when set, is a file created (truncated) for the child's stdout and stderr.
	Log string
	// Stdout and Stderr receive the child's output when Log is empty (nil: discarded). Writers
	// that are not *os.File are fed by os/exec through pipes until the child closes them.
	Stdout, Stderr io.Writer
	// Group puts the child in a process group of its own: [Process.Signal], Stop and Kill
	// then reach every process in the group (a shell script's children too).
	Group bool
}

// pipeDrain bounds how long the reaper waits for output pipes after the child exited (a
// grandchild holding them open must not wedge the harness).
const pipeDrain = 10 * time.Second

// Process is a running (or exited) child.
type Process struct {
	// Pid is the child's process id.
	Pid int
	// Log is Options.Log.
	Log string

	cmd     *exec.Cmd
	group   bool
	exited  chan struct{} // closed once the child has been reaped
	mu      sync.Mutex    // orders signals against the reap
	reaped  bool
	waitErr error
}

// Start starts the child. The kernel sends it SIGKILL if the OS thread that started it exits
// (in practice: if this process dies without stopping it), so a child never outlives its
// harness. The caller must end it with [Process.Stop] or [Process.Kill], or wait for it.
func Start(o Options) (*Process, error) {
	if o.Path == "" {
		return nil, errors.New("childproc: no program path")
	}
	cmd := exec.Command(o.Path, o.Args...)
	cmd.Dir = o.Dir
	if len(o.Env) > 0 {
		cmd.Env = append(os.Environ(), o.Env...)
	}
	var logf *os.File
	if o.Log != "" {
		f, err := os.Create(o.Log)
		if err != nil {
			return nil, fmt.Errorf("childproc: %w", err)
		}
		logf = f
		cmd.Stdout, cmd.Stderr = f, f
	} else {
		cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: o.Group}
	cmd.WaitDelay = pipeDrain
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("childproc: start %s: %w", o.Path, err)
	}
	p := &Process{Pid: cmd.Process.Pid, Log: o.Log, cmd: cmd, group: o.Group, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		p.mu.Lock()
		p.reaped, p.waitErr = true, err
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed once the child has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running reports whether the child has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// State is the child's exit state; nil while it runs.
func (p *Process) State() *os.ProcessState {
	if p.Running() {
		return nil
	}
	return p.cmd.ProcessState
}

// Cmd is the child's exec.Cmd, for code that reads Cmd().ProcessState once Exited is closed.
// The Process owns it: never Start, Wait or change it.
func (p *Process) Cmd() *exec.Cmd { return p.cmd }

// Err is what waiting for the child returned (nil for a clean exit, an *exec.ExitError
// otherwise); nil while it runs.
func (p *Process) Err() error {
	if p.Running() {
		return nil
	}
	return p.waitErr
}

// Signal sends sig to the child (to its whole group with Options.Group). It returns
// os.ErrProcessDone once the child has been reaped, so a reused pid is never signalled.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return os.ErrProcessDone
	}
	if p.group {
		return syscall.Kill(-p.Pid, sig)
	}
	return syscall.Kill(p.Pid, sig)
}

// Stop sends sig and waits up to grace for the child to exit, then sends SIGKILL and waits
// for the exit. It reports whether the child exited within grace (true too when it had
// already exited). The child has always exited when Stop returns.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) bool {
	if !p.Running() {
		return true
	}
	_ = p.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		p.Kill()
		return false
	}
}

// Kill sends SIGKILL (which also ends a stopped process) and waits for the exit, as a crash
// would end the child. With Options.Group the whole group is killed.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.exited
}

// Await calls ready every poll until it returns nil. It gives up with an error naming what
// (e.g. "btcd") when the child exits first, ctx ends, or timeout passes (with ready's last
// error). ready should bound its own call by its context.
func (p *Process) Await(ctx context.Context, timeout, poll time.Duration, what string, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready: %v", what, p.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := ctx.Err(); err != nil {
			return err // select picks at random among ready cases; a done context wins
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%s not ready within %v: %v", what, timeout, last)
		}
		t.Reset(poll)
	}
}

// LogTail returns at most the last max bytes of the child's log file (Options.Log), or the
// reason it cannot, for error messages.
func (p *Process) LogTail(max int) string {
	if p.Log == "" {
		return "(no log file)"
	}
	return FileTail(p.Log, max)
}

// FileTail returns at most the last max bytes of the file at path, or the reason it cannot.
func FileTail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Retry calls start up to attempts times until it succeeds or ctx ends and returns its result
// or the last error: a port picked with [FreePort] can be taken by another process before the
// child binds it, and a start that failed that way succeeds on another port.
func Retry[T any](ctx context.Context, attempts int, start func() (T, error)) (T, error) {
	var zero T
	var last error
	for i := 0; i < attempts && ctx.Err() == nil; i++ {
		v, err := start()
		if err == nil {
			return v, nil
		}
		last = err
	}
	if last == nil {
		last = ctx.Err()
	}
	return zero, last
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago, for a child to listen
// on. Another process can take it before the child binds it: a harness that uses it retries
// a start that fails that way.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("childproc: pick a port: %w", err)
	}
	defer l.Close()
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("childproc: listener has no TCP address")
	}
	return a.Port, nil
}

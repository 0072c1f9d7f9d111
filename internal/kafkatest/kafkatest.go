package kafkatest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
// process into a directory of os.TempDir() shared by test processes (built under a private
// name and renamed into place, so a concurrent test process never runs a half-written file;
// rebuilt once per process so that it always matches the source).
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
	path := filepath.Join(dir, "kfakeserver")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// Start runs a kfakeserver seeded with topics (btcpool's five default topics when none are
// given), waits until it listens, and returns its address "127.0.0.1:port" for -kafka or
// kafka.Config.Brokers. The server is stopped when the test ends; one that does not come up
// within 30 s fails the test with its output.
func Start(t testing.TB, topics ...string) string {
	t.Helper()
	bin := Binary(t)
	args := []string{}
	if len(topics) > 0 {
		args = append(args, "-topics", strings.Join(topics, ","))
	}
	errPath := filepath.Join(t.TempDir(), "kfakeserver.err")
	errf, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = errf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		errf.Close()
		t.Fatal(err)
	}
	// The kernel kills the server if the test process dies without running its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		errf.Close()
		t.Fatalf("kafkatest: start kfakeserver: %v", err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() { // reads until the server closes stdout, so the pipe never fills
			select {
			case lines <- sc.Text():
			default:
			}
		}
		_ = cmd.Wait() // after the pipe reached EOF, as os/exec requires
		errf.Close()
		close(exited)
	}()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)

	fail := func(err error) {
		stop()
		out, _ := os.ReadFile(errPath)
		t.Fatalf("kafkatest: kfakeserver: %v\n--- its stderr ---\n%s", err, out)
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(line, readyPrefix)
		if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
			fail(fmt.Errorf("unexpected first line %q", line))
		}
		return addr
	case <-exited:
		fail(errors.New("exited before listening: " + cmd.ProcessState.String()))
	case <-timer.C:
		fail(errors.New("not listening within 30 s"))
	}
	return ""
}

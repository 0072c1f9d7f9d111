package btcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/ci"
)

// btcdModule is the module (and main package) the node is built from; go.mod pins its version
// and keeps it with a tool directive.
const btcdModule = "github.com/btcsuite/btcd"

var build struct {
	once sync.Once
	path string
	err  error
	// impossible is true when the failure is the machine's (no go command), not the code's.
	impossible bool
}

// Binary returns the path of a btcd binary, building it on the first call of the process (see
// [BuildBinary]). The test is skipped (with the reason) only when no go command can be found or
// the build fails outside CI; in CI (internal/ci) a failed build fails the test.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := BuildBinary()
	if err != nil {
		if build.impossible {
			t.Skipf("btcdtest: no go command to build btcd with, skipping test that needs a node: %v", err)
		}
		ci.Need(t, "btcdtest: cannot build btcd: %v", err)
	}
	return path
}

// BuildBinary returns the path of a btcd binary, building it from the module pinned in go.mod
// on the first call of the process (later calls return the first call's result). The binary is
// cached under os.TempDir() in a directory named after btcd's module version, so later
// processes reuse it. $HASHPOOL_BTCD, when set, names a prebuilt binary to use instead. The
// build needs the go command and a working directory inside the hashpool module.
func BuildBinary() (string, error) {
	build.once.Do(func() { build.path, build.impossible, build.err = buildBinary() })
	return build.path, build.err
}

func buildBinary() (path string, impossible bool, err error) {
	if p := os.Getenv("HASHPOOL_BTCD"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", false, fmt.Errorf("$HASHPOOL_BTCD: %w", err)
		}
		return p, false, nil
	}
	// go test puts its own GOROOT/bin first on the test's $PATH.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", true, fmt.Errorf("no go command on $PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	version := "unknown"
	out, err := goOutput(ctx, goCmd, "list", "-m", "-f", "{{.Version}}", btcdModule)
	if err != nil {
		return "", false, fmt.Errorf("go list -m %s: %w", btcdModule, err)
	}
	if v := strings.TrimSpace(out); v != "" {
		version = v
	}
	dir := filepath.Join(os.TempDir(), "hashpool-btcd-"+sanitize(version)+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	path = filepath.Join(dir, "btcd")
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return path, false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	// Build under a private name and rename, so concurrent test processes never run a
	// half-written binary.
	tmp, err := os.CreateTemp(dir, "btcd-*.tmp")
	if err != nil {
		return "", false, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if _, err := goOutput(ctx, goCmd, "build", "-o", tmp.Name(), btcdModule); err != nil {
		return "", false, fmt.Errorf("go build %s: %w", btcdModule, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", false, err
	}
	return path, false, nil
}

func goOutput(ctx context.Context, goCmd string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		return "", errors.Join(err, errors.New(msg))
	}
	return stdout.String(), nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, s)
}

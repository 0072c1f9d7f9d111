package mariadbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/ci"
)

// shared is the one server of this test process.
var shared struct {
	once sync.Once
	srv  *Server
	err  error

	mu      sync.Mutex
	stopped bool
}

// Shared returns the process-wide server, starting it on first use. The error
// is ErrNotInstalled when MariaDB is absent, and the start failure otherwise;
// it is the same for every caller.
func Shared() (*Server, error) {
	shared.once.Do(func() {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if shared.stopped {
			shared.err = errors.New("mariadbtest: Shared called after Main stopped the server")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), installTimeout+readyTimeout*startAttempts)
		defer cancel()
		shared.srv, shared.err = Start(ctx)
	})
	return shared.srv, shared.err
}

// Main runs the package's tests and then stops the shared server if one was
// started. Use it from TestMain: os.Exit(mariadbtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	shared.stopped = true
	srv := shared.srv
	shared.mu.Unlock()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// NewDatabase gives the test its own empty database on the shared server and
// returns its DSN (unix socket, parseTime, UTC). The database is dropped when
// the test ends. See the package documentation for when it skips or fails.
func NewDatabase(t testing.TB) string {
	t.Helper()
	srv, err := Shared()
	if errors.Is(err, ErrNotInstalled) {
		ci.Need(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("mariadbtest: cannot start MariaDB: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, err := srv.CreateDatabase(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.DropDatabase(ctx, name); err != nil {
			t.Errorf("mariadbtest: drop %s: %v", name, err)
		}
	})
	return srv.DSN(name)
}

package mariadbtest

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/ci"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestDatabasesAreSeparate checks the server answers on its socket and on its
// TCP port, and that two tests' databases do not see each other's tables.
func TestDatabasesAreSeparate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsnA := NewDatabase(t)
	dsnB := NewDatabase(t)
	if dsnA == dsnB {
		t.Fatalf("same DSN twice: %s", dsnA)
	}
	a, err := sql.Open("mysql", dsnA)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.ExecContext(ctx, "CREATE TABLE t (x INT)"); err != nil {
		t.Fatal(err)
	}
	b, err := sql.Open("mysql", dsnB)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.ExecContext(ctx, "SELECT * FROM t")
	if err == nil || !strings.Contains(err.Error(), "doesn't exist") {
		t.Fatalf("table of database A visible from B: err=%v", err)
	}

	srv, err := Shared()
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := sql.Open("mysql", srv.TCPDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	var version string
	if err := tcp.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		t.Fatalf("TCP on 127.0.0.1:%d: %v", srv.Port(), err)
	}
	if !strings.Contains(strings.ToLower(version), "mariadb") {
		t.Fatalf("VERSION() = %q, want a MariaDB server", version)
	}
}

// TestStartStop runs a second, independent server and checks Stop leaves
// neither the process nor its directory behind.
func TestStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := Start(ctx)
	if err == ErrNotInstalled {
		ci.Need(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	pid := srv.proc.Pid
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.proc.Exited():
	default:
		t.Fatal("mariadbd still running after Stop")
	}
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Fatalf("server directory left behind: %v", err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Fatalf("process %d still exists", pid)
	}
}

func TestSanitize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"TestX/sub-test", "testx_sub_test"},
		{"", "db"},
		{strings.Repeat("a", 100), strings.Repeat("a", 48)},
		{"`; DROP", "___drop"},
	} {
		if got := sanitize(c.in); got != c.want {
			t.Errorf("sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

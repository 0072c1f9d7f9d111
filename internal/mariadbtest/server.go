package mariadbtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/hashpool/hashpool/internal/childproc"
)

// ErrNotInstalled reports that the MariaDB server binaries are not on this machine.
var ErrNotInstalled = errors.New("mariadbtest: mariadbd / mariadb-install-db not found (apt-get install -y mariadb-server)")

// Bounds on how long the harness waits; a server that needs longer is broken.
const (
	installTimeout  = 120 * time.Second
	readyTimeout    = 60 * time.Second
	shutdownTimeout = 30 * time.Second
	startAttempts   = 3 // a picked free port can be taken before mariadbd binds it
)

// searchDirs are looked at after $PATH: Debian puts mariadbd in /usr/sbin,
// which is not on a non-root PATH.
var searchDirs = []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/local/mysql/bin"}

// Server is a running private MariaDB server.
type Server struct {
	dir  string // owned temporary directory
	sock string
	port int
	proc *childproc.Process

	admin string // mariadb-admin path, for shutdown

	mu  sync.Mutex
	seq int
}

// findBinary looks a program up in $PATH and the usual server directories.
func findBinary(names ...string) (string, bool) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
		for _, d := range searchDirs {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p, true
			}
		}
	}
	return "", false
}

// Start initialises a data directory under a new temporary directory and runs
// mariadbd on a unix socket there and on a free port of 127.0.0.1. It returns
// ErrNotInstalled when the binaries are missing, and an error carrying the
// server's log when it does not come up.
func Start(ctx context.Context) (*Server, error) {
	server, ok1 := findBinary("mariadbd", "mysqld")
	install, ok2 := findBinary("mariadb-install-db", "mysql_install_db")
	admin, ok3 := findBinary("mariadb-admin", "mysqladmin")
	if !ok1 || !ok2 || !ok3 {
		return nil, ErrNotInstalled
	}
	dir, err := os.MkdirTemp("", "mariadbtest")
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: temp dir: %w", err)
	}
	data := filepath.Join(dir, "data")

	ictx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	out, err := exec.CommandContext(ictx, install, "--no-defaults", "--datadir="+data,
		"--user=root", "--auth-root-authentication-method=normal",
		"--skip-test-db").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadbtest: %s failed: %v\n%s", install, err, out[max(0, len(out)-4000):])
	}

	s, err := childproc.Retry(ctx, startAttempts, func() (*Server, error) { return startServer(ctx, server, admin, dir, data) })
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func startServer(ctx context.Context, server, admin, dir, data string) (*Server, error) {
	port, err := childproc.FreePort()
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: %w", err)
	}
	s := &Server{
		dir:   dir,
		sock:  filepath.Join(dir, "sock"),
		port:  port,
		admin: admin,
	}
	// The server must not outlive a test process that is killed (its own process group, so
	// a kill reaches anything it forks).
	s.proc, err = childproc.Start(childproc.Options{Path: server, Log: filepath.Join(dir, "mariadbd.log"), Group: true, Args: []string{
		"--no-defaults",
		"--datadir=" + data,
		"--socket=" + s.sock,
		"--port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--user=root",
		"--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
		"--tmpdir=" + dir,
		// Small and fast: tests do not need durability across power loss.
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=16M",
		"--innodb-flush-log-at-trx-commit=2",
		"--max-connections=200",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
	}})
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: start %s: %w", server, err)
	}
	if err := s.waitReady(ctx); err != nil {
		s.proc.Kill()
		return nil, fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return s, nil
}

// waitReady polls the socket with a real connection until the server answers.
func (s *Server) waitReady(ctx context.Context) error {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	err = s.proc.Await(ctx, readyTimeout, 100*time.Millisecond, "mariadbd", func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return db.PingContext(pctx)
	})
	if err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	return nil
}

// DSN is the go-sql-driver/mysql data source name of database db over the
// server's unix socket, with UTC times parsed.
func (s *Server) DSN(db string) string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "unix"
	c.Addr = s.sock
	c.DBName = db
	c.ParseTime = true
	c.Loc = time.UTC
	return c.FormatDSN()
}

// TCPDSN is like DSN but connects over TCP to 127.0.0.1 and the server's port.
func (s *Server) TCPDSN(db string) string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "tcp"
	c.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	c.DBName = db
	c.ParseTime = true
	c.Loc = time.UTC
	return c.FormatDSN()
}

// Port is the loopback TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// Socket is the path of the server's unix socket.
func (s *Server) Socket() string { return s.sock }

// CreateDatabase creates a new, empty utf8mb4 database with a unique name
// built from prefix and returns its name.
func (s *Server) CreateDatabase(ctx context.Context, prefix string) (string, error) {
	s.mu.Lock()
	s.seq++
	name := fmt.Sprintf("%s_%d", sanitize(prefix), s.seq)
	s.mu.Unlock()
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return "", fmt.Errorf("mariadbtest: create database %s: %w", name, err)
	}
	return name, nil
}

// DropDatabase removes a database made by CreateDatabase.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+sanitize(name)+"`")
	return err
}

// Stop shuts the server down with mariadb-admin, waits for it to exit (killing
// it if it does not within a bound) and removes its directory.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	out, adminErr := exec.CommandContext(ctx, s.admin, "--no-defaults", "-S", s.sock, "-uroot", "shutdown").CombinedOutput()
	var err error
	select {
	case <-s.proc.Exited():
	case <-ctx.Done():
		s.proc.Kill()
		err = fmt.Errorf("mariadbtest: mariadbd did not stop within %v (admin: %v %s); killed", shutdownTimeout, adminErr, bytes.TrimSpace(out))
	}
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = rerr
	}
	return err
}

func (s *Server) logTail() string {
	return "mariadbd log (tail):\n" + s.proc.LogTail(4000)
}

// sanitize keeps a database name to [a-z0-9_], at most 48 characters.
func sanitize(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 48; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, '_')
		}
	}
	if len(b) == 0 {
		return "db"
	}
	return string(b)
}

// Package mariadbtest starts a private MariaDB server for tests: its own data
// directory in a temporary folder, its own unix socket and a loopback TCP port,
// root without a password, and nothing read from the machine's configuration
// (--no-defaults).
//
// One server serves a whole test process: the first call to NewDatabase starts
// it (sync.Once) and every test gets its own database on it. A package that
// uses it must stop the server when its tests finish by calling Main from its
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m)) }
//
// Policy: when the MariaDB binaries are missing, NewDatabase skips the test,
// unless CI is set (internal/ci), in which case the test fails.
// When the binaries exist but the server cannot start, the test fails with the
// reason and the tail of the server's log. A test never passes silently
// without a database.
//
// The package must never touch a system MariaDB/MySQL service, its data
// directory or its configuration files, and must never leave a server process
// running after Main returns (the child also gets SIGKILL if the test process
// dies first).
package mariadbtest

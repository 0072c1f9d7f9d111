package store

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParseDSN feeds arbitrary DSNs (from flags and config files) to ParseDSN and Validate:
// they must never panic, an accepted DSN keeps everything after its scheme, and an error
// never repeats a password.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"sqlite:///var/lib/hashpool/pool.db", "sqlite://pool.db", "sqlite://:memory:", "sqlite://a?b#c", "sqlite://",
		"mysql://pool:secret@tcp(127.0.0.1:3306)/bpool_local_db", "mysql://pool:secret@unix(/run/mysqld.sock)/db?parseTime=true",
		"mysql://nonsense@@", "mysql://", "postgres://u:hunter2@host/db", "/tmp/pool.db", "u:pw@", "x:@@y", "",
	} {
		f.Add(s, "")
	}
	f.Add("postgres://u:", "hunter2")
	f.Add("mysql://u:", "p@ss")
	const host = "@tcp(127.0.0.1:3306)/db"
	f.Fuzz(func(t *testing.T, prefix, password string) {
		dsn := prefix
		if password != "" {
			dsn += password + host
		}
		cfg, err := ParseDSN(dsn)
		if err != nil {
			// A password follows a ':'; the error may show only what precedes the first one.
			c := strings.IndexByte(prefix, ':')
			if password == "" || c < 0 || !strings.Contains(err.Error(), password) {
				return
			}
			if shown := fmt.Sprintf("store: DSN must start with sqlite:// or mysql:// (got %q)", prefix[:c]+":***"+host); !strings.Contains(shown, password) {
				t.Fatalf("error repeats the password %q: %v", password, err)
			}
			return
		}
		var rest string
		switch cfg.Driver {
		case DriverSQLite:
			rest = "sqlite://" + cfg.Path
		case DriverMySQL:
			rest = "mysql://" + cfg.DSN
		default:
			t.Fatalf("accepted %q with driver %q", dsn, cfg.Driver)
		}
		if rest != dsn {
			t.Fatalf("ParseDSN(%q) = %+v", dsn, cfg)
		}
		_ = cfg.Validate()
	})
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// Driver names accepted in Config.Driver.
const (
	DriverSQLite = "sqlite"
	DriverMySQL  = "mysql"
)

// Config says which database to open. Open fills it from a DSN string;
// OpenConfig takes it directly.
type Config struct {
	// Driver is DriverSQLite or DriverMySQL.
	Driver string
	// Path is the SQLite database file (created if missing). ":memory:"
	// opens a private in-memory database that lives as long as the Store.
	Path string
	// DSN is a go-sql-driver/mysql data source name, e.g.
	// "pool:secret@tcp(127.0.0.1:3306)/bpool_local_db". parseTime, loc=UTC
	// and time_zone='+00:00' are forced.
	DSN string
	// MaxOpenConns bounds the MySQL connection pool (default 8). SQLite always
	// uses one connection: it has one writer anyway.
	MaxOpenConns int
	// Now is the clock that stamps created_at/updated_at (default time.Now).
	Now func() time.Time
	// Logger receives migration messages; nil keeps the store silent.
	Logger *slog.Logger
}

func (c *Config) fillDefaults() {
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Driver {
	case DriverSQLite:
		if c.Path == "" {
			errs = append(errs, errors.New("store: sqlite needs a Path"))
		}
		if strings.ContainsAny(c.Path, "?#") {
			errs = append(errs, fmt.Errorf("store: sqlite Path %q must not contain '?' or '#'", c.Path))
		}
	case DriverMySQL:
		if _, err := mysql.ParseDSN(c.DSN); err != nil {
			errs = append(errs, fmt.Errorf("store: mysql DSN: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("store: Driver %q, want %q or %q", c.Driver, DriverSQLite, DriverMySQL))
	}
	if c.MaxOpenConns < 0 || c.MaxOpenConns > 1000 {
		errs = append(errs, fmt.Errorf("store: MaxOpenConns %d out of range 0..1000", c.MaxOpenConns))
	}
	return errors.Join(errs...)
}

// ParseDSN turns "sqlite:///abs/path.db", "sqlite://relative.db",
// "sqlite://:memory:" or "mysql://user:pass@tcp(host:port)/db?params" into a Config.
func ParseDSN(dsn string) (Config, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		return Config{Driver: DriverSQLite, Path: strings.TrimPrefix(dsn, "sqlite://")}, nil
	case strings.HasPrefix(dsn, "mysql://"):
		return Config{Driver: DriverMySQL, DSN: strings.TrimPrefix(dsn, "mysql://")}, nil
	}
	return Config{}, fmt.Errorf("store: DSN must start with sqlite:// or mysql:// (got %q)", RedactDSN(dsn))
}

// RedactDSN hides the password of a MySQL DSN (everything between the user and the last
// "@", so a password may contain "@") for logs and error messages.
func RedactDSN(dsn string) string {
	at := strings.LastIndexByte(dsn, '@')
	if at < 0 {
		return dsn
	}
	head := dsn[:at]
	if c := strings.IndexByte(strings.TrimPrefix(head, "mysql://"), ':'); c >= 0 {
		off := len(head) - len(strings.TrimPrefix(head, "mysql://"))
		return head[:off+c] + ":***" + dsn[at:]
	}
	return dsn
}

// Store is an open database with the current schema. It is safe for
// concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
	now     func() time.Time
	log     *slog.Logger
}

// Open parses dsn (see ParseDSN), opens the database and runs the migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig opens the database described by cfg and runs the migrations.
func OpenConfig(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fillDefaults()
	s := &Store{now: cfg.Now, log: cfg.Logger}
	var err error
	switch cfg.Driver {
	case DriverSQLite:
		s.dialect = dialectSQLite
		s.db, err = sql.Open("sqlite", sqliteDSN(cfg.Path))
		if err == nil {
			s.db.SetMaxOpenConns(1)
			s.db.SetConnMaxIdleTime(0)
		}
	case DriverMySQL:
		s.dialect = dialectMySQL
		var dsn string
		dsn, err = mysqlDSN(cfg.DSN)
		if err == nil {
			s.db, err = sql.Open("mysql", dsn)
		}
		if err == nil {
			s.db.SetMaxOpenConns(cfg.MaxOpenConns)
			s.db.SetMaxIdleConns(cfg.MaxOpenConns)
			s.db.SetConnMaxLifetime(time.Hour)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", cfg.Driver, err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: connect %s: %w", cfg.Driver, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func sqliteDSN(path string) string {
	q := "?_busy_timeout=10000&_time_format=datetime"
	if path != ":memory:" {
		q += "&_journal_mode=WAL&_synchronous=NORMAL"
	}
	return path + q
}

func mysqlDSN(dsn string) (string, error) {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	c.ParseTime = true
	c.Loc = time.UTC
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	c.Params["time_zone"] = "'+00:00'"
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return c.FormatDSN(), nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Driver is DriverSQLite or DriverMySQL.
func (s *Store) Driver() string {
	if s.dialect == dialectMySQL {
		return DriverMySQL
	}
	return DriverSQLite
}

// DB is the underlying handle, for tests and ad-hoc tools. Writes through it
// bypass the store's validation.
func (s *Store) DB() *sql.DB { return s.db }

// dialect selects the SQL that differs between the engines.
type dialect uint8

const (
	dialectSQLite dialect = iota
	dialectMySQL
)

// timeLayout is how every time column is written, in UTC.
const timeLayout = "2006-01-02 15:04:05"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// nowString is the store clock as a column value.
func (s *Store) nowString() string { return formatTime(s.now()) }

// timeValue scans a datetime/timestamp column from either engine: a time.Time
// (go-sql-driver with parseTime, modernc for DATETIME columns), a string or
// bytes in timeLayout, or NULL (zero time).
type timeValue struct{ t *time.Time }

func (v timeValue) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		*v.t = time.Time{}
	case time.Time:
		*v.t = x.UTC()
	case string:
		return v.parse(x)
	case []byte:
		return v.parse(string(x))
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

func (v timeValue) parse(s string) error {
	if s == "" || strings.HasPrefix(s, "0000-00-00") {
		*v.t = time.Time{}
		return nil
	}
	for _, layout := range []string{timeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			*v.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("store: bad time %q", s)
}

// u64Value scans a bigint unsigned column: MySQL gives uint64 or decimal
// text, SQLite the int64 bit pattern written by u64Arg.
type u64Value struct{ v *uint64 }

func (u u64Value) Scan(src any) error {
	switch x := src.(type) {
	case int64:
		*u.v = uint64(x)
	case uint64:
		*u.v = x
	case []byte:
		return u.parse(string(x))
	case string:
		return u.parse(x)
	default:
		return fmt.Errorf("store: cannot scan %T into a uint64", src)
	}
	return nil
}

func (u u64Value) parse(s string) error {
	var n uint64
	if s == "" || len(s) > 20 {
		return fmt.Errorf("store: bad uint64 %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || n > (1<<64-1-uint64(c-'0'))/10 {
			return fmt.Errorf("store: bad uint64 %q", s)
		}
		n = n*10 + uint64(c-'0')
	}
	*u.v = n
	return nil
}

// u64Arg is a bigint unsigned value as a query argument: MySQL takes uint64
// (its driver supports the high bit), SQLite stores the int64 bit pattern.
func (s *Store) u64Arg(v uint64) any {
	if s.dialect == dialectMySQL {
		return v
	}
	return int64(v)
}

// bounded makes str valid UTF-8 and cuts it to at most max characters, the
// width of a varchar/char column.
func bounded(str string, max int) string {
	str = strings.ToValidUTF8(str, "\uFFFD")
	n := 0
	for i := range str {
		if n == max {
			return str[:i]
		}
		n++
	}
	return str
}

// placeholders returns "(?,?,...)" with n marks.
func placeholders(n int) string {
	var b strings.Builder
	b.Grow(2*n + 1)
	b.WriteByte('(')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('?')
	}
	b.WriteByte(')')
	return b.String()
}

// inTx runs fn in a transaction and commits it, rolling back on error.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

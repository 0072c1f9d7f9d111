package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Users maps user (sub-account) names to their ids (puid). Implementations
// are safe for concurrent use: every event loop authorizes miners.
type Users interface {
	// UserID returns the id of an already normalised user name; ok is false
	// for unknown users, which get error 29 "Invalid username".
	UserID(name string) (id int32, ok bool)
}

// Limits on what a user list may hold, so a bad API or a flood of made-up
// names cannot exhaust memory.
const (
	maxUsers          = 1 << 20
	maxUserNameLen    = 64
	maxUserListBody   = 64 << 20
	userListInterval  = 10 * time.Second
	userListHTTPLimit = 10 * time.Second
)

// APIUsers is btcpool's user list (spec §4.11): it GETs
// <list_id_api_url>?last_id=<max id seen> every 10 s and inserts the names it
// has not seen (existing names are never updated).
type APIUsers struct {
	url    string
	rules  NameRules
	client *http.Client
	log    *slog.Logger

	mu     sync.RWMutex
	ids    map[string]int32
	lastID int32
}

// NewAPIUsers returns a user list that reads listURL. It holds nothing until
// Update or Run is called. log may be nil.
func NewAPIUsers(listURL string, rules NameRules, log *slog.Logger) *APIUsers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &APIUsers{url: listURL, rules: rules, log: log, ids: make(map[string]int32),
		client: &http.Client{Timeout: userListHTTPLimit}}
}

// UserID implements Users.
func (u *APIUsers) UserID(name string) (int32, bool) {
	u.mu.RLock()
	id, ok := u.ids[name]
	u.mu.RUnlock()
	return id, ok && id > 0
}

// Len returns how many users are known.
func (u *APIUsers) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.ids)
}

// Update fetches the users added since the last call and reports how many
// were new.
func (u *APIUsers) Update(ctx context.Context) (int, error) {
	u.mu.RLock()
	last := u.lastID
	u.mu.RUnlock()
	target, err := url.Parse(u.url)
	if err != nil {
		return 0, fmt.Errorf("user list url %q: %w", u.url, err)
	}
	q := target.Query()
	q.Set("last_id", strconv.FormatInt(int64(last), 10))
	target.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("user list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("user list %s: HTTP %s", u.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserListBody+1))
	if err != nil {
		return 0, fmt.Errorf("user list: %w", err)
	}
	if len(body) > maxUserListBody {
		return 0, fmt.Errorf("user list %s: response larger than %d bytes", u.url, maxUserListBody)
	}
	var doc struct {
		Data map[string]int64 `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return 0, fmt.Errorf("user list %s: bad JSON: %w", u.url, err)
	}
	added := 0
	u.mu.Lock()
	defer u.mu.Unlock()
	for name, id := range doc.Data {
		if id <= 0 || id > 1<<31-1 || len(u.ids) >= maxUsers {
			continue
		}
		name = u.rules.NormalizeUser(FilterName(name))
		if name == "" || len(name) > maxUserNameLen {
			continue
		}
		if int32(id) > u.lastID {
			u.lastID = int32(id)
		}
		if _, ok := u.ids[name]; ok {
			continue // insert-only, like btcpool
		}
		u.ids[name] = int32(id)
		added++
	}
	return added, nil
}

// Run updates the list every 10 s until ctx ends. Errors are logged and the
// next round tries again.
func (u *APIUsers) Run(ctx context.Context) {
	t := time.NewTicker(userListInterval)
	defer t.Stop()
	for {
		if n, err := u.Update(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			u.log.Warn("user list update failed", "err", err)
		} else if n > 0 {
			u.log.Info("user list updated", "added", n, "total", u.Len())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// EmbeddedUsers is the user list of `hashpool run`: every valid user name is
// accepted and gets the next free id, and the name→id table is kept in a file
// so that ids stay the same across restarts. The file is rewritten
// atomically (temporary file, fsync, rename) whenever a user is added, on
// the goroutine that looks the new user up; additions are rare.
type EmbeddedUsers struct {
	path string

	mu   sync.Mutex
	ids  map[string]int32
	next int32
	err  error // last persist error, reported by Err
}

// embeddedUsersFile is the file name inside the data dir.
const embeddedUsersFile = "users.txt"

// OpenEmbeddedUsers loads (or starts) the user table in dir.
func OpenEmbeddedUsers(dir string) (*EmbeddedUsers, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded users: %w", err)
	}
	u := &EmbeddedUsers{path: filepath.Join(dir, embeddedUsersFile), ids: make(map[string]int32), next: 1}
	b, err := os.ReadFile(u.path)
	if errors.Is(err, os.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("embedded users: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		name, idText, ok := strings.Cut(sc.Text(), " ")
		id, perr := strconv.ParseInt(idText, 10, 32)
		if !ok || perr != nil || id <= 0 || name == "" || FilterName(name) != name {
			return nil, fmt.Errorf("embedded users %s line %d: want \"<name> <id>\"", u.path, line)
		}
		u.ids[name] = int32(id)
		if int32(id) >= u.next {
			u.next = int32(id) + 1
		}
	}
	return u, nil
}

// UserID implements Users: it returns the user's id, adding the user if it
// is new. Empty or overlong names and a full table are refused.
func (u *EmbeddedUsers) UserID(name string) (int32, bool) {
	if name == "" || len(name) > maxUserNameLen || FilterName(name) != name {
		return 0, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if id, ok := u.ids[name]; ok {
		return id, true
	}
	if len(u.ids) >= maxUsers || u.next == 1<<31-1 {
		return 0, false
	}
	id := u.next
	u.ids[name] = id
	u.next++
	if err := u.persist(); err != nil {
		// Keep the id for this run; a later addition retries the write.
		u.err = err
	}
	return id, true
}

// Err returns the last error met while saving the table, if any.
func (u *EmbeddedUsers) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *EmbeddedUsers) persist() error {
	var b bytes.Buffer
	for name, id := range u.ids {
		b.WriteString(name)
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(int64(id), 10))
		b.WriteByte('\n')
	}
	return writeFileAtomic(u.path, b.Bytes())
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new content.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

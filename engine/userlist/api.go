package userlist

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Bounds of one API fetch.
const (
	maxUserListBody   = 64 << 20
	userListInterval  = 10 * time.Second
	userListHTTPLimit = 10 * time.Second
)

// API is btcpool's user list (spec §4.11): it GETs
// <list_id_api_url>?last_id=<max id seen> every 10 s and inserts the names it
// has not seen (existing names are never updated).
type API struct {
	url       string
	normalize func(string) string
	client    *http.Client
	log       *slog.Logger

	mu     sync.RWMutex
	ids    map[string]int32
	lastID int32
}

// NewAPI returns a user list that reads listURL. It holds nothing until
// Update or Run is called. normalize turns a name from the API into the
// form the engine looks up (engine.NameRules.Normalize: btcpool's byte
// filter, then the users.* rules); nil keeps names as they are, less the
// bytes btcpool never allows. log may be nil.
func NewAPI(listURL string, normalize func(string) string, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if normalize == nil {
		normalize = filterName
	}
	return &API{url: listURL, normalize: normalize, log: log, ids: make(map[string]int32),
		client: &http.Client{Timeout: userListHTTPLimit}}
}

// UserID returns the id of a normalised user name; ok is false for
// unknown users.
func (u *API) UserID(name string) (int32, bool) {
	u.mu.RLock()
	id, ok := u.ids[name]
	u.mu.RUnlock()
	return id, ok && id > 0
}

// Len returns how many users are known.
func (u *API) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.ids)
}

// Update fetches the users added since the last call and reports how many
// were new.
func (u *API) Update(ctx context.Context) (int, error) {
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
		if id <= 0 || id > 1<<31-1 || len(u.ids) >= MaxUsers {
			continue
		}
		name = u.normalize(name)
		if name == "" || len(name) > MaxNameLen {
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
func (u *API) Run(ctx context.Context) {
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

package engine

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/hashpool/hashpool/engine/userlist"
)

// Users maps user (sub-account) names to their ids (puid). Implementations
// are safe for concurrent use: every event loop authorizes miners. UserID
// must not wait on disk or network (package userlist has the pool's two
// lists).
type Users interface {
	// UserID returns the id of an already normalised user name; ok is false
	// for unknown users, which get error 29 "Invalid username".
	UserID(name string) (id int32, ok bool)
}

// UserRegistry is a user list that adds the names it does not know
// (userlist.Embedded). The engine registers a name only within the
// Options.NewUsersPerConn and NewUsersPerIP bounds. Register must not wait
// on disk or network.
type UserRegistry interface {
	Users
	Register(name string) (id int32, ok bool)
}

// EmbeddedUsers is userlist.Embedded.
//
// Deprecated: use userlist.Embedded.
type EmbeddedUsers = userlist.Embedded

// OpenEmbeddedUsers is userlist.OpenEmbedded without a logger.
//
// Deprecated: use userlist.OpenEmbedded (and Close it after the server
// stopped).
func OpenEmbeddedUsers(dir string) (*userlist.Embedded, error) {
	return userlist.OpenEmbedded(dir, nil)
}

// NewAPIUsers is userlist.NewAPI with rules' normalisation.
//
// Deprecated: use userlist.NewAPI(url, rules.Normalize, log).
func NewAPIUsers(listURL string, rules NameRules, log *slog.Logger) *userlist.API {
	return userlist.NewAPI(listURL, rules.Normalize, log)
}

// Normalize returns a user name as the engine looks it up: btcpool's byte
// filter, then the rules. User lists apply it to the names they load.
func (r NameRules) Normalize(name string) string { return r.NormalizeUser(FilterName(name)) }

// lookupUser looks name up and, on a registering list, adds it within the
// per-connection and per-IP bounds. refused is true when a bound stopped it.
func (s *Session) lookupUser(name string) (id int32, ok, refused bool) {
	users := s.srv.users
	if id, ok := users.UserID(name); ok && id > 0 {
		return id, true, false
	}
	reg, isReg := users.(UserRegistry)
	if !isReg {
		return 0, false, false
	}
	if perConn := s.srv.opts.NewUsersPerConn; perConn >= 0 && int(s.newUsers) >= perConn {
		return 0, false, true
	}
	if !s.srv.newUsers.take(s.ip, s.srv.nowSec.Load()) {
		return 0, false, true
	}
	id, ok = reg.Register(name)
	if ok {
		s.newUsers++
	}
	return id, ok && id > 0, false
}

// newUserLimiter counts the user names each IP address registered in the
// current window (fixed windows of one hour).
type newUserLimiter struct {
	limit  int // per window; < 0: none
	window int64

	mu   sync.Mutex
	byIP map[netip.Addr]ipWindow
}

type ipWindow struct {
	start int64
	n     int32
}

// maxLimitedIPs bounds the limiter's table; while it is full, addresses not
// in it cannot register new names until the next sweep frees old windows.
const maxLimitedIPs = 1 << 16

func newNewUserLimiter(limit int, window time.Duration) *newUserLimiter {
	return &newUserLimiter{limit: limit, window: int64(window.Seconds()), byIP: make(map[netip.Addr]ipWindow)}
}

// take counts one registration for ip at now and reports whether it is
// within the bound.
func (l *newUserLimiter) take(ip netip.Addr, now int64) bool {
	if l.limit < 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.byIP[ip]
	if !ok && len(l.byIP) >= maxLimitedIPs {
		return false
	}
	if !ok || now-w.start >= l.window {
		w = ipWindow{start: now}
	}
	if int(w.n) >= l.limit {
		l.byIP[ip] = w
		return false
	}
	w.n++
	l.byIP[ip] = w
	return true
}

// sweep forgets the windows that ended.
func (l *newUserLimiter) sweep(now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, w := range l.byIP {
		if now-w.start >= l.window {
			delete(l.byIP, ip)
		}
	}
}

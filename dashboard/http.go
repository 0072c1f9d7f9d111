package dashboard

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path the dashboard is served under.
const Prefix = "/dashboard/"

const (
	tokenCookie    = "hashpool_dashboard"
	keepAlive      = 15 * time.Second
	writeTimeout   = 10 * time.Second
	maxQueryLength = 256
	maxStream      = 24 * time.Hour // a stream is closed (and the page reconnects) after a day
)

// Handler serves the page, its assets, the live stream (events) and the JSON endpoints
// (api/summary, api/workers) under Prefix. Only GET and HEAD are allowed.
func (s *Server) Handler() http.Handler {
	sub, _ := fs.Sub(static, "static")
	files := http.StripPrefix(Prefix, http.FileServer(http.FS(sub)))
	mux := http.NewServeMux()
	mux.Handle(Prefix, files)
	mux.HandleFunc(Prefix+"events", s.events)
	mux.HandleFunc(Prefix+"api/summary", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b := s.summary
		s.mu.Unlock()
		writeJSON(w, b)
	})
	mux.HandleFunc(Prefix+"api/workers", s.workerAPI)
	return s.guard(mux)
}

// guard refuses anything but GET/HEAD and checks the token and basic auth when configured.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		if u := s.opts.BasicUser; u != "" {
			user, pass, ok := r.BasicAuth()
			if !ok || !equal(user, u) || !equal(pass, s.opts.BasicPassword) {
				w.Header().Set("WWW-Authenticate", `Basic realm="hashpool dashboard"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if tok := s.opts.Token; tok != "" {
			got := ""
			if h := r.Header.Get("Authorization"); len(h) > 7 && h[:7] == "Bearer " {
				got = h[7:]
			} else if c, err := r.Cookie(tokenCookie); err == nil {
				got = c.Value
			} else if q := r.URL.Query().Get("token"); q != "" {
				got = q
				if equal(q, tok) {
					http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: q, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode})
				}
			}
			if !equal(got, tok) {
				http.Error(w, "a dashboard token is required (?token=...)", http.StatusUnauthorized)
				return
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
		next.ServeHTTP(w, r)
	})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// workerAPI serves one page of the worker table: ?q=&sort=&desc=1&offset=&limit=.
func (s *Server) workerAPI(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := v.Get("q")
	if len(q) > maxQueryLength {
		http.Error(w, "query too long", http.StatusBadRequest)
		return
	}
	offset, _ := strconv.Atoi(v.Get("offset"))
	limit, err := strconv.Atoi(v.Get("limit"))
	if err != nil {
		limit = 100
	}
	page := s.workers(q, v.Get("sort"), v.Get("desc") == "1", offset, limit)
	b, err := json.Marshal(&page)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, b)
}

// events is the live stream: the newest summary at once, then each new one. A client that is
// slow gets the newest summary when it is ready again, never a backlog.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.clients >= s.opts.MaxClients {
		s.mu.Unlock()
		http.Error(w, "too many dashboard clients", http.StatusServiceUnavailable)
		return
	}
	s.clients++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.clients--
		s.mu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if b != nil {
			if _, err := w.Write([]byte("data: ")); err != nil {
				return false
			}
			if _, err := w.Write(b); err != nil {
				return false
			}
			if _, err := w.Write([]byte("\n\n")); err != nil {
				return false
			}
		} else if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	ka := time.NewTicker(keepAlive)
	defer ka.Stop()
	end := time.NewTimer(maxStream)
	defer end.Stop()
	var last []byte
	for {
		s.mu.Lock()
		b, changed := s.summary, s.changed
		s.mu.Unlock()
		if &b[0] != lastPtr(last) {
			if !send(b) {
				return
			}
			last = b
		}
		select {
		case <-changed:
		case <-ka.C:
			if !send(nil) {
				return
			}
		case <-end.C:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func lastPtr(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

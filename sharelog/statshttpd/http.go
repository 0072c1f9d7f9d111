package statshttpd

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxIDs bounds the worker ids one /worker_status request may ask for.
const maxIDs = 1000

// handler serves btcpool's statshttpd API.
type handler struct {
	stats        *Stats
	started      time.Time
	initializing *atomic.Bool
	flushTime    *atomic.Int64
	requests     atomic.Int64
	repBytes     atomic.Int64
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	var body []byte
	switch r.URL.Path {
	case "/", "/worker_status", "/worker_status/", "/flush_db_time":
	default:
		http.NotFound(w, r)
		return
	}
	switch {
	case h.initializing.Load():
		body = []byte(`{"err_no":2,"err_msg":"service is initializing..."}`)
	case r.URL.Path == "/":
		body = h.root()
	case r.URL.Path == "/flush_db_time":
		body = fmt.Appendf(nil, `{"err_no":0,"err_msg":"","data":{"flush_db_time":%d}}`, h.flushTime.Load())
	default:
		body = h.workerStatus(r)
	}
	h.repBytes.Add(int64(len(body)))
	w.Header().Set("Content-Type", "text/json")
	w.Write(body)
}

// Uptime renders a duration as btcpool does: "%04u d %02u h %02u m %02u s".
func Uptime(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%04d d %02d h %02d m %02d s", s/86400, s%86400/3600, s%3600/60, s%60)
}

func (h *handler) root() []byte {
	snap, workers, users := h.stats.Pool()
	b := fmt.Appendf(nil, `{"err_no":0,"err_msg":"","data":{"uptime":"%s","request":%d,"repbytes":%d,"pool":{`,
		Uptime(time.Since(h.started)), h.requests.Load(), h.repBytes.Load())
	b = appendWindows(b, &snap)
	b = fmt.Appendf(b, `,"workers":%d,"users":%d}}}`, workers, users)
	return b
}

// appendWindows appends the accept/stale/reject/reject_detail/accept_count members.
func appendWindows(b []byte, s *Snapshot) []byte {
	b = fmt.Appendf(b, `"accept":[0,%d,%d,%d],"stale":[0,0,%d,%d],"reject":[0,0,%d,%d],"reject_detail":[{},{},`,
		s.Accept5m, s.Accept15m, s.Accept1h, s.Stale15m, s.Stale1h, s.Reject15m, s.Reject1h)
	b = AppendDetailJSON(b, s.Detail15m)
	b = append(b, ',')
	b = AppendDetailJSON(b, s.Detail1h)
	return fmt.Appendf(b, `],"accept_count":%d`, s.AcceptCount)
}

func (h *handler) workerStatus(r *http.Request) []byte {
	invalid := []byte(`{"err_no":1,"err_msg":"invalid args"}`)
	if err := r.ParseForm(); err != nil {
		return invalid
	}
	puid, err := strconv.ParseInt(r.Form.Get("user_id"), 10, 32)
	if err != nil || r.Form.Get("worker_id") == "" {
		return invalid
	}
	parts := strings.Split(r.Form.Get("worker_id"), ",")
	if len(parts) > maxIDs {
		return invalid
	}
	ids := make([]int64, 0, len(parts))
	for _, p := range parts {
		id, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil {
			return invalid
		}
		ids = append(ids, id)
	}
	merge := strings.EqualFold(r.Form.Get("is_merge"), "t")

	b := []byte(`{"err_no":0,"err_msg":"","data":{`)
	if merge {
		var total Snapshot
		for _, id := range ids {
			s, _, _ := h.stats.Worker(Key{int32(puid), id})
			total.merge(s)
		}
		b = appendWorker(append(b, `"0":`...), &total, -1)
	} else {
		for i, id := range ids {
			if i > 0 {
				b = append(b, ',')
			}
			s, workers, _ := h.stats.Worker(Key{int32(puid), id})
			if id != 0 {
				workers = -1
			}
			b = appendWorker(fmt.Appendf(b, `"%d":`, id), &s, workers)
		}
	}
	return append(b, "}}"...)
}

// appendWorker appends one worker's object; workers < 0 leaves out the "workers" member.
func appendWorker(b []byte, s *Snapshot, workers int) []byte {
	ip := "0.0.0.0"
	if s.LastShareIP.IsValid() {
		ip = s.LastShareIP.String()
	}
	b = appendWindows(append(b, '{'), s)
	b = fmt.Appendf(b, `,"last_share_ip":"%s","last_share_time":%d`, ip, s.LastShareTime)
	if workers >= 0 {
		b = fmt.Appendf(b, `,"workers":%d`, workers)
	}
	return append(b, '}')
}

package slparser

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxListLen bounds the ids and hours one /share_stats request may ask for, and maxCells
// their product: each cell is about 130 bytes of answer, so 1000 ids × 1000 hours would
// build a 130 MB reply for one unauthenticated request.
const (
	maxListLen = 1000
	maxCells   = 10_000
)

// handler serves btcpool's slparser HTTP API.
type handler struct {
	p        *Parser
	started  time.Time
	requests atomic.Int64
	repBytes atomic.Int64
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	var body []byte
	switch r.URL.Path {
	case "/":
		body = h.root()
	case "/share_stats", "/share_stats/":
		body = h.shareStats(r)
	default:
		http.NotFound(w, r)
		return
	}
	h.repBytes.Add(int64(len(body)))
	w.Header().Set("Content-Type", "text/json")
	w.Write(body)
}

// hashrateT is btcpool's hashrate_t: accepted difficulty × 2^32 / seconds, in TH/s.
func hashrateT(accept uint64, seconds int64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(accept) * math.Exp2(32) / float64(seconds) / 1e12
}

func appendBucket(b []byte, bk *Bucket) []byte {
	b = fmt.Appendf(b, `"accept":%d,"stale":%d,"reject":%d,"reject_detail":`, bk.Accept, bk.Stale, bk.Reject)
	b = bk.AppendRejectDetail(b)
	return fmt.Appendf(b, `,"reject_rate":%s,"earn":%d`, strconv.FormatFloat(bk.RejectRate(), 'g', -1, 64), int64(math.Round(bk.Earn)))
}

func (h *handler) root() []byte {
	now := h.p.opts.Now().UTC()
	today, hour, date := h.p.poolBuckets(now)
	sinceMidnight := int64(86400)
	currHour := now.Hour()
	if y, m, d := now.Date(); date.Equal(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)) {
		sinceMidnight = now.Unix() - date.Unix()
	}
	sinceHour := int64(now.Minute()*60 + now.Second())
	b := fmt.Appendf(nil, `{"err_no":0,"err_msg":"","data":{"uptime":"%s","request":%d,"repbytes":%d,"pool":{"today":{"hashrate_t":%s,`,
		uptime(time.Since(h.started)), h.requests.Load(), h.repBytes.Load(),
		strconv.FormatFloat(hashrateT(today.Accept, sinceMidnight), 'f', 6, 64))
	b = appendBucket(b, &today)
	b = fmt.Appendf(b, `},"curr_hour":{"hashrate_t":%s,`, strconv.FormatFloat(hashrateT(hour[currHour].Accept, max(sinceHour, 1)), 'f', 6, 64))
	b = appendBucket(b, &hour[currHour])
	return append(b, "}}}}"...)
}

func uptime(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%04d d %02d h %02d m %02d s", s/86400, s%86400/3600, s%3600/60, s%60)
}

func parseList(s string, bits int) ([]int64, bool) {
	if s == "" {
		return nil, false
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxListLen {
		return nil, false
	}
	out := make([]int64, 0, len(parts))
	for _, p := range parts {
		v, err := strconv.ParseInt(strings.TrimSpace(p), 10, bits)
		if err != nil {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// shareStats answers /share_stats: hour 24 is the whole day, 0..-23 an hour of today relative
// to the current one.
func (h *handler) shareStats(r *http.Request) []byte {
	invalid := []byte(`{"err_no":1,"err_msg":"invalid args"}`)
	if err := r.ParseForm(); err != nil {
		return invalid
	}
	puid, err := strconv.ParseInt(r.Form.Get("user_id"), 10, 32)
	workers, ok1 := parseList(r.Form.Get("worker_id"), 64)
	hours, ok2 := parseList(r.Form.Get("hour"), 32)
	if err != nil || !ok1 || !ok2 || len(workers)*len(hours) > maxCells {
		return invalid
	}
	now := h.p.opts.Now().UTC()
	b := []byte(`{"err_no":0,"err_msg":"","data":{`)
	for i, wid := range workers {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"%d":[`, wid)
		for j, hr := range hours {
			idx := 24
			if hr != 24 {
				idx = now.Hour() + int(hr)
			}
			bk := h.p.bucket(Key{int32(puid), wid}, idx)
			if j > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"hour":%d,`, hr)
			b = appendBucket(b, &bk)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}

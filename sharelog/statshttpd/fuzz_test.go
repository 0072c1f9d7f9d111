package statshttpd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
)

// FuzzHTTP sends arbitrary paths and query strings to the HTTP API: it must never panic, and
// every answer on a known path must be one valid JSON object with an err_no.
func FuzzHTTP(f *testing.F) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	st := NewStats(c.now)
	now := c.t.Unix()
	st.AddShare(share(1, 10, btcpool.StatusAccept, 100, now))
	st.AddShare(share(1, 10, btcpool.StatusLowDifficulty, 30, now-60))
	st.AddShare(share(1, -11, btcpool.StatusStaleShare, 5, now-900))
	st.AddShare(share(2, 20, btcpool.StatusAccept, 7, now))
	var initializing atomic.Bool
	var flushTime atomic.Int64
	flushTime.Store(now)
	h := &handler{stats: st, started: c.t, initializing: &initializing, flushTime: &flushTime}
	for _, s := range []string{
		"/", "/flush_db_time", "/worker_status?user_id=1&worker_id=10,-11,0", "/worker_status/?user_id=1&worker_id=0&is_merge=T",
		"/worker_status?user_id=1&worker_id=10,99&is_merge=t", "/worker_status?user_id=4294967296&worker_id=1",
		"/worker_status?user_id=1&worker_id=9223372036854775808", "/worker_status?user_id=1&worker_id=%zz",
		"/worker_status?user_id=1&worker_id=,", "/worker_status?user_id=1;worker_id=1", "/worker_status?user_id=+1&worker_id=%201",
		"/nope",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Path == "" {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, &http.Request{Method: http.MethodGet, URL: u, RequestURI: target, Header: http.Header{}, Host: "x"})
		if rec.Code == http.StatusNotFound {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%q: answer is not a JSON object: %v\n%s", target, err, rec.Body.Bytes())
		}
		if _, ok := v["err_no"]; !ok {
			t.Fatalf("%q: no err_no: %s", target, rec.Body.Bytes())
		}
	})
}

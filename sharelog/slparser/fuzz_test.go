package slparser

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
)

// FuzzHTTP sends arbitrary paths and query strings to the HTTP API: it must never panic, and
// every answer on a known path must be one valid JSON object.
func FuzzHTTP(f *testing.F) {
	now := day0.Add(5*time.Hour + 10*time.Minute)
	p, err := New(Options{DataDir: f.TempDir(), Open: func(string) (RecordReader, error) { return nil, nil }, Now: func() time.Time { return now }}, nil)
	if err != nil {
		f.Fatal(err)
	}
	p.day.Add(share(3, 30, btcpool.StatusAccept, 1<<32, day0.Add(2*time.Hour)))
	p.day.Add(share(3, 30, btcpool.StatusLowDifficulty, 8, day0.Add(time.Hour)))
	p.day.Add(share(3, -7, btcpool.StatusStaleShare, 9, day0.Add(5*time.Hour)))
	for _, s := range []string{
		"/", "/share_stats?user_id=3&worker_id=30,0&hour=24,0,-1", "/share_stats/?user_id=3&worker_id=-7&hour=-5",
		"/share_stats?user_id=3&worker_id=30&hour=2147483647", "/share_stats?user_id=3&worker_id=30&hour=-2147483648",
		"/share_stats?user_id=99999999999&worker_id=1&hour=1", "/share_stats?user_id=3&worker_id=%zz&hour=1",
		"/share_stats?user_id=3&worker_id=,,&hour=", "/share_stats?user_id=3&worker_id=+1,%201&hour=%0924",
		"/share_stats;x", "/nope", "/share_stats?" + "worker_id=1&user_id=1&hour=1;x",
	} {
		f.Add(s)
	}
	h := p.Handler()
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Path == "" {
			return // httptest.NewRequest accepts only request URIs
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

package slparser

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestShareStatsBoundsTheAnswer(t *testing.T) {
	now := day0.Add(3 * time.Hour)
	p, err := New(Options{DataDir: t.TempDir(), Open: func(string) (RecordReader, error) { return nil, nil }, Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	list := func(n int, v string) string { return strings.TrimSuffix(strings.Repeat(v+",", n), ",") }
	const invalid = `{"err_no":1,"err_msg":"invalid args"}`
	for _, c := range []struct {
		name, query string
		ok          bool
	}{
		{"1000 ids, 10 hours", "worker_id=" + list(1000, "1") + "&hour=" + list(10, "24"), true},
		{"10 ids, 1000 hours", "worker_id=" + list(10, "1") + "&hour=" + list(1000, "0"), true},
		{"1001 ids", "worker_id=" + list(1001, "1") + "&hour=24", false},
		{"1001 hours", "worker_id=1&hour=" + list(1001, "24"), false},
		{"1000 ids, 11 hours", "worker_id=" + list(1000, "1") + "&hour=" + list(11, "24"), false},
		{"101 ids, 100 hours", "worker_id=" + list(101, "1") + "&hour=" + list(100, "24"), false},
	} {
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/share_stats?user_id=1&"+c.query, nil))
		if got := rec.Body.String(); (got != invalid) != c.ok {
			t.Errorf("%s: answer of %d bytes starting %.60q", c.name, len(got), got)
		}
	}
}

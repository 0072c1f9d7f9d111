package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/statshttpd"
)

func share(puid int32, worker int64, status btcpool.Status, diff uint64) *btcpool.Share {
	return &btcpool.Share{Version: btcpool.CurrentShareVersion, UserID: puid, WorkerHashID: worker, Status: status,
		Timestamp: time.Now().Unix(), ShareDiff: diff, IP: netip.MustParseAddr("10.0.0.7")}
}

func newTestServer(t *testing.T, opts Options) (*Server, *statshttpd.Stats, *httptest.Server) {
	t.Helper()
	st := statshttpd.NewStats(nil)
	if opts.SampleInterval == 0 {
		opts.SampleInterval = 100 * time.Millisecond
	}
	s, err := New(opts, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, st, ts
}

func get(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, b.String()
}

func TestPageAndAssetsAreEmbedded(t *testing.T) {
	_, _, ts := newTestServer(t, Options{})
	for _, p := range []string{"", "app.js", "app.css"} {
		req, _ := http.NewRequest("GET", ts.URL+Prefix+p, nil)
		code, body := get(t, req)
		if code != 200 || len(body) < 500 {
			t.Fatalf("%s: %d, %d bytes", Prefix+p, code, len(body))
		}
		if strings.Contains(body, "http://") && !strings.Contains(body, "http://www.w3.org/2000/svg") {
			t.Fatalf("%s refers to an outside address: the page must work offline", p)
		}
	}
}

func TestReadOnlyAndAuth(t *testing.T) {
	_, _, ts := newTestServer(t, Options{Token: "s3cret", BasicUser: "op", BasicPassword: "pw"})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		req, _ := http.NewRequest(m, ts.URL+Prefix+"api/summary", nil)
		if code, _ := get(t, req); code != http.StatusMethodNotAllowed {
			t.Fatalf("%s: %d, want 405", m, code)
		}
	}
	cases := []struct {
		name     string
		user, pw string
		auth     string
		query    string
		want     int
	}{
		{"nothing", "", "", "", "", 401},
		{"basic only", "op", "pw", "", "", 401},
		{"token only", "", "", "Bearer s3cret", "", 401},
		{"wrong password", "op", "x", "", "?token=s3cret", 401},
		{"both (the token in the query: basic auth holds the Authorization header)", "op", "pw", "", "?token=s3cret", 200},
		{"wrong token in query", "op", "pw", "", "?token=nope", 401},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", ts.URL+Prefix+"api/summary"+c.query, nil)
		if c.name == "token only" {
			_, _, ts2 := newTestServer(t, Options{Token: "s3cret"})
			req, _ = http.NewRequest("GET", ts2.URL+Prefix+"api/summary", nil)
			c.want = 200
		}
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pw)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		if code, _ := get(t, req); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
}

// readEvent returns the next data line of an event stream.
func readEvent(t *testing.T, br *bufio.Reader) map[string]any {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var v map[string]any
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
}

func TestEventsFollowTheStatistics(t *testing.T) {
	s, st, ts := newTestServer(t, Options{MaxClients: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)

	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+Prefix+"events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	first := readEvent(t, br)
	if first["accept_count"].(float64) != 0 {
		t.Fatalf("first summary %v", first)
	}
	st.AddShare(share(1, 11, btcpool.StatusAccept, 1000))
	st.AddShare(share(1, 12, btcpool.StatusSolved, 1000))
	st.AddShare(share(2, 21, btcpool.StatusLowDifficulty, 1000))
	st.AddShare(share(2, 21, btcpool.StatusAccept, 4000))
	deadline := time.Now().Add(30 * time.Second)
	for {
		ev := readEvent(t, br)
		if ev["accept_count"].(float64) == 3 {
			if ev["workers"].(float64) != 3 || ev["users"].(float64) != 2 {
				t.Fatalf("summary %v", ev)
			}
			rej := ev["rejects_15m"].([]any)
			if len(rej) != 1 || rej[0].(map[string]any)["code"].(float64) != 23 {
				t.Fatalf("rejects %v", rej)
			}
			if hr := ev["hashrate_5m"].(float64); hr != 6000*4294967296/300.0 {
				t.Fatalf("hashrate %v", hr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stream never showed the new shares")
		}
	}

	// A second client fits; a third is refused rather than queued.
	req2, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+Prefix+"events", nil)
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	readEvent(t, bufio.NewReader(resp2.Body))
	req3, _ := http.NewRequest("GET", ts.URL+Prefix+"events", nil)
	if code, _ := get(t, req3); code != http.StatusServiceUnavailable {
		t.Fatalf("third client: %d, want 503", code)
	}
}

// A client that stops reading must not hold up the others or queue summaries.
func TestStalledClientDoesNotBlockOthers(t *testing.T) {
	s, st, ts := newTestServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	stalled, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+Prefix+"events", nil)
	sresp, err := http.DefaultClient.Do(stalled)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close() // never read
	for i := range 200 {
		st.AddShare(share(1, int64(100+i), btcpool.StatusAccept, 1))
		s.sample()
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+Prefix+"events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ev := readEvent(t, bufio.NewReader(resp.Body)); ev["accept_count"].(float64) != 200 {
		t.Fatalf("fresh client got %v", ev["accept_count"])
	}
}

func TestWorkerTableSearchSortPage(t *testing.T) {
	s, st, ts := newTestServer(t, Options{})
	const n = 10000
	for i := range n {
		st.AddShare(share(int32(1+i%50), int64(1000+i), btcpool.StatusAccept, uint64(1+i)))
	}
	s.sample()
	page := s.workers("", "hashrate", true, 0, 100)
	if page.Total != n+50 || len(page.Rows) != 100 {
		t.Fatalf("total %d rows %d", page.Total, len(page.Rows))
	}
	for i := 1; i < len(page.Rows); i++ {
		if page.Rows[i].Hashrate > page.Rows[i-1].Hashrate {
			t.Fatalf("not sorted by hashrate at %d", i)
		}
	}
	if page.Rows[0].WorkerID != 0 {
		t.Fatalf("the top hashrate should be a user's aggregate, got %+v", page.Rows[0])
	}
	last := s.workers("", "name", false, n+40, 100)
	if len(last.Rows) != 10 {
		t.Fatalf("last page has %d rows, want 10", len(last.Rows))
	}
	req, _ := http.NewRequest("GET", ts.URL+Prefix+"api/workers?q=user+7&sort=accept&desc=1&limit=5000", nil)
	code, body := get(t, req)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var p workerPage
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if p.Total != 1 || p.Rows[0].PUID != 7 {
		t.Fatalf("search for 'user 7': %+v", p)
	}
	req, _ = http.NewRequest("GET", ts.URL+Prefix+"api/workers?q="+strings.Repeat("x", 300), nil)
	if code, _ := get(t, req); code != http.StatusBadRequest {
		t.Fatalf("long query: %d", code)
	}
	page = s.workers("", "", false, 0, 1<<20)
	if len(page.Rows) != maxPageRows {
		t.Fatalf("a page is capped at %d rows, got %d", maxPageRows, len(page.Rows))
	}
}

// BenchmarkWorkerPage10k is what the page waits for when it sorts or searches 10,000 workers.
func BenchmarkWorkerPage10k(b *testing.B) {
	st := statshttpd.NewStats(nil)
	for i := range 10000 {
		st.AddShare(share(int32(1+i%50), int64(1000+i), btcpool.StatusAccept, uint64(1+i)))
	}
	s, err := New(Options{}, st, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	s.sample()
	for b.Loop() {
		p := s.workers("", "hashrate", true, 0, 100)
		if len(p.Rows) != 100 {
			b.Fatal(fmt.Sprint(len(p.Rows)))
		}
	}
}

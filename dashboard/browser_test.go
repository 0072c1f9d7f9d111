package dashboard

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/browsertest"
	"github.com/hashpool/hashpool/sharelog/statshttpd"
)

// TestPageWithTenThousandWorkers opens the page in headless Chromium with 10,000 workers
// behind it: the first chart and the first page of the worker table must appear, and sorting
// must work. It logs the page weight and the time to the first chart (bench/RESULTS.md).
func TestPageWithTenThousandWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bctx := browsertest.Start(t)
	st := statshttpd.NewStats(nil)
	for i := range 10000 {
		st.AddShare(share(int32(1+i%100), int64(1000+i), btcpool.StatusAccept, uint64(1+i%997)))
		if i%10 == 0 {
			st.AddShare(share(int32(1+i%100), int64(1000+i), btcpool.StatusLowDifficulty, 1))
		}
	}
	s, err := New(Options{SampleInterval: 200 * time.Millisecond}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	ts := httptest.NewServer(s.Handler())
	defer func() { ts.CloseClientConnections(); ts.Close() }() // the page's event stream stays open

	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+Prefix)); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(bctx, 60*time.Second)
	defer wcancel()
	firstChart, err := chromedp.Run(wctx, chromedp.Poll[float64](
		`document.querySelectorAll("#chart polyline").length === 1 && performance.now()`, chromedp.WithPollingInterval(5*time.Millisecond)))
	if err != nil {
		t.Fatalf("no chart: %v", err)
	}
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](`document.querySelectorAll("#workers tbody tr").length === 100`)); err != nil {
		t.Fatalf("the worker table's first page: %v", err)
	}
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](`document.getElementById("page-info").textContent.includes("10,100")`)); err != nil {
		t.Fatalf("the table does not count 10,000 workers and 100 users: %v", err)
	}
	// Sort by name, ascending: the first row must be the smallest name.
	start, _ := chromedp.Run(bctx, chromedp.Evaluate[float64](`performance.now()`))
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('#workers th[data-sort="name"]').click() || true`)); err != nil {
		t.Fatal(err)
	}
	sorted, err := chromedp.Run(wctx, chromedp.Poll[float64](
		`(() => { const c = document.querySelector("#workers tbody td"); return c && c.textContent.startsWith("1/") && performance.now(); })()`,
		chromedp.WithPollingInterval(5*time.Millisecond)))
	if err != nil {
		t.Fatalf("sorting by name: %v", err)
	}
	bytes, err := chromedp.Run(bctx, chromedp.Evaluate[float64](
		`performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource")).filter(e => !e.name.includes("/events")).reduce((n, e) => n + e.transferSize, 0)`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 workers: page weight %.0f bytes transferred (HTML, CSS, JS, first table page; the event stream not counted), first chart at %.0f ms after navigation start, a re-sort by name in %.0f ms",
		bytes, firstChart, sorted-start)
}

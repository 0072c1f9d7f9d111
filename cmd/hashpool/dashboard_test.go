package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashpool/hashpool/internal/browsertest"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/loadgen"
)

// TestDashboardInBrowser runs the whole pool on regtest with loadgen miners and opens the
// dashboard in a real headless Chromium: the page must show the miners, an accepted-share count
// that rises and a found block that appears, all live (the page is never reloaded: a marker
// set on the page at load must still be there at the end). A screenshot is left for a person
// to look at ($HASHPOOL_SCREENSHOT_DIR, else the temporary directory; its path is logged).
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, the pool, miners and a browser")
	}
	bctx := browsertest.Start(t)
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	stratumPort, statsPort := freePort(t), freePort(t)
	conf := filepath.Join(dir, "pool.toml")
	cfgText := fmt.Sprintf(`
network = "regtest"
data_dir = %q
[slparserhttpd]
port = 0
[prometheus]
enabled = false
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(conf, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	o := n.ClientOptions()
	args := []string{"-c", conf, "-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", fmt.Sprintf("127.0.0.1:%d", stratumPort), "-stats-http", fmt.Sprintf("127.0.0.1:%d", statsPort),
		"-min-difficulty", "0.0001", "-default-difficulty", "0.0001"}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	addr := fmt.Sprintf("127.0.0.1:%d", stratumPort)
	startRun(t, addr, args...)

	// Open the page before any miner: everything that follows must arrive live.
	url := fmt.Sprintf("http://127.0.0.1:%d/dashboard/", statsPort)
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__loadedOnce = true`)); err != nil {
		t.Fatal(err)
	}
	wait := func(what, expr string) {
		t.Helper()
		wctx, c := context.WithTimeout(bctx, 90*time.Second)
		defer c()
		if _, err := chromedp.Run(wctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
			t.Fatalf("waiting for the page to show %s: %v\npage text:\n%s", what, err, body)
		}
	}
	wait("the live stream", `document.getElementById("live").className === "dot on"`)
	blocksBefore, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#blocks tr[data-hash]").length`))
	if err != nil {
		t.Fatal(err)
	}

	sc := loadgen.DefaultScenario()
	sc.URL = addr
	sc.Miners = 3
	sc.Rate = 0.5
	sc.Duration = 2 * time.Minute
	sc.User = "dash"
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	lgDone := make(chan error, 1)
	go func() { _, err := loadgen.Run(lctx, sc); lgDone <- err }()
	defer func() { lcancel(); <-lgDone }()

	wait("the miners", `Number(document.getElementById("workers-count").textContent.replace(/,/g, "")) >= 3`)
	wait("the workers in the table", `[...document.querySelectorAll("#workers tbody td")].some(td => td.textContent.startsWith("m000"))`)
	wait("accepted shares", `Number(document.getElementById("accept-count").textContent.replace(/,/g, "")) > 0`)
	first, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`Number(document.getElementById("accept-count").textContent.replace(/,/g, ""))`))
	if err != nil {
		t.Fatal(err)
	}
	wait("a rising accepted-share count", fmt.Sprintf(`Number(document.getElementById("accept-count").textContent.replace(/,/g, "")) > %v`, first))
	wait("a found block", fmt.Sprintf(`document.querySelectorAll("#blocks tr[data-hash]").length > %d`, blocksBefore))
	wait("the current job", `document.getElementById("job-height").textContent !== "–"`)
	wait("the hashrate chart", `document.querySelectorAll("#chart polyline").length === 1`)
	reloaded, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__loadedOnce !== true`))
	if err != nil || reloaded {
		t.Fatalf("the page was reloaded (err %v): updates must arrive live", err)
	}
	// The block the page shows is the one the pool recorded.
	hash, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("#blocks tr[data-hash]").dataset.hash`))
	if err != nil {
		t.Fatal(err)
	}
	if !nodeHas(ctx, n, hash) {
		t.Fatalf("the dashboard shows block %s, which the node does not have", hash)
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shotDir := os.Getenv("HASHPOOL_SCREENSHOT_DIR")
	if shotDir == "" {
		shotDir = os.TempDir()
	}
	shot := filepath.Join(shotDir, "hashpool-dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", shot, len(png))
}

// nodeHas reports whether the node has the block, on its main chain or a side branch (btcd's
// getblockheader knows only fully validated blocks; getblock reads any stored block).
func nodeHas(ctx context.Context, n *btcdtest.Node, hash string) bool {
	var raw string
	return n.Client().Call(ctx, "getblock", []any{hash, 0}, &raw) == nil && raw != ""
}

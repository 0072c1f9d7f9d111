// Package browsertest starts a real headless Chromium for page tests, driven over the
// DevTools protocol (chromedp). The browser is Debian's chromium package (`.ci/run` installs
// it); $CHROMIUM names another binary. Without one the test is skipped outside CI and fails in
// CI (internal/ci).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hashpool/hashpool/internal/ci"
)

// Binary returns the Chromium binary to use, or "" when there is none.
func Binary() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start launches a headless browser for the test and returns a chromedp context for one tab;
// the browser is closed when the test ends. The flags keep it off the network (this machine
// has none) and make it start fast and quiet in a sandboxed CI container.
func Start(t testing.TB) context.Context {
	t.Helper()
	bin := Binary()
	if bin == "" {
		ci.Need(t, "browsertest: no Chromium (install Debian's chromium package or set $CHROMIUM)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1400, 1800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: starting %s: %v", bin, err)
	}
	return ctx
}

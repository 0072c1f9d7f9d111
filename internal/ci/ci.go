// Package ci holds the one rule every test harness uses to decide whether a
// missing dependency (btcd, MariaDB, namecoind, Chromium, ...) skips a test
// or fails it: outside CI a test that cannot get what it needs is skipped with
// the reason; in CI it fails, so that a missing install step in `.ci/run`
// can never turn into silently skipped tests.
//
// CI is on when the CI environment variable is set to anything but "",
// "0" or "false" (`.ci/run` exports CI=true; GitHub Actions and most CI
// systems set CI=true too).
package ci

import (
	"os"
	"strings"
	"testing"
)

// Enabled reports whether the tests run in CI.
func Enabled() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// Need is called by a harness that cannot provide what a test needs: it
// fails the test in CI and skips it elsewhere, with the same message.
func Need(t testing.TB, format string, args ...any) {
	t.Helper()
	if Enabled() {
		t.Fatalf(format+" (CI is set, so this is a failure: .ci/run must install it)", args...)
	}
	t.Skipf(format+" (skipped because CI is not set)", args...)
}

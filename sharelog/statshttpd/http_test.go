package statshttpd

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func httptestRecorder(t *testing.T, h http.Handler, target string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Body.String()
}

func TestUptime(t *testing.T) {
	if got := Uptime(90061 * time.Second); got != "0001 d 01 h 01 m 01 s" {
		t.Fatalf("got %q", got)
	}
}

package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/btcdtest"
)

// scrapeMetrics reads a Prometheus text page into name{labels} → value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsAfterScriptedSession: after a scripted session (a low-difficulty share, two
// blocks, a duplicate, a stale share, a line that is not JSON) every counter on /metrics says
// exactly what happened, and docs/OPERATIONS.md names every hashpool_ metric there is (and no
// other).
func TestMetricsAfterScriptedSession(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	conf := filepath.Join(dir, "pool.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("network = \"regtest\"\ndata_dir = %q\n[statshttpd]\nport = 0\n[slparserhttpd]\nport = 0\n", filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	stratum, metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := n.ClientOptions()
	args := []string{"-c", conf, "-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", stratum, "-metrics", metrics, "-min-difficulty", "0.0001", "-default-difficulty", "0.0001"}
	startRun(t, stratum, args...)
	m := dialMiner(t, stratum, "alice.rig1")
	job1 := m.job
	if code := m.submit(m.share(job1, true)); code != 23 {
		t.Fatalf("low-difficulty share: code %d", code)
	}
	good := m.share(job1, false)
	if code := m.submit(good); code != 0 {
		t.Fatalf("block: code %d", code)
	}
	if code := m.submit(good); code != 22 {
		t.Fatalf("duplicate: code %d", code)
	}
	m.waitCleanJobAfter(job1)
	if code := m.submit(m.share(job1, false)); code != 21 {
		t.Fatalf("stale: code %d", code)
	}
	if code := m.submit(m.share(m.job, false)); code != 0 {
		t.Fatalf("second block: code %d", code)
	}
	m.send("this is not json")
	url := "http://" + metrics + "/metrics"
	want := map[string]float64{
		`hashpool_sserver_sessions`:                              1,
		`hashpool_sserver_authorized_total`:                      1,
		`hashpool_sserver_shares_total{status="accepted"}`:       2, // block-solving shares are accepted shares
		`hashpool_sserver_shares_total{status="solved"}`:         2,
		`hashpool_sserver_shares_total{status="low_difficulty"}`: 1,
		`hashpool_sserver_shares_total{status="duplicate"}`:      1,
		`hashpool_sserver_shares_total{status="stale"}`:          1,
		`hashpool_sserver_shares_total{status="other"}`:          0,
		`hashpool_sserver_submits_total`:                         5,
		`hashpool_sserver_bad_lines_total`:                       1,
		`hashpool_sserver_solved_published_total`:                2,
		`hashpool_sserver_records_published_total`:               4, // the duplicate is answered, not recorded (btcpool)
		`hashpool_sserver_records_dropped_total`:                 0,
		`hashpool_sserver_journal_errors_total`:                  0,
	}
	var got map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = scrapeMetrics(t, url)
		bad := ""
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				bad += fmt.Sprintf("\n  %s = %v (present %v), want %v", k, g, ok, v)
			}
		}
		if got["hashpool_bus_records_written_total"] <= 0 || got["hashpool_bus_fsyncs_total"] <= 0 {
			bad += "\n  the in-process bus wrote nothing to disk"
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after the scripted session:%s", bad)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// docs/OPERATIONS.md names exactly the hashpool_ metrics there are.
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, name := range regexp.MustCompile(`hashpool_[a-z0-9_]+`).FindAllString(string(doc), -1) {
		documented[name] = true
	}
	exported := map[string]bool{}
	for k := range got {
		name, _, _ := strings.Cut(k, "{")
		if strings.HasPrefix(name, "hashpool_") {
			exported[name] = true
			if !documented[name] {
				t.Errorf("metric %s is exported but not in docs/OPERATIONS.md", name)
			}
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("docs/OPERATIONS.md names %s, which /metrics does not export", name)
		}
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bench/scenarios"
)

func TestAddRecordedAndRender(t *testing.T) {
	dir := t.TempDir()
	rec := &scenarios.Result{Name: "agent-farm-10k", Title: "farm", Started: time.Unix(1, 0).UTC(),
		Targets: []scenarios.Target{
			{What: "extensions: agent RSS, peak, hashpool target", Measured: "20.0 MB", Goal: "≤ 32 MB", Verdict: "met"},
			{What: "plain: upstream (farm → pool) wire, hashpool target", Measured: "180.0 kbps", Goal: "≤ 75 kbps", Verdict: "missed"},
		}}
	b, _ := json.Marshal(rec)
	path := filepath.Join(dir, "agent-farm-10k.result.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	other := &scenarios.Result{Name: "farm-10k"}
	for _, tc := range []struct {
		name string
		in   []*scenarios.Result
		path string
		want int  // results after
		rec  bool // the recorded one was added
	}{
		{"added when bench/out has none", []*scenarios.Result{other}, path, 2, true},
		{"bench/out's own run wins", []*scenarios.Result{other, {Name: "agent-farm-10k"}}, path, 2, false},
		{"no recorded file", []*scenarios.Result{other}, filepath.Join(dir, "absent.json"), 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := addRecorded(tc.in, tc.path)
			if len(got) != tc.want {
				t.Fatalf("%d results, want %d", len(got), tc.want)
			}
			last := got[len(got)-1]
			if added := last.Name == "agent-farm-10k" && len(last.Notes) > 0; added != tc.rec {
				t.Fatalf("recorded added %v, want %v (%+v)", added, tc.rec, last)
			}
		})
	}
	md := string(render(time.Unix(2, 0), "0", nil, nil, nil, addRecorded(nil, path), nil, 1))
	for _, want := range []string{
		"| agent-farm-10k: extensions: agent RSS, peak, hashpool target | 20.0 MB | ≤ 32 MB | met |",
		"| agent-farm-10k: plain: upstream (farm → pool) wire, hashpool target | 180.0 kbps | ≤ 75 kbps | **missed** |",
		"### agent-farm-10k",
		"recorded run",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q", want)
		}
	}
}

func TestParseSelection(t *testing.T) {
	sel, err := parseSelection("all", "all")
	if err != nil || !sel.all || !sel.ckpool || sel.partial || len(sel.ckpoolScenarios) != 6 {
		t.Errorf("all: %+v, %v", sel, err)
	}
	sel, err = parseSelection("none", "")
	if err != nil || sel.all || sel.ckpool || sel.partial {
		t.Errorf("none: %+v, %v", sel, err)
	}
	sel, err = parseSelection("ckpool-compare,farm-10k,farm-10k", "fanout")
	if err != nil || !sel.partial || !sel.ckpool || len(sel.only) != 1 || sel.only[0] != "farm-10k" ||
		len(sel.ckpoolScenarios) != 1 || sel.ckpoolScenarios[0] != "fanout" {
		t.Errorf("list: %+v, %v", sel, err)
	}
	_, err = parseSelection("ckpool-compare,bogus", "nope")
	if err == nil || !strings.Contains(err.Error(), `"bogus"`) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("bad names: %v: want both reported", err)
	}
}

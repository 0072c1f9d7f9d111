package engine

import (
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/hashpool/hashpool/codec/stratum"
)

// TestMetricsAllEnumerated: every field of Metrics is in All exactly once,
// with a help text, and no two have the same name and label value, so an
// exporter built on All exports every counter.
func TestMetricsAllEnumerated(t *testing.T) {
	var m Metrics
	all := m.All()
	byPtr := map[*atomic.Int64]int{}
	names := map[string]bool{}
	for _, mt := range all {
		byPtr[mt.v]++
		key := mt.Name + "{" + mt.Label + "=" + mt.LabelValue + "}"
		if names[key] {
			t.Errorf("metric %s listed twice", key)
		}
		names[key] = true
		if mt.Name == "" || mt.Help == "" {
			t.Errorf("metric %q without name or help", mt.Name)
		}
		if (mt.Kind == Counter) != (len(mt.Name) > 6 && mt.Name[len(mt.Name)-6:] == "_total") {
			t.Errorf("metric %s: counters, and only they, end in _total", mt.Name)
		}
	}
	v := reflect.ValueOf(&m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		p, ok := v.Field(i).Addr().Interface().(*atomic.Int64)
		if !ok {
			t.Errorf("Metrics.%s is %s, not atomic.Int64: All cannot list it", f.Name, f.Type)
			continue
		}
		if byPtr[p] != 1 {
			t.Errorf("Metrics.%s listed %d times in All, want 1", f.Name, byPtr[p])
		}
	}
	if len(all) != v.NumField() {
		t.Errorf("All lists %d metrics for %d fields", len(all), v.NumField())
	}
	m.BroadcastNanos.Store(2_500_000_000)
	m.Sessions.Store(7)
	for _, mt := range m.All() {
		switch mt.v {
		case &m.BroadcastNanos:
			if mt.Value() != 2.5 {
				t.Errorf("broadcast seconds %v, want 2.5", mt.Value())
			}
		case &m.Sessions:
			if mt.Value() != 7 || mt.Kind != Gauge {
				t.Errorf("sessions %v kind %v", mt.Value(), mt.Kind)
			}
		}
	}
}

// TestSubmitsCounted: every validated share counts in SubmitCount, and the
// sampled timing adds to SubmitNanos; solved shares count as accepted.
func TestSubmitsCounted(t *testing.T) {
	o := newOffline(t, testOptions(t))
	s := authorizedSession(t, o)
	for i := 0; i < 2*(submitSample+1); i++ {
		o.run(s, `{"id":9,"method":"mining.submit","params":["alice.rig1","0","00000000000000aa","00000000","00000001"]}`+"\n")
	}
	m := o.srv.metrics
	if n := m.SubmitCount.Load(); n != 2*(submitSample+1) {
		t.Fatalf("SubmitCount %d, want %d", n, 2*(submitSample+1))
	}
	if m.SubmitNanos.Load() <= 0 {
		t.Fatal("SubmitNanos not written")
	}
	var c Metrics
	c.countShare(stratum.StatusSolved)
	if c.SharesSolved.Load() != 1 || c.SharesAccepted.Load() != 1 {
		t.Fatalf("a solved share counts solved %d accepted %d, want 1 and 1", c.SharesSolved.Load(), c.SharesAccepted.Load())
	}
}

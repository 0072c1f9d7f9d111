package bus_test

import (
	"fmt"
	"testing"

	"github.com/hashpool/hashpool/bus"
)

func TestTopicsAux(t *testing.T) {
	d := bus.DefaultTopics()
	if d.MergedMining() || d.AuxRawGw != "" || d.AuxSolvedShare != "" {
		t.Fatalf("DefaultTopics has aux topics: %+v", d)
	}
	a := d.WithAux()
	if a.AuxRawGw != "AuxRawGw" || a.AuxSolvedShare != "AuxSolvedShare" || !a.MergedMining() {
		t.Fatalf("WithAux = %+v", a)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	want := "[BtcRawGbt BtcJob BtcShare BtcSolvedShare BtcCommonEvents AuxRawGw AuxSolvedShare]"
	if got := fmt.Sprint(a.All()); got != want {
		t.Fatalf("All = %s, want %s", got, want)
	}
	half := d
	half.AuxRawGw = "x"
	if err := half.Validate(); err == nil {
		t.Fatal("Validate accepted one aux topic without the other")
	}
	if a.WithAux() != a {
		t.Fatal("WithAux overrode configured names")
	}
}

package ci

import "testing"

func TestEnabled(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "FALSE": false, "no": false, "true": true, "1": true, "yes": true, " true ": true} {
		t.Setenv("CI", v)
		if got := Enabled(); got != want {
			t.Errorf("CI=%q: Enabled() = %v, want %v", v, got, want)
		}
	}
}

package engine

import (
	"math/big"
	"strings"
	"testing"

	"github.com/hashpool/hashpool/sha"
)

func TestSplitWorkerName(t *testing.T) {
	for _, tc := range []struct {
		rules        NameRules
		in           string
		user, worker string
	}{
		{NameRules{}, "alice.rig1", "alice", "rig1"},
		{NameRules{}, "alice", "alice", DefaultWorkerName},
		{NameRules{}, "alice.", "alice", DefaultWorkerName},
		{NameRules{}, "alice.a.b.c", "alice", "a.b.c"},
		{NameRules{}, "al ice!.ri g#1", "alice", "rig1"},
		{NameRules{}, "alice.123456789012345678901234", "alice", "12345678901234567890"},
		{NameRules{}, "Alice.X", "Alice", "X"},
		{NameRules{CaseInsensitive: true}, "Alice.X", "alice", "X"},
		{NameRules{StripSuffix: true, SuffixSeparator: "_"}, "bob_001.w", "bob", "w"},
		{NameRules{}, "", "", DefaultWorkerName},
		{NameRules{}, "\x00\xff.\n", "", DefaultWorkerName},
	} {
		u, w := tc.rules.SplitWorkerName(tc.in)
		if u != tc.user || w != tc.worker {
			t.Errorf("%+v SplitWorkerName(%q) = %q, %q; want %q, %q", tc.rules, tc.in, u, w, tc.user, tc.worker)
		}
	}
}

func TestFilterAgent(t *testing.T) {
	if got := FilterAgent("cgminer/4.10.0 (x86) \"evil\""); got != "cgminer/4.10.0x86evil" {
		t.Fatalf("got %q", got)
	}
	if got := FilterAgent(strings.Repeat("a", 40)); got != strings.Repeat("a", 30) {
		t.Fatalf("got %q", got)
	}
}

// TestWorkerIDReference checks the id against btcpool's definition: parse the
// first 16 display-hex digits of dSHA(name) as a number.
func TestWorkerIDReference(t *testing.T) {
	for _, name := range []string{"rig1", DefaultWorkerName, "a.b.c", ""} {
		disp := sha.DisplayHex(sha.DoubleSHA256([]byte(name)))
		want, _ := new(big.Int).SetString(disp[:16], 16)
		if got := WorkerID(name); uint64(got) != want.Uint64() {
			t.Errorf("WorkerID(%q) = %x, want %x", name, uint64(got), want.Uint64())
		}
	}
}

package nodeproc

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A node that exits at once: Launch tries three starts, each on fresh ports and a fresh data
// dir, and fails with the end of the last one's log; nothing is left behind. (A node that
// comes up is tested by internal/btcdtest and internal/namecoindtest against the real ones.)
func TestLaunchOfANodeThatExits(t *testing.T) {
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Skipf("no %s: %v", sh, err)
	}
	dir := t.TempDir()
	var layouts []Layout
	_, err := Launch(context.Background(), Spec{
		Name:       "fakenode",
		Binary:     sh,
		Dir:        dir,
		ExtraPorts: 2,
		Args: func(l Layout) []string {
			layouts = append(layouts, l)
			return []string{"-c", "echo fakenode rpc $0 user $1; exit 1", "x", l.User}
		},
		StartTimeout: time.Minute, CallTimeout: time.Second, Poll: 10 * time.Millisecond,
		StopSignal: syscall.SIGTERM, StopGrace: time.Second,
	})
	if err == nil {
		t.Fatal("Launch of a node that exits: want an error")
	}
	for _, want := range []string{"start fakenode: ", "fakenode RPC exited before it was ready", "--- fakenode output ---", "fakenode rpc x user hashpool"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(layouts) != 3 {
		t.Fatalf("%d starts, want 3", len(layouts))
	}
	for _, l := range layouts {
		if len(l.Ports) != 2 || l.RPCPort == 0 || l.Ports[0] == 0 || l.Ports[1] == 0 || l.Pass == "" || !strings.HasPrefix(l.DataDir, dir) {
			t.Errorf("layout %+v", l)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("data dirs left behind: %v", left)
	}
	if _, err := Launch(context.Background(), Spec{Name: "x"}); err == nil {
		t.Error("Launch without Binary and Args: want an error")
	}
}

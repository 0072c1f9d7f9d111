package scenarios

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSV1vsSV2Small runs the sv1-vs-sv2 comparison at 20 miners: the real
// enginesrv and loadgen binaries, the in-process sv2pool; every round must
// get shares accepted and jobs received, and every comparison must have a
// verdict from non-zero numbers.
func TestSV1vsSV2Small(t *testing.T) {
	if testing.Short() {
		t.Skip("builds enginesrv and loadgen and runs six short loads")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/enginesrv", "../../cmd/loadgen")
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := &runner{cfg: Config{OutDir: t.TempDir()}, enginesrv: filepath.Join(bin, "enginesrv"), loadgen: filepath.Join(bin, "loadgen")}
	res := &Result{Name: "sv1-vs-sv2-10k", Reports: map[string]string{}}
	if err := compareSV1SV2(ctx, r, res, sv2Sizes{miners: 20, jobs: 2, rate: 2, shareTime: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", res.Text())
	if len(res.Servers) != 3 || len(res.Reports) != 6 {
		t.Fatalf("%d servers, %d reports: want 3 and 6", len(res.Servers), len(res.Reports))
	}
	for _, n := range res.Numbers {
		if strings.Contains(n, " shares: ") && (strings.Contains(n, " 0 accepted") || !strings.Contains(n, "20/20 sessions up")) {
			t.Errorf("round without accepted shares or sessions: %s", n)
		}
		if strings.Contains(n, " jobs: ") && strings.Contains(n, " 0 receipts") {
			t.Errorf("round without jobs: %s", n)
		}
	}
	if len(res.Targets) != 12 {
		t.Fatalf("%d targets, want 12", len(res.Targets))
	}
	for _, tg := range res.Targets {
		if strings.Contains(tg.Measured, " 0 B") || strings.HasPrefix(tg.Measured, "0 B") || strings.Contains(tg.Measured, " 0.0 µs") {
			t.Errorf("target from a zero number: %+v", tg)
		}
	}
}

package scenarios

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/loadgen"
)

func TestResultRoundTrip(t *testing.T) {
	dir := t.TempDir()
	res := &Result{Name: "stratum-10k", Title: "t", Started: time.Unix(1, 0).UTC(), Reports: map[string]string{"engine": "stratum-10k.json"}}
	res.number("%d sessions", 10)
	res.target("a", "1", "≥ 1", true)
	res.target("b", "0", "≥ 1", false)
	res.reference("c", "5", "none")
	if err := res.write(dir); err != nil {
		t.Fatal(err)
	}
	// A file of an unknown scenario is ignored.
	os.WriteFile(filepath.Join(dir, "other"+ResultSuffix), []byte("{"), 0o644)
	got, err := Load(dir)
	if err != nil || len(got) != 1 {
		t.Fatalf("Load: %d results, %v", len(got), err)
	}
	if got[0].Text() != res.Text() {
		t.Fatalf("text after round trip:\n%s\nwant\n%s", got[0].Text(), res.Text())
	}
	for _, want := range []string{"[met] a: 1 (target ≥ 1)", "[missed] b", "[reference] c", "10 sessions", "stratum-10k.json"} {
		if !strings.Contains(res.Text(), want) {
			t.Errorf("text lacks %q:\n%s", want, res.Text())
		}
	}
	for file, owned := range map[string]bool{"stratum-10k.json": true, "stratum-10k.txt": true, "stratum-10k.result.json": true, "compare.json": false} {
		if Owned(got, file) != owned {
			t.Errorf("Owned(%q) = %v", file, !owned)
		}
	}
}

func TestRunRejectsUnknownScenario(t *testing.T) {
	if _, err := Run(context.Background(), Config{Only: []string{"nope"}, OutDir: t.TempDir()}); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

// TestEnginesrv runs the real server process for both implementations:
// ready line, stats, a published job reaching a real stratum miner, SIGUSR1,
// SIGTERM.
func TestEnginesrv(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs enginesrv")
	}
	bin := filepath.Join(t.TempDir(), "enginesrv")
	build := exec.Command("go", "build", "-o", bin, "./cmd/enginesrv")
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, impl := range []string{"engine", "baseline"} {
		t.Run(impl, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			addr := "127.0.0.1:" + strconv.Itoa(port)
			p, err := startServer(ctx, impl, bin, "-impl", impl, "-listen", addr, "-difficulty", "0.0001", "-job-interval", "0", "-max-run", "1m")
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			st, err := p.stats(ctx, true)
			if err != nil || st.PID != p.pid || st.Impl != impl || st.RSSKB <= 0 || !st.GC {
				t.Fatalf("stats %+v, %v", st, err)
			}
			// One real miner for 3 s with a job published meanwhile.
			s := loadgen.DefaultScenario()
			s.URL, s.Miners, s.Rate, s.Duration, s.PublishEvery = addr, 2, 2, 3*time.Second, time.Second
			var events []JobEvent
			s.Publish = func(ctx context.Context, n int) error {
				if n > 0 {
					<-ctx.Done()
					return ctx.Err()
				}
				ev, err := p.publish(ctx)
				events = append(events, ev)
				return err
			}
			rep, err := loadgen.Run(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Sessions.Ever != 2 || rep.Shares.Accepted == 0 || rep.Fanout.Published != 1 || rep.ErrorCount != 0 {
				t.Fatalf("loadgen: %d sessions, %d accepted, %d published, errors %v", rep.Sessions.Ever, rep.Shares.Accepted, rep.Fanout.Published, rep.Errors)
			}
			if len(events) != 1 || events[0].Sessions != 2 || events[0].Height != 800_002 {
				t.Fatalf("job events %+v", events)
			}
			st, err = p.stats(ctx, false)
			if err != nil || st.Accepted != rep.Shares.Accepted || st.Height != 800_002 {
				t.Fatalf("server accepted %d, loadgen %d; height %d (%v)", st.Accepted, rep.Shares.Accepted, st.Height, err)
			}
			// Records are handed to the bus once a second.
			for deadline := time.Now().Add(10 * time.Second); impl == "engine" && st.RecordsConsumed < st.Accepted; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("share records drained %d < accepted %d", st.RecordsConsumed, st.Accepted)
				}
				st, _ = p.stats(ctx, false)
			}
			if err := p.proc.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if st, _ = p.stats(ctx, false); st.Height == 800_003 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("SIGUSR1: height %d", st.Height)
				}
			}
			p.stop()
			if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				t.Fatal("still listening after SIGTERM")
			}
		})
	}
}

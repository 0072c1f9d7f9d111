package sha

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedKernelIsCurrent checks that shani_amd64.s is exactly what
// gen_shani.go writes, so that an edit to either cannot go unnoticed.
func TestGeneratedKernelIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator with the go command")
	}
	goCmd, err := exec.LookPath("go") // go test puts its own GOROOT/bin first on $PATH
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	out := filepath.Join(t.TempDir(), "shani_amd64.s")
	cmd := exec.Command(goCmd, "run", "gen_shani.go", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen_shani.go: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("shani_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		t.Fatal("shani_amd64.s differs from what gen_shani.go writes: run `go generate ./sha` and commit the result")
	}
}

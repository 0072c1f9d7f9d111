package engine

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/engine/userlist"
	"github.com/hashpool/hashpool/sha"
)

// engineChildEnv makes the test binary run an engine (data dir in the
// variable) with a solvable job, print its address and serve until killed.
const engineChildEnv = "HASHPOOL_ENGINE_CHILD"

// engineChildAuxEnv, with engineChildEnv, gives the child's job one aux chain whose target
// every share meets, and a parent target no share meets.
const engineChildAuxEnv = "HASHPOOL_ENGINE_CHILD_AUX"

func engineChild(dir string) int {
	o := NewOptions()
	aux := os.Getenv(engineChildAuxEnv) != ""
	if aux {
		o.Topics = o.Topics.WithAux()
	}
	o.Listen, o.ReusePort, o.EventLoops, o.DataDir = "127.0.0.1:0", false, 1, dir
	o.MinDifficulty, o.DefaultDifficulty = 1.0/(1<<20), 1.0/(1<<20)
	b := mem.New(mem.Options{})
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		return 1
	}
	users, err := userlist.OpenEmbedded(filepath.Join(dir, "users"), nil)
	if err != nil {
		return 1
	}
	srv, err := New(o, Deps{Producer: prod, Users: users})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go srv.Serve(context.Background())
	<-srv.Ready()
	job := testJobParams(800, !aux)
	if aux {
		job.NetworkTarget = sha.Target{1}
		job.Aux = []AuxChain{{Name: "nmc", ChainID: 1, Hash: strings.Repeat("11", 32), Target: allOnes}}
	}
	if err := srv.AddJob(job); err != nil {
		return 1
	}
	fmt.Println(srv.Addr().String())
	select {}
}

// TestSolvedShareSurvivesKillAfterAnswer: an engine process killed with
// SIGKILL right after a miner read the true of a block-solving share has the
// share in its journal (and so publishes it at the next start, which
// TestSolvedShareRepublishedAtStart checks).
func TestSolvedShareSurvivesKillAfterAnswer(t *testing.T) {
	dir := t.TempDir()
	cmd := startEngineChild(t, dir, false)
	addr := <-childAddr(t, cmd)
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.subscribeAuthorize("", "erin.big")
	c.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	c.send(fmt.Sprintf(`{"id":3,"method":"mining.submit","params":["erin.big","0","00000000000000c9","%08x","00000001"]}`, uint32(time.Now().Unix())))
	if got := c.recv(); got != `{"id":3,"result":true,"error":null}` {
		t.Fatalf("answer %s", got)
	}
	cmd.Process.Kill() // SIGKILL at once after the true
	cmd.Wait()
	killed = true
	recs, err := ReadJournal(filepath.Join(dir, journalFile))
	if err != nil || len(recs) != 1 {
		t.Fatalf("journal after kill -9: %d records, %v", len(recs), err)
	}
	var ss btcpool.SolvedShare
	if err := btcpool.DecodeSolvedShare(recs[0].Msg, &ss); err != nil || ss.Height != 800 || !strings.HasPrefix(ss.WorkerFullName, "erin.") {
		t.Fatalf("journaled share %+v, %v", ss, err)
	}
}

// TestAuxSolvedShareSurvivesKillAfterAnswer: the same for a share that solves only an aux
// block (the parent share is low difficulty): its answer is held until the aux record is
// fsync'd, so after kill -9 right after the answer the journal holds it, flagged aux.
func TestAuxSolvedShareSurvivesKillAfterAnswer(t *testing.T) {
	dir := t.TempDir()
	cmd := startEngineChild(t, dir, true)
	addr := <-childAddr(t, cmd)
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.subscribeAuthorize("", "erin.big")
	c.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	c.send(fmt.Sprintf(`{"id":3,"method":"mining.submit","params":["erin.big","0","00000000000000c9","%08x","00000001"]}`, uint32(time.Now().Unix())))
	if got := c.recv(); !strings.HasPrefix(got, `{"id":3,`) {
		t.Fatalf("answer %s", got)
	}
	cmd.Process.Kill() // SIGKILL at once after the answer
	cmd.Wait()
	killed = true
	recs, err := ReadJournal(filepath.Join(dir, journalFile))
	if err != nil || len(recs) != 1 || !recs[0].Aux {
		t.Fatalf("journal after kill -9: %+v, %v", recs, err)
	}
	var a btcpool.AuxSolvedShare
	if err := btcpool.DecodeAuxSolvedShare(recs[0].Msg, &a); err != nil || a.ChainName != "nmc" || a.AuxBlockHash != strings.Repeat("11", 32) {
		t.Fatalf("journaled aux share %+v, %v", a, err)
	}
}

// startEngineChild starts the test binary as an engine child (see engineChild).
func startEngineChild(t *testing.T, dir string, aux bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), engineChildEnv+"="+dir)
	if aux {
		cmd.Env = append(cmd.Env, engineChildAuxEnv+"=1")
	}
	return cmd
}

// childAddr starts cmd and returns a channel with its listening address (read from its
// stdout), already filled; the test fails when the child does not start within 60 s.
func childAddr(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			addrCh <- sc.Text()
		}
	}()
	out := make(chan string, 1)
	select {
	case addr := <-addrCh:
		out <- addr
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("engine child did not start")
	}
	return out
}

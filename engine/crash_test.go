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
)

// engineChildEnv makes the test binary run an engine (data dir in the
// variable) with a solvable job, print its address and serve until killed.
const engineChildEnv = "HASHPOOL_ENGINE_CHILD"

func engineChild(dir string) int {
	o := NewOptions()
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
	if err := srv.AddJob(testJobParams(800, true)); err != nil {
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
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), engineChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			addrCh <- sc.Text()
		}
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(60 * time.Second):
		t.Fatal("engine child did not start")
	}
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

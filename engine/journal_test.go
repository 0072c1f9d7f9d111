package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// waitJournal waits (at most 10 s) until the journal at path holds n solved
// shares, all acknowledged, and returns them.
func waitJournal(t testing.TB, path string, n int) []JournalEntry {
	t.Helper()
	var recs []JournalEntry
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if recs, err = ReadJournal(path); err != nil {
			t.Fatal(err)
		}
		acked := 0
		for _, r := range recs {
			if r.Acked {
				acked++
			}
		}
		if len(recs) == n && acked == n {
			return recs
		}
	}
	t.Fatalf("journal: %d records (%+v), want %d acknowledged", len(recs), recs, n)
	return nil
}

// submitSolved authorizes a session on p and submits one share that solves
// the (solvable) latest job.
func submitSolved(t testing.TB, p *testPool, job *JobParams, short int, en2 string) {
	t.Helper()
	c := p.dial()
	c.script(`
> {"id":1,"method":"mining.subscribe","params":[]}
<~ .*
> {"id":2,"method":"mining.authorize","params":["erin.big"]}
< {"id":2,"result":true,"error":null}
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	c.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["erin.big","%d","%s","%08x","00000001"]}
< {"id":3,"result":true,"error":null}`, short, en2, job.Time))
}

// TestSolvedShareRepublishedAtStart kills publication (a producer that
// fails every record), restarts on a working bus and checks the share is
// published then, once: the acknowledgement is journaled and the journal
// compacted, so a third start sends nothing.
func TestSolvedShareRepublishedAtStart(t *testing.T) {
	o := testOptions(t)
	path := filepath.Join(o.DataDir, journalFile)

	// Run 1: the producer is closed, so every publish fails.
	b1 := mem.New(mem.Options{})
	defer b1.Close()
	dead, err := b1.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	p1 := startPoolOn(t, o, b1, dead)
	job := testJobParams(400, true)
	if err := p1.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	submitSolved(t, p1, job, 0, "00000000000000c1")
	waitFor(t, "a failed publication", func() bool { return p1.srv.metrics.SolvedRetries.Load() > 0 })
	// While the first is being retried, a second block is journaled at once.
	job2 := testJobParams(401, true)
	if err := p1.srv.AddJob(job2); err != nil {
		t.Fatal(err)
	}
	submitSolved(t, p1, job2, 1, "00000000000000c2")
	var recs []JournalEntry
	waitFor(t, "the second share in the journal", func() bool {
		recs, err = ReadJournal(path)
		return err == nil && len(recs) == 2
	})
	if err := p1.stop(); err != nil {
		t.Fatal(err)
	}
	recs, err = ReadJournal(path)
	if err != nil || len(recs) != 2 || recs[0].Acked || recs[1].Acked {
		t.Fatalf("after failed publication: journal %+v, %v", recs, err)
	}
	var journaled [][]byte
	for i, r := range recs {
		journaled = append(journaled, bytes.Clone(r.Msg))
		var ss btcpool.SolvedShare
		if err := btcpool.DecodeSolvedShare(r.Msg, &ss); err != nil || ss.Height != 400+int32(i) || ss.WorkerFullName != "erin.big" {
			t.Fatalf("journaled share %+v: %v", ss, err)
		}
	}

	// Run 2: a working bus gets the share at start, without any miner.
	b2 := mem.New(mem.Options{})
	defer b2.Close()
	prod2, err := b2.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod2.Close()
	p2 := startPoolOn(t, o, b2, prod2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got [][]byte
	for len(got) < 2 {
		msgs, err := p2.solved.Poll(ctx)
		if err != nil {
			t.Fatalf("republished: %d msgs, %v", len(got), err)
		}
		for _, m := range msgs {
			got = append(got, bytes.Clone(m.Value))
		}
	}
	if len(got) != 2 || !bytes.Equal(got[0], journaled[0]) || !bytes.Equal(got[1], journaled[1]) {
		t.Fatalf("republished %d shares, not the journaled ones in order", len(got))
	}
	waitJournal(t, path, 2)
	if err := p2.stop(); err != nil {
		t.Fatal(err)
	}
	if n := p2.srv.metrics.SolvedPublished.Load(); n != 2 {
		t.Fatalf("run 2 published %d solved shares, want 2", n)
	}

	// Run 3: nothing is left to send and the journal is compacted.
	b3 := mem.New(mem.Options{})
	defer b3.Close()
	prod3, err := b3.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod3.Close()
	p3 := startPoolOn(t, o, b3, prod3)
	if err := p3.stop(); err != nil {
		t.Fatal(err)
	}
	if n := p3.srv.metrics.SolvedPublished.Load(); n != 0 {
		t.Fatalf("run 3 published %d solved shares, want 0", n)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("journal not compacted: %v %v", fi, err)
	}
}

// TestJournalCompaction checks the record format: acknowledged shares go,
// unacknowledged ones stay in order, a torn tail is dropped.
func TestJournalCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), journalFile)
	var b []byte
	offs := []int64{}
	for i, msg := range []string{"first", "second", "third"} {
		offs = append(offs, int64(len(b)))
		b = appendJournalRecord(b, uint32(len(msg)), []byte(msg))
		if i == 1 { // "second" is acknowledged
			var p [8]byte
			p[0] = byte(offs[1])
			b = appendJournalRecord(b, ackFlag|8, p[:])
		}
	}
	var bogus [8]byte
	bogus[0] = 3 // an ack of an offset that is no record: ignored
	b = appendJournalRecord(b, ackFlag|8, bogus[:])
	b = append(b, 9, 0, 0, 0, 1, 2) // torn
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadJournal(path)
	if err != nil || len(recs) != 3 || recs[0].Acked || !recs[1].Acked || recs[2].Acked || recs[2].Offset != offs[2] {
		t.Fatalf("read %+v, %v", recs, err)
	}
	pending, err := compactJournal(path)
	if err != nil || len(pending) != 2 || string(pending[0].Msg) != "first" || string(pending[1].Msg) != "third" ||
		pending[0].Offset != 0 || pending[1].Offset != 8+5 {
		t.Fatalf("compacted %+v, %v", pending, err)
	}
	recs, err = ReadJournal(path)
	if err != nil || len(recs) != 2 || string(recs[1].Msg) != "third" || recs[1].Offset != 13 {
		t.Fatalf("after compaction %+v, %v", recs, err)
	}
	// A corrupt CRC ends the journal there.
	b, _ = os.ReadFile(path)
	b[13+4] ^= 1
	os.WriteFile(path, b, 0o644)
	if recs, _ := ReadJournal(path); len(recs) != 1 {
		t.Fatalf("corrupt record read: %+v", recs)
	}
	if recs, err := ReadJournal(filepath.Join(t.TempDir(), "missing")); err != nil || recs != nil {
		t.Fatalf("missing journal: %v %v", recs, err)
	}
}

// TestJournalEmptiedWhenAllAcknowledged: a journal past journalTruncateAt
// is emptied once every share in it is acknowledged, so a test network that
// solves a block with most shares does not grow it without bound.
func TestJournalEmptiedWhenAllAcknowledged(t *testing.T) {
	b := mem.New(mem.Options{})
	defer b.Close()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	dir := t.TempDir()
	o, err := newOutputs(prod, bus.DefaultTopics(), dir, &Metrics{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	const n, size = 600, 4 << 10
	for i := 0; i < n; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, size)
		o.pushSolved(solvedItem{msg: msg})
	}
	waitFor(t, "every share published", func() bool { return o.metrics.SolvedPublished.Load() == n })
	o.close()
	path := filepath.Join(dir, journalFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() >= journalTruncateAt+size+8 {
		t.Fatalf("journal %v bytes after %d acknowledged shares of %d bytes (%v)", fi.Size(), n, size, err)
	}
	recs, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if !r.Acked {
			t.Fatalf("share at %d not acknowledged", r.Offset)
		}
	}
	// A start finds nothing to publish.
	if pending, err := compactJournal(path); err != nil || len(pending) != 0 {
		t.Fatalf("pending %d, %v", len(pending), err)
	}
}

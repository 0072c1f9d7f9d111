package engine

import (
	"strconv"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// Tests that an event loop is not held up or misled by what happens
// outside it: a stalled bus, job broadcasts racing each other.

// TestStalledBusDoesNotBlockLoop: when the bus stops taking share records
// (Publish blocks), a loop handing over its batches must not block: the
// batches that do not fit the queue are dropped and counted.
func TestStalledBusDoesNotBlockLoop(t *testing.T) {
	b := mem.New(mem.Options{})
	prod, err := b.NewProducer(bus.ProducerOptions{MaxBufferedRecords: 1})
	if err != nil {
		t.Fatal(err)
	}
	users, err := OpenEmbeddedUsers(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(testOptions(t), Deps{Producer: prod, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	release, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		close(release)
		<-done // a blocked loop goes on once the bus does
		srv.out.close()
		prod.Close()
		b.Close()
	})
	// This record's done callback holds the producer's callback goroutine,
	// so every later Publish blocks: a stalled bus.
	prod.Publish("stall", nil, []byte("x"), func(error) { <-release })
	prod.Publish("stall", nil, []byte("y"), nil)

	lp := newLoop(srv, 0)
	const batches = 3000
	go func() {
		defer close(done)
		for i := 0; i < batches; i++ {
			lp.record(&btcpool.Share{Version: btcpool.CurrentShareVersion, JobID: uint64(i), ShareDiff: 1})
			lp.flushRecords()
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the loop blocked handing share records to a stalled bus")
	}
	if n := srv.metrics.RecordsDropped.Load(); n == 0 || n >= batches {
		t.Fatalf("%d records dropped of %d", n, batches)
	}
}

// TestOlderJobNotBroadcastAfterNewer: the periodic re-send of the latest job
// and a new job are broadcast from different goroutines; when the re-send
// of the old job reaches a loop after the new job, the old (now stale) job
// must not become the miners' current job.
func TestOlderJobNotBroadcastAfterNewer(t *testing.T) {
	p := startPool(t, testOptions(t))
	j1 := testJobParams(1000, false)
	if err := p.srv.AddJob(j1); err != nil {
		t.Fatal(err)
	}
	old := p.srv.repo.Latest()
	c := p.dial()
	c.subscribeAuthorize("cgminer/4.10", "judy.w")
	nextJob := func() uint64 {
		for {
			l := c.recv()
			if m := notifyIDRe.FindStringSubmatch(l); m != nil {
				id, _ := strconv.ParseUint(m[1], 10, 64)
				return id
			}
		}
	}
	if id := nextJob(); id != uint64(old.ShortID) {
		t.Fatalf("job %d after authorize", id)
	}
	j2 := testJobParams(1001, false)
	j2.ID = j1.ID + 1
	if err := p.srv.AddJob(j2); err != nil {
		t.Fatal(err)
	}
	newer := p.srv.repo.Latest()
	p.srv.broadcast(old, old.Clean) // the late re-send
	p.srv.broadcast(newer, false)   // the next re-send
	for i, want := range []uint8{newer.ShortID, newer.ShortID} {
		if id := nextJob(); id != uint64(want) {
			t.Fatalf("notify %d: job %d, want %d (job %d is older and stale)", i, id, want, old.ShortID)
		}
	}
}

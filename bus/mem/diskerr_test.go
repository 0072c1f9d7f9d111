package mem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// A write or fsync error fails the batch's done callbacks with the error
// (never a silent ack), is counted, and the bus goes on once the disk
// recovers; a reopen finds every acknowledged record, offsets contiguous.
func TestDiskErrors(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{Dir: dir, SegmentBytes: 8192})
	if err != nil {
		t.Fatal(err)
	}
	var failWrites, failSyncs atomic.Int32
	b.d.writeAt = func(f *os.File, p []byte, off int64) (int, error) {
		if failWrites.Load() > 0 {
			failWrites.Add(-1)
			// A partial write, as a full disk gives.
			n, _ := f.WriteAt(p[:len(p)/2], off)
			return n, syscall.ENOSPC
		}
		return f.WriteAt(p, off)
	}
	b.d.sync = func(f *os.File) error {
		if failSyncs.Load() > 0 {
			failSyncs.Add(-1)
			return syscall.EIO
		}
		return fdatasync(f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, _ := b.NewProducer(bus.ProducerOptions{})
	var acked []string
	publish := func(v string) error {
		err := p.PublishSync(ctx, "t", nil, []byte(v))
		if err == nil {
			acked = append(acked, v)
		}
		return err
	}
	for i := range 50 {
		v := fmt.Sprintf("v%03d", i)
		switch i {
		case 10, 30:
			failWrites.Store(1)
			if err := publish(v); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("record %d on a full disk: %v, want ENOSPC", i, err)
			}
		case 20, 40:
			failSyncs.Store(1)
			if err := publish(v); !errors.Is(err, syscall.EIO) {
				t.Fatalf("record %d with a failing fsync: %v, want EIO", i, err)
			}
		default:
			if err := publish(v); err != nil {
				t.Fatalf("record %d after the disk recovered: %v", i, err)
			}
		}
	}
	if st := b.Stats(); st.WriteErrors != 4 {
		t.Fatalf("WriteErrors = %d, want 4", st.WriteErrors)
	}
	p.Close()
	b.Close()

	b, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, _ := b.NewConsumer("t", bus.Start{Tail: 1000})
	defer c.Close()
	var got []string
	next := b.Oldest("t")
	for next < b.End("t") {
		msgs, err := c.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Offset != next {
				t.Fatalf("offset %d, want %d", m.Offset, next)
			}
			next++
			got = append(got, string(m.Value))
		}
	}
	// Failed writes are gone; records whose fsync failed may be there
	// (reported as not confirmed); every acknowledged one is.
	j := 0
	for _, v := range got {
		if j < len(acked) && v == acked[j] {
			j++
		} else if v != "v020" && v != "v040" {
			t.Fatalf("unexpected record %q on disk", v)
		}
	}
	if j != len(acked) {
		t.Fatalf("%d of %d acknowledged records on disk: %q", j, len(acked), got)
	}
}

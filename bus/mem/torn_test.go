package mem_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
)

// writeRecords makes a Dir holding n records on topic t, values from
// bigValue(i, size(i)), and returns the Dir.
func writeRecords(t *testing.T, opts mem.Options, n int, size func(int) int) {
	t.Helper()
	b := openDurable(t, opts)
	p, _ := b.NewProducer(bus.ProducerOptions{})
	for i := range n {
		p.Publish("t", []byte("key"), bigValue(i, size(i)), nil)
	}
	if err := p.Flush(wctx(t)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	b.Close()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkRecords checks that topic t holds records [from, to) with their values
// and that a new record gets offset to.
func checkRecords(t *testing.T, b *mem.Bus, from, to int, size func(int) int) {
	t.Helper()
	if b.Oldest("t") != int64(from) || b.End("t") != int64(to) {
		t.Fatalf("retained [%d,%d), want [%d,%d)", b.Oldest("t"), b.End("t"), from, to)
	}
	for i, m := range readAll(t, b, "t") {
		if !bytes.Equal(m.Value, bigValue(from+i, size(from+i))) || string(m.Key) != "key" {
			t.Fatalf("record %d differs", from+i)
		}
	}
	p, _ := b.NewProducer(bus.ProducerOptions{})
	defer p.Close()
	c, _ := b.NewConsumer("t", bus.Start{})
	defer c.Close()
	if err := p.PublishSync(wctx(t), "t", nil, []byte("new")); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Poll(wctx(t))
	if err != nil || msgs[0].Offset != int64(to) || string(msgs[0].Value) != "new" {
		t.Fatalf("new record: %v %v", msgs, err)
	}
}

// A segment cut at every byte of its last record (a kill -9 or power loss
// mid-write) reopens with the records before it, logs the cut, and goes on
// at the right offset.
func TestTornTailEveryByte(t *testing.T) {
	src := t.TempDir()
	size := func(i int) int { return 40 + i%7 }
	const n = 20
	writeRecords(t, mem.Options{Dir: src}, n, size)
	seg := filepath.Join(src, "t", fmt.Sprintf("%020d.seg", 0))
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	last := int64(mem.FrameOverhead + len("key") + size(n-1))
	start := int64(len(full)) - last
	for cut := start; cut < int64(len(full)); cut++ {
		dir := t.TempDir()
		copyDir(t, src, dir)
		if err := os.Truncate(filepath.Join(dir, "t", filepath.Base(seg)), cut); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		b := openDurable(t, mem.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		checkRecords(t, b, 0, n-1, size)
		if cut > start && !strings.Contains(logs.String(), "cutting it") {
			t.Fatalf("cut at %d not logged: %q", cut, logs.String())
		}
		b.Close()
	}
}

// A flipped byte anywhere in the last record cuts it (CRC); a segment whose
// header is torn is removed.
func TestCorruptTail(t *testing.T) {
	src := t.TempDir()
	size := func(int) int { return 64 }
	const n = 10
	writeRecords(t, mem.Options{Dir: src}, n, size)
	seg := filepath.Join(src, "t", fmt.Sprintf("%020d.seg", 0))
	full, _ := os.ReadFile(seg)
	last := mem.FrameOverhead + len("key") + 64
	for i := len(full) - last; i < len(full); i++ {
		dir := t.TempDir()
		copyDir(t, src, dir)
		bad := bytes.Clone(full)
		bad[i] ^= 0x40
		os.WriteFile(filepath.Join(dir, "t", filepath.Base(seg)), bad, 0o644)
		b := openDurable(t, mem.Options{Dir: dir})
		if b.End("t") != n-1 {
			t.Fatalf("flip at byte %d: End %d, want %d", i, b.End("t"), n-1)
		}
		b.Close()
	}
	// A torn header of a later (empty) segment.
	dir := t.TempDir()
	copyDir(t, src, dir)
	os.WriteFile(filepath.Join(dir, "t", fmt.Sprintf("%020d.seg", n)), []byte("hpbus"), 0o644)
	b := openDurable(t, mem.Options{Dir: dir})
	checkRecords(t, b, 0, n, size)
	b.Close()
}

// Corruption inside an older segment: without its summary, Open scans it and
// cuts it there; with it, the reader finds the bad record and skips the rest
// of that segment. Either way the later segments stay and readers see exactly
// one gap.
func TestCorruptMiddleSegment(t *testing.T) {
	for _, withSummary := range []bool{false, true} {
		t.Run(fmt.Sprint("summary=", withSummary), func(t *testing.T) {
			dir := t.TempDir()
			size := func(int) int { return 100 }
			writeRecords(t, mem.Options{Dir: dir, SegmentBytes: 4096}, 200, size)
			files, _ := filepath.Glob(filepath.Join(dir, "t", "*.seg"))
			if len(files) < 3 {
				t.Fatalf("%d segments", len(files))
			}
			if !withSummary {
				idx, _ := filepath.Glob(filepath.Join(dir, "t", "*.idx"))
				if len(idx) != len(files)-1 {
					t.Fatalf("%d summaries for %d segments", len(idx), len(files))
				}
				for _, f := range idx {
					os.Remove(f)
				}
			}
			data, _ := os.ReadFile(files[1])
			data[len(data)/2] ^= 1
			os.WriteFile(files[1], data, 0o644)
			var logs bytes.Buffer
			b := openDurable(t, mem.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			defer b.Close()
			if b.End("t") != 200 {
				t.Fatalf("End %d", b.End("t"))
			}
			c, _ := b.NewConsumer("t", bus.Start{Tail: 1000})
			defer c.Close()
			var offs []int64
			for len(offs) == 0 || offs[len(offs)-1] < 199 {
				msgs, err := c.Poll(wctx(t))
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					if !bytes.Equal(m.Value, bigValue(int(m.Offset), 100)) {
						t.Fatalf("offset %d has a wrong value", m.Offset)
					}
					offs = append(offs, m.Offset)
				}
			}
			gaps := 0
			for i := 1; i < len(offs); i++ {
				if offs[i] != offs[i-1]+1 {
					gaps++
				}
			}
			want := "cutting it"
			if withSummary {
				want = "skipping the rest"
			}
			if gaps != 1 || len(offs) >= 200 || !strings.Contains(logs.String(), want) {
				t.Fatalf("%d records read with %d gaps; log %q", len(offs), gaps, logs.String())
			}
		})
	}
}

// Sealed segments reopen from their summaries; a damaged or stale summary
// falls back to a scan with the same result.
func TestSegmentSummaries(t *testing.T) {
	size := func(i int) int { return 50 + i%300 }
	for _, damage := range []string{"none", "flip", "truncate", "stale", "remove"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			writeRecords(t, mem.Options{Dir: dir, SegmentBytes: 4096}, 500, size)
			idx, _ := filepath.Glob(filepath.Join(dir, "t", "*.idx"))
			if len(idx) < 5 {
				t.Fatalf("%d summaries", len(idx))
			}
			f := idx[len(idx)/2]
			data, _ := os.ReadFile(f)
			orig := bytes.Clone(data)
			switch damage {
			case "flip":
				data[len(data)/2] ^= 4
				os.WriteFile(f, data, 0o644)
			case "truncate":
				os.WriteFile(f, data[:len(data)-1], 0o644)
			case "stale": // a summary of another segment
				other, _ := os.ReadFile(idx[0])
				os.WriteFile(f, other, 0o644)
			case "remove":
				os.Remove(f)
			}
			b := openDurable(t, mem.Options{Dir: dir})
			checkRecords(t, b, 0, 500, size)
			c, _ := b.NewConsumer("t", bus.Start{Tail: 123})
			msgs, err := c.Poll(wctx(t))
			if err != nil || msgs[0].Offset != 378 || !bytes.Equal(msgs[0].Value, bigValue(378, size(378))) {
				t.Fatalf("Tail 123: %v", err)
			}
			c.Close()
			b.Close()
			// The fallback scan wrote the same summary again.
			if again, _ := os.ReadFile(f); !bytes.Equal(again, orig) {
				t.Fatalf("summary after reopen differs from the writer's (%d vs %d bytes)", len(again), len(orig))
			}
		})
	}
}

// The group offsets file cut at every byte of its last record keeps the
// offset before it.
func TestTornGroupsFile(t *testing.T) {
	src := t.TempDir()
	b := openDurable(t, mem.Options{Dir: src})
	p, _ := b.NewProducer(bus.ProducerOptions{})
	for i := range 10 {
		p.PublishSync(wctx(t), "t", nil, fmt.Appendf(nil, "%d", i))
	}
	c, _ := b.NewConsumer("t", bus.Start{Group: "grp", Tail: 10})
	msgs, _ := c.Poll(wctx(t))
	c.Commit(wctx(t), msgs[3])
	c.Commit(wctx(t), msgs[8])
	c.Close()
	p.Close()
	b.Close()
	gpath := filepath.Join(src, "groups.log")
	full, _ := os.ReadFile(gpath)
	// The file was compacted at open, then got the two commits.
	rec := 8 + 2 + 1 + 2 + 3 + 8
	for cut := len(full) - rec; cut <= len(full); cut++ {
		dir := t.TempDir()
		copyDir(t, src, dir)
		os.Truncate(filepath.Join(dir, "groups.log"), int64(cut))
		b := openDurable(t, mem.Options{Dir: dir})
		off, ok := b.Committed("grp", "t")
		want := int64(4)
		if cut == len(full) {
			want = 9
		}
		if !ok || off != want {
			t.Fatalf("cut at %d of %d: committed %d (%v), want %d", cut, len(full), off, ok, want)
		}
		b.Close()
	}
}

// The same for a template-size last record, at a random sample of cut
// points (every byte would be a million reopens).
func TestTornTailLargeRecord(t *testing.T) {
	src := t.TempDir()
	size := func(i int) int {
		if i == 4 {
			return 3 << 19
		}
		return 1000 + i
	}
	const n = 5
	writeRecords(t, mem.Options{Dir: src}, n, size)
	seg := filepath.Join(src, "t", fmt.Sprintf("%020d.seg", 0))
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	last := int64(mem.FrameOverhead + len("key") + size(n-1))
	start := fi.Size() - last
	cuts := []int64{start, start + 1, start + 7, start + 8, start + 27, start + 28, fi.Size() - 1}
	for i := range 16 {
		cuts = append(cuts, start+int64(i)*last/16+int64(i%13))
	}
	for _, cut := range cuts {
		dir := t.TempDir()
		copyDir(t, src, dir)
		if err := os.Truncate(filepath.Join(dir, "t", filepath.Base(seg)), cut); err != nil {
			t.Fatal(err)
		}
		b := openDurable(t, mem.Options{Dir: dir})
		checkRecords(t, b, 0, n-1, size)
		b.Close()
	}
}

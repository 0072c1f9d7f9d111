package logger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
)

const day0 = 1600041600 // 2020-09-14 00:00:00 UTC

// realisticShare is a share as sserver produces it: 100 users, 1000
// workers, random nonces, mostly accepted.
func realisticShare(rng *rand.Rand, i int, ts int64) btcpool.Share {
	worker := rng.Intn(1000)
	st := btcpool.StatusAccept
	if rng.Intn(50) == 0 {
		st = btcpool.Status(21) // stale
	}
	return btcpool.Share{
		Version: btcpool.CurrentShareVersion, WorkerHashID: int64(worker)*0x1E3779B97F4A7C15 | 1,
		UserID: int32(worker%100 + 1), Status: st, Timestamp: ts,
		IP:    netip.AddrFrom4([4]byte{10, byte(worker >> 8), byte(worker), 7}),
		JobID: uint64(ts)<<32 | uint64(i%256), ShareDiff: 16384 << (worker % 4), BlkBits: 0x17034219,
		Height: 840000, Nonce: rng.Uint32(), SessionID: uint32(worker) | 1<<24, VersionMask: rng.Uint32() & 0x1fffe000,
		BitsReached: 0x1a000000 | rng.Uint32()&0xffffff,
	}
}

func publish(t testing.TB, b bus.Bus, values [][]byte) {
	t.Helper()
	p, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, v := range values {
		p.Publish("BtcShare", nil, v, nil)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// readDir returns every share in the directory's day files, per file name.
func readDir(t testing.TB, dir string) map[string][]btcpool.Share {
	t.Helper()
	out := map[string][]btcpool.Share{}
	names, _ := filepath.Glob(filepath.Join(dir, "sharelogBTC-*"))
	for _, p := range names {
		r, err := logfile.OpenReader(p, logfile.ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10_000_000; i++ {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			var s btcpool.Share
			if err := btcpool.DecodeShareProto(rec, &s); err != nil {
				t.Fatalf("%s: record %d: %v", p, i, err)
			}
			out[filepath.Base(p)] = append(out[filepath.Base(p)], s)
		}
		r.Close()
	}
	return out
}

// durableBus wraps a real bus; at every Commit it reads the files on disk
// and checks that each committed valid share is there.
type durableBus struct {
	bus.Bus
	t       *testing.T
	dir     string
	mu      sync.Mutex
	byOff   map[int64]btcpool.Share // offset -> the valid share published there
	commits int
}

type durableConsumer struct {
	bus.Consumer
	b *durableBus
}

func (d *durableBus) NewConsumer(topic string, s bus.Start) (bus.Consumer, error) {
	c, err := d.Bus.NewConsumer(topic, s)
	return &durableConsumer{c, d}, err
}

func (c *durableConsumer) Commit(ctx context.Context, msgs ...bus.Message) error {
	d := c.b
	d.mu.Lock()
	defer d.mu.Unlock()
	d.commits++
	var upTo int64 = -1
	for _, m := range msgs {
		upTo = max(upTo, m.Offset)
	}
	onDisk := map[btcpool.Share]int{}
	for _, shares := range readDir(d.t, d.dir) {
		for _, s := range shares {
			onDisk[s]++
		}
	}
	for off, s := range d.byOff {
		if off <= upTo && onDisk[s] == 0 {
			d.t.Errorf("offset %d committed before its share reached the disk", off)
		}
	}
	return c.Consumer.Commit(ctx, msgs...)
}

func TestLoggerWritesValidSharesAndCommitsAfterFlush(t *testing.T) {
	for _, comp := range []logfile.Compression{logfile.Gzip, logfile.Zstd} {
		t.Run(comp.String(), func(t *testing.T) {
			dir := t.TempDir()
			mb := mem.New(mem.Options{MaxPoll: 64})
			defer mb.Close()
			db := &durableBus{Bus: mb, t: t, dir: dir, byOff: map[int64]btcpool.Share{}}
			rng := rand.New(rand.NewSource(1))

			var values [][]byte
			want := map[string][]btcpool.Share{}
			invalid := 0
			for i := 0; i < 600; i++ {
				ts := int64(day0 + i*400) // about 3 days
				s := realisticShare(rng, i, ts)
				var v []byte
				switch i % 10 {
				case 3:
					v = []byte("not a share") // undecodable
					invalid++
				case 5:
					s.UserID = 0 // decodes, not Valid
					v = btcpool.AppendShareMessage(nil, &s)
					invalid++
				case 7:
					v = btcpool.AppendShareV1(nil, &s) // old producer: up-converted
					var up btcpool.Share
					if err := btcpool.DecodeShareMessage(v, &up); err != nil {
						t.Fatal(err)
					}
					s = up
					fallthrough
				default:
					if v == nil {
						v = btcpool.AppendShareMessage(nil, &s)
					}
					name := logfile.FileName("BTC", s.Timestamp, comp)
					want[name] = append(want[name], s)
					db.byOff[int64(i)] = s
				}
				values = append(values, v)
			}

			l, err := New(db, Options{Dir: dir, Compression: comp, FlushInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			// Publish in three bursts so several flushes and commits happen.
			for k := 0; k < 3; k++ {
				publish(t, mb, values[k*200:(k+1)*200])
				waitFor(t, func() bool { return l.Stats().Committed == int64((k+1)*200) })
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			st := l.Stats()
			if st.Messages != 600 || st.Invalid != int64(invalid) || st.Written != int64(600-invalid) || st.Flushes < 3 {
				t.Fatalf("stats %+v", st)
			}
			got := readDir(t, dir)
			if len(got) != len(want) {
				t.Fatalf("%d files, want %d", len(got), len(want))
			}
			for name, shares := range want {
				if fmt.Sprint(got[name]) != fmt.Sprint(shares) {
					t.Fatalf("%s: %d shares differ from the %d published", name, len(got[name]), len(shares))
				}
			}
			if db.commits < 3 {
				t.Fatalf("%d commits", db.commits)
			}
		})
	}
}

// TestLoggerRestartResumes stops the logger, publishes more, and starts a
// new one in the same group: every share is in the files exactly once.
func TestLoggerRestartResumes(t *testing.T) {
	dir := t.TempDir()
	mb := mem.New(mem.Options{})
	defer mb.Close()
	rng := rand.New(rand.NewSource(2))
	var all []btcpool.Share
	batch := func(n int) [][]byte {
		var vs [][]byte
		for i := 0; i < n; i++ {
			s := realisticShare(rng, len(all), int64(day0+len(all)))
			all = append(all, s)
			vs = append(vs, btcpool.AppendShareMessage(nil, &s))
		}
		return vs
	}
	publish(t, mb, batch(100))
	for round := 0; round < 2; round++ {
		l, err := New(mb, Options{Dir: dir, FlushInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		waitFor(t, func() bool { return l.Stats().Committed == 100 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		publish(t, mb, batch(100)) // while no logger runs
	}
	l, _ := New(mb, Options{Dir: dir, FlushInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	waitFor(t, func() bool { return l.Stats().Committed == 100 })
	cancel()
	<-done
	got := readDir(t, dir)["sharelogBTC-2020-09-14.bin"]
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("%d shares on disk, want the %d published, once each, in order", len(got), len(all))
	}
}

func TestOptionsValidate(t *testing.T) {
	o := Options{FlushInterval: time.Nanosecond, MaxPending: -1, StartTail: -1, Chain: "a b"}
	o.SetDefaults()
	err := o.Validate()
	for _, want := range []string{"Dir", "Chain", "FlushInterval", "MaxPending", "StartTail"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, missing %s", err, want)
		}
	}
	good := Options{Dir: t.TempDir()}
	good.SetDefaults()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if good.Group != "sharelog_write_btc" || good.Topic != "BtcShare" || good.FlushInterval != 2*time.Second {
		t.Fatalf("defaults %+v", good)
	}
}

func TestRunFailsOnUnwritableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	mb := mem.New(mem.Options{})
	defer mb.Close()
	l, err := New(mb, Options{Dir: filepath.Join(f, "sub")})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(context.Background()); err == nil {
		t.Fatal("Run with a directory under a file succeeded")
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkLogger measures shares/s from the bus into fsynced files and the
// bytes each share takes on disk, with realistic share records.
func BenchmarkLogger(b *testing.B) {
	for _, c := range []struct {
		name  string
		comp  logfile.Compression
		level int
	}{{"gzip-default", logfile.Gzip, 0}, {"gzip-fastest", logfile.Gzip, 1}, {"zstd-fastest", logfile.Zstd, 0}} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewSource(3))
			values := make([][]byte, b.N)
			var proto int
			for i := range values {
				s := realisticShare(rng, i, int64(day0+i/100)) // 100 shares/s of share time
				values[i] = btcpool.AppendShareMessage(nil, &s)
				proto += len(values[i]) - 4
			}
			dir := b.TempDir()
			mb := mem.New(mem.Options{Retention: mem.Retention{MaxRecords: b.N + 1, MaxBytes: 1 << 40}})
			defer mb.Close()
			publish(b, mb, values)
			l, err := New(mb, Options{Dir: dir, Compression: c.comp, GzipLevel: c.level, FlushInterval: 2 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			deadline := time.Now().Add(10 * time.Minute)
			for l.Stats().Messages < int64(b.N) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			var size int64
			names, _ := filepath.Glob(filepath.Join(dir, "sharelogBTC-*")) // day files, not the checkpoint
			sort.Strings(names)
			for _, n := range names {
				fi, _ := os.Stat(n)
				size += fi.Size()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "shares/s")
			b.ReportMetric(float64(size)/float64(b.N), "disk-B/share")
			b.ReportMetric(float64(proto)/float64(b.N), "proto-B/share")
			if l.Stats().Written != int64(b.N) {
				b.Fatal(errors.New("not every share written"))
			}
		})
	}
}

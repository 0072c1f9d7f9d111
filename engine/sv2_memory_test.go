package engine

import (
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// sv2MemoryChildEnv makes the test binary the client side of
// BenchmarkSV2SessionMemory: "<addr> <authority> <sessions> <standard|extended>".
// The clients live in a child process (as BenchmarkSessionMemory's) so that
// only the server is measured and each process stays under 20,000
// descriptors. The hook is an init function so that this file needs no
// line in TestMain.
const sv2MemoryChildEnv = "HASHPOOL_SV2_MEMORY_CHILD"

func init() {
	if v := os.Getenv(sv2MemoryChildEnv); v != "" {
		os.Exit(sv2MemoryChild(v))
	}
}

// sv2MemoryChild opens the connections, each with one channel, prints
// "ready", waits for one job on every connection, prints "got" and waits
// to be killed.
func sv2MemoryChild(arg string) int {
	f := strings.Fields(arg)
	if len(f) != 4 {
		return 2
	}
	authority, err := noise.ParseAuthorityKey(f[1])
	n, nerr := strconv.Atoi(f[2])
	if err != nil || nerr != nil || n < 1 || n > 15000 {
		fmt.Fprintln(os.Stderr, "bad arguments:", arg, err, nerr)
		return 2
	}
	extended := f[3] == "extended"
	mt := maxTarget()
	conns := make([]*noise.Conn, 0, n)
	for i := 0; i < n; i++ {
		nc, err := net.DialTimeout("tcp", f[0], 10*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		c, err := noise.Client(nc, authority, noise.ConnOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "handshake:", err)
			return 1
		}
		flags := sv2FlagRequiresStandardJobs
		open := sv2.AppendOpenStandardMiningChannel(nil, &sv2.OpenStandardMiningChannel{RequestID: 1,
			UserIdentity: []byte("bench.w"), MaxTarget: mt})
		want := sv2.MsgOpenStandardMiningChannelSuccess
		if extended {
			flags = 0
			open = sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 1,
				UserIdentity: []byte("bench.w"), MaxTarget: mt})
			want = sv2.MsgOpenExtendedMiningChannelSuccess
		}
		setup := sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Flags: flags,
			EndpointHost: []byte("127.0.0.1"), Vendor: []byte("bench")})
		if c.WriteFrame(setup) != nil || c.WriteFrame(open) != nil {
			fmt.Fprintln(os.Stderr, "write failed")
			return 1
		}
		if err := sv2ChildAwait(c, want); err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			return 1
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	for _, c := range conns {
		if err := sv2ChildAwait(c, sv2.MsgSetNewPrevHash); err != nil {
			fmt.Fprintln(os.Stderr, "job:", err)
			return 1
		}
	}
	fmt.Println("got")
	select {} // the parent kills us
}

// sv2ChildAwait reads frames until one of type typ (60 s at most).
func sv2ChildAwait(c *noise.Conn, typ uint8) error {
	c.NetConn().SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		h, _, err := c.ReadFrame()
		if err != nil {
			return err
		}
		if h.MsgType == typ {
			return nil
		}
		if h.MsgType == sv2.MsgOpenMiningChannelError || h.MsgType == sv2.MsgSetupConnectionError {
			return fmt.Errorf("refused: %s", sv2.MsgName(h.MsgType))
		}
	}
}

// BenchmarkSV2SessionMemory is BenchmarkSessionMemory for Stratum V2:
// 15,000 connections (clients in a child process), each through the Noise
// handshake and SetupConnection with one authorized channel, standard or
// extended, and one job received. It reports the server process's resident
// memory and Go heap per connection (after a GC that returns freed memory
// to the OS). Run it with -benchtime=1x.
func BenchmarkSV2SessionMemory(b *testing.B) {
	n := 15000
	if v, err := strconv.Atoi(os.Getenv("HASHPOOL_SV2_MEMORY_SESSIONS")); err == nil && v > 0 && v <= 15000 {
		n = v
	}
	for _, k := range sv2Kinds() {
		b.Run(k.name, func(b *testing.B) {
			keys := newSV2Keys(b)
			o := testOptions(b)
			o.DefaultDifficulty = 16384
			o.MinDifficulty = 64
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			o.SV2Listen = l.Addr().String()
			l.Close()
			o.SV2Responder = keys.responder(b, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			o.AuthorizeTimeout = time.Minute // 15,000 handshakes on a loaded box take a while
			// As in BenchmarkSessionMemory, the bus keeps one common event.
			bs := mem.New(mem.Options{Topics: map[string]mem.Retention{o.Topics.CommonEvents: {MaxRecords: 1}}})
			prod, err := bs.NewProducer(bus.ProducerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer bs.Close()
			defer prod.Close()
			p := startPoolOn(b, o, bs, prod)
			defer p.stop()
			// One handshake first: secp256k1's base-point tables (about 1 MB)
			// are built on first use, not per connection.
			sv2SessionPair(b, o.SV2Responder, keys.pub)
			rssBefore, heapBefore := settledMemory(b)
			cmd, _, lines := startChild(b, fmt.Sprintf("%s=%s %s %d %s", sv2MemoryChildEnv, p.srv.SV2Addr(),
				noise.FormatAuthorityKey(keys.pub), n, k.name))
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			waitChild(b, lines, "ready")
			if err := p.srv.AddJob(testJobParams(1000, false)); err != nil {
				b.Fatal(err)
			}
			waitChild(b, lines, "got")
			if got := p.srv.metrics.SV2Channels.Load(); got != int64(n) {
				b.Fatalf("%d channels open, want %d", got, n)
			}
			var rss, heap uint64
			for b.Loop() {
				rss, heap = settledMemory(b)
			}
			// HASHPOOL_HEAPPROFILE=<file> writes the heap profile taken with
			// the connections open (-test.memprofilerate=256 for a useful one).
			if f := os.Getenv("HASHPOOL_HEAPPROFILE"); f != "" {
				fh, err := os.Create(f + "." + k.name)
				if err != nil {
					b.Fatal(err)
				}
				err = pprof.Lookup("heap").WriteTo(fh, 0)
				if cerr := fh.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(int64(rss)-int64(rssBefore))/float64(n), "rss-B/session")
			b.ReportMetric(float64(int64(heap)-int64(heapBefore))/float64(n), "heap-B/session")
		})
	}
}

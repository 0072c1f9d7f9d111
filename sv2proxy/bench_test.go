package sv2proxy

import (
	"bufio"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/sv2pool"
)

// BenchmarkTranslateShare is the translator's own work per share, without
// sockets or Noise: a mining.submit line parsed and turned into
// SubmitSharesExtended, the pool's SubmitShares.Success applied and the
// miner's answer line queued.
func BenchmarkTranslateShare(b *testing.B) {
	r := newFuzzRig(b, SharedChannel)
	r.feed([]byte(`{"id":1,"method":"mining.subscribe","params":[]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["farm.w1","x"]}`+"\n"), 0)
	line := []byte(`{"id":3,"method":"mining.submit","params":["farm.w1","1","00000001","00000005","deadbeef","00002000"]}` + "\n")
	r.m.mask = bip320Mask
	succ := sv2.AppendSubmitSharesSuccess(nil, &sv2.SubmitSharesSuccess{ChannelID: 1, NewSubmitsAcceptedCount: 1, NewSharesSum: 1})[sv2.HeaderLen:]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.m.consume(line); err != nil {
			b.Fatal(err)
		}
		<-r.up.out
		r.t.mu.Lock()
		succ[4] = byte(i + 1) // LastSequenceNumber, little endian
		succ[5], succ[6], succ[7] = byte((i+1)>>8), byte((i+1)>>16), byte((i+1)>>24)
		r.t.handleUpstream(r.up, sv2.MsgSubmitSharesSuccess, succ)
		r.t.mu.Unlock()
		<-r.m.out
	}
	if r.t.stats.Accepted.Load() != int64(b.N) {
		b.Fatalf("%d accepted of %d", r.t.stats.Accepted.Load(), b.N)
	}
}

// benchJob is a main-net-shaped job: a 12-step merkle path and a 150-byte
// coinbase with two outputs (what a template with ~3,000 transactions needs).
func benchJob(i int) sv2pool.JobTemplate {
	j := sv2pool.JobTemplate{Version: 0x20000000, NBits: 0x1d00ffff, NTime: uint32(time.Now().Unix()),
		Coinbase1: make([]byte, 60), Coinbase2: make([]byte, 90)}
	j.PrevHash[0], j.PrevHash[1] = byte(i/4), byte(i/4>>8) // a new block every 4 jobs
	for k := 0; k < 12; k++ {
		var h [32]byte
		h[0], h[1] = byte(k), byte(i)
		j.MerkleBranch = append(j.MerkleBranch, h)
	}
	return j
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWire runs sv2pool, the translator and SV1 miners on loopback and
// reports bytes per share and per job on both wires (TCP payload: SV2 is
// Noise ciphertext) and the process's CPU per share (pool, translator and
// client together: the box is shared, so compare runs, not absolutes).
func BenchmarkWire(b *testing.B) {
	for _, mode := range []Mode{ChannelPerMiner, SharedChannel} {
		b.Run(mode.String(), func(b *testing.B) { benchWire(b, mode, 10) })
	}
}

func benchWire(b *testing.B, mode Mode, miners int) {
	// Every hash meets the pool's target (difficulty 2^-64 is clamped to the
	// all-ones target): shares are accepted, and none is a block on nbits
	// 0x1d00ffff but once in 2^32.
	p := startPoolDiff(b, time.Time{}, time.Time{}, 0x1p-64)
	p.srv.SetJob(benchJob(0))
	tr, addr := startTranslator(b, Options{Mode: mode, Upstreams: []Upstream{{Addr: p.addr, Authority: p.authority, User: "farm"}}})
	ms := make([]*sv1Miner, miners)
	for i := range ms {
		ms[i] = dialMiner(b, addr, "farm.w"+strconv.Itoa(i), false)
		ms[i].waitClean(0)
	}
	st := tr.Stats()

	// Jobs.
	const jobs = 20
	upIn, downOut := st.UpWireIn.Load(), st.DownWireOut.Load()
	for i := 1; i <= jobs; i++ {
		p.srv.SetJob(benchJob(i))
	}
	for _, m := range ms {
		for m.job == nil || m.job.branch[0][1] != jobs {
			m.next()
		}
	}
	sv2Job := float64(st.UpWireIn.Load()-upIn) / jobs
	sv1Job := float64(st.DownWireOut.Load()-downOut) / jobs

	// Shares: every miner pipelines batches of 8 submits, at most 16 unanswered
	// (10 miners × 16 stays under sv2pool's 256-frame session queue, which
	// closes a session that overflows it).
	upOut, upIn := st.UpWireOut.Load(), st.UpWireIn.Load()
	downIn, downOut := st.DownWireIn.Load(), st.DownWireOut.Load()
	cpu0 := cpuTime()
	b.ResetTimer()
	per := b.N/miners + 1
	done := make(chan error, miners)
	for _, m := range ms {
		go func(m *sv1Miner) {
			w := bufio.NewWriter(m.c)
			answers := 0
			for i := 0; i < per; i++ {
				fmt.Fprintf(w, `{"id":%d,"method":"mining.submit","params":["%s","%s","%08x","%08x","%08x"]}`+"\n",
					100+i, m.user, m.job.id, i, m.job.ntime, i)
				if i%8 == 7 || i == per-1 {
					w.Flush()
					for answers < i+1-8 || (i == per-1 && answers < per) {
						v, ok := <-m.lines
						if !ok {
							done <- fmt.Errorf("closed")
							return
						}
						if v["method"] == nil {
							answers++
						}
					}
				}
			}
			done <- nil
		}(m)
	}
	for range ms {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(per * miners)
	b.ReportMetric(sv2Job, "sv2-B/job")
	b.ReportMetric(sv1Job, "sv1-B/job")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/n, "cpu-ns/share")
	b.ReportMetric(float64(st.UpWireOut.Load()-upOut+st.UpWireIn.Load()-upIn)/n, "sv2-B/share")
	b.ReportMetric(float64(st.DownWireIn.Load()-downIn+st.DownWireOut.Load()-downOut)/n, "sv1-B/share")
	if c := st.Connects.Load(); c != 1 {
		b.Fatalf("%d upstream sessions, want 1", c)
	}
	if a := st.Accepted.Load(); a < int64(n) {
		b.Fatalf("%d of %v shares accepted (stale %d dup %d low %d, rejected %d)", a, n, st.RejectedStale.Load(), st.RejectedDup.Load(), st.RejectedLow.Load(), st.Rejected.Load())
	}
}

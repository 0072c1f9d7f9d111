package loadgen

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/sha"
)

// The notify of spec §3.6/§3.7's example job: prevHashBeStr is the display
// hash 0000…89c2f63d with each 4-byte word of its internal bytes reversed.
const goldenNotify = `{"id":null,"method":"mining.notify","params":["7",` +
	`"89c2f63d1a554bf6e56cd9aea7a44d19148de9c50328e9fe0000000000000000",` +
	`"01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20","ffffffff01",` +
	`["0102030000000000000000000000000000000000000000000000000000000000","0405060000000000000000000000000000000000000000000000000000000000"],` +
	`"20000000","1d00ffff","5f5e1000",true]}`

func parseNotifyLine(t testing.TB, line string) (*Work, error) {
	var m stratum.Message
	if err := stratum.Parse([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	return ParseNotify(&m)
}

func TestParseNotifyGolden(t *testing.T) {
	w, err := parseNotifyLine(t, goldenNotify)
	if err != nil {
		t.Fatal(err)
	}
	wantPrev, err := sha.ParseDisplayHex("00000000000000000328e9fe148de9c5a7a44d19e56cd9ae1a554bf689c2f63d")
	if err != nil {
		t.Fatal(err)
	}
	if w.Job.PrevHash() != wantPrev {
		t.Errorf("prevhash %x, want %x", w.Job.PrevHash(), wantPrev)
	}
	if w.JobID != "7" || w.ShortID != 7 || w.Time != 0x5f5e1000 || !w.Clean || w.Job.Version() != 0x20000000 || w.Job.Bits() != 0x1d00ffff {
		t.Errorf("work %+v", w)
	}
	if br := w.Job.Branch(); len(br) != 2 || br[0][0] != 1 || br[1][2] != 6 {
		t.Errorf("branch %x (memory order expected)", br)
	}
	// The prevhash written back with the engine's encoder is the same text.
	prev := w.Job.PrevHash()
	if got := string(stratum.AppendPrevHashBE(nil, &prev)); got != "89c2f63d1a554bf6e56cd9aea7a44d19148de9c50328e9fe0000000000000000" {
		t.Errorf("round trip %s", got)
	}
}

func TestParseNotifyRejects(t *testing.T) {
	for name, repl := range map[string][2]string{
		"short prevhash":  {`"89c2f63d1a554bf6`, `"89c2f63d`},
		"bad hex":         {`"ffffffff01"`, `"fffffffg01"`},
		"branch not hex":  {`"0405060000`, `"zz05060000`},
		"branch not list": {`["0102`, `"x",["0102`},
		"version length":  {`"20000000"`, `"2000000"`},
		"clean not bool":  {`,true]}`, `,1]}`},
		"few params":      {`"1d00ffff","5f5e1000",true]`, `"1d00ffff"]`},
	} {
		line := strings.Replace(goldenNotify, repl[0], repl[1], 1)
		if line == goldenNotify {
			t.Fatalf("%s: replacement did not apply", name)
		}
		if _, err := parseNotifyLine(t, line); err == nil {
			t.Errorf("%s: accepted %s", name, line)
		}
	}
}

// refShareHash is a from-scratch share hash with crypto/sha256 (the oracle).
func refShareHash(cb1, en1, en2, cb2 []byte, branch [][32]byte, version uint32, prev [32]byte, bits, ntime, nonce, vbits uint32) [32]byte {
	d := func(b []byte) [32]byte { h := sha256.Sum256(b); return sha256.Sum256(h[:]) }
	cb := slices.Concat(cb1, en1, en2, cb2)
	root := d(cb)
	for _, s := range branch {
		root = d(slices.Concat(root[:], s[:]))
	}
	hdr := binary.LittleEndian.AppendUint32(nil, version^vbits)
	hdr = append(hdr, prev[:]...)
	hdr = append(hdr, root[:]...)
	hdr = binary.LittleEndian.AppendUint32(hdr, ntime)
	hdr = binary.LittleEndian.AppendUint32(hdr, bits)
	hdr = binary.LittleEndian.AppendUint32(hdr, nonce)
	return d(hdr)
}

// meetsBig checks hash ≤ floor(diff1 / diff) with math/big.
func meetsBig(h [32]byte, diff float64) bool {
	rev := slices.Clone(h[:])
	slices.Reverse(rev)
	hv := new(big.Int).SetBytes(rev)
	diff1 := new(big.Int).Lsh(big.NewInt(0xffff), 208)
	num := new(big.Float).SetInt(diff1)
	tf := new(big.Float).Quo(num, big.NewFloat(diff))
	target, _ := tf.Int(nil)
	return hv.Cmp(target) <= 0
}

func TestGrindFindsTheFirstValidNonce(t *testing.T) {
	w, err := parseNotifyLine(t, goldenNotify)
	if err != nil {
		t.Fatal(err)
	}
	en1 := []byte{0x01, 0x00, 0x00, 0x2a}
	for _, tc := range []struct {
		diff  float64
		vbits uint32
		start uint32
	}{
		{math.Ldexp(1, -12), 0, 0},
		{math.Ldexp(1, -10), 0x00a00000, 1000},
		{0.001, 0x1fffe000, math.MaxUint32 - 5}, // nonce wraps
	} {
		en2 := appendEn2(nil, 0x1234, 8)
		target := sha.DiffToTarget(tc.diff)
		var g grinder
		nonce, tried, ok := g.grind(context.Background(), w, en1, en2, w.Time, tc.vbits, &target, tc.start, 1<<26)
		if !ok {
			t.Fatalf("diff %g: no nonce in %d hashes", tc.diff, tried)
		}
		if nonce != tc.start+uint32(tried-1) {
			t.Errorf("nonce %d after %d tries from %d", nonce, tried, tc.start)
		}
		ref := func(n uint32) [32]byte {
			return refShareHash(w.Job.Coinbase1(), en1, en2, w.Job.Coinbase2(), w.Job.Branch(), w.Job.Version(), w.Job.PrevHash(), w.Job.Bits(), w.Time, n, tc.vbits)
		}
		if !meetsBig(ref(nonce), tc.diff) {
			t.Errorf("diff %g: nonce %d does not meet the target by the reference", tc.diff, nonce)
		}
		for k := uint64(1); k < tried && k <= 64; k++ {
			if n := nonce - uint32(k); meetsBig(ref(n), tc.diff) {
				t.Errorf("diff %g: earlier nonce %d already met the target", tc.diff, n)
			}
		}
	}
}

func TestGrindGivesUp(t *testing.T) {
	w, _ := parseNotifyLine(t, goldenNotify)
	target := sha.DiffToTarget(1 << 30)
	var g grinder
	if _, tried, ok := g.grind(context.Background(), w, []byte{0, 0, 0, 1}, make([]byte, 8), w.Time, 0, &target, 0, 1000); ok || tried != 1000 {
		t.Errorf("ok %v after %d hashes, want give-up after 1000", ok, tried)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, tried, ok := g.grind(ctx, w, []byte{0, 0, 0, 1}, make([]byte, 8), w.Time, 0, &target, 0, 1<<40); ok || tried != 1<<16 {
		t.Errorf("cancelled: ok %v after %d hashes, want a stop at the first 64Ki check", ok, tried)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	var exact []uint64
	for i := range 10000 {
		v := uint64(i*i%7919) * 37 // spread over 0..~300 ms
		h.Record(time.Duration(v) * time.Microsecond)
		exact = append(exact, v)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := float64(exact[int(q*float64(len(exact)))])
		got := float64(h.Quantile(q))
		if math.Abs(got-want) > want*0.04+1 {
			t.Errorf("q%.2f = %g, exact %g", q, got, want)
		}
	}
	if h.Summary().MaxUs != exact[len(exact)-1] || h.Count() != 10000 {
		t.Errorf("max %d count %d", h.Summary().MaxUs, h.Count())
	}
	// Every bucket index maps back to a range containing its values.
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 100, 1 << 20, 1<<40 + 12345, math.MaxUint64} {
		i := histIndex(v)
		if i < 0 || i >= histBuckets || v < histLow(i) || v-histLow(i) >= histWidth(i) {
			t.Errorf("value %d: bucket %d [%d, +%d)", v, i, histLow(i), histWidth(i))
		}
	}
	// Merging two halves gives the whole.
	var a, b, m Histogram
	for i, v := range exact {
		if i%2 == 0 {
			a.Record(time.Duration(v) * time.Microsecond)
		} else {
			b.Record(time.Duration(v) * time.Microsecond)
		}
	}
	m.addSummary(a.Summary())
	m.addSummary(b.Summary())
	if m.Summary().P99us != h.Summary().P99us || m.Count() != h.Count() || m.Summary().MaxUs != h.Summary().MaxUs {
		t.Errorf("merged %+v, whole %+v", m.Summary(), h.Summary())
	}
}

func TestParseSourceIPs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want int
		ok   bool
	}{
		{nil, 0, true},
		{[]string{"127.0.0.2"}, 1, true},
		{[]string{"127.0.0.2-127.0.0.20"}, 19, true},
		{[]string{"127.0.0.2-127.0.0.3,127.0.1.9"}, 3, true},
		{[]string{"127.0.0.5-127.0.0.2"}, 0, false},
		{[]string{"127.0.0.2-127.0.1.2"}, 0, false},
		{[]string{"10.0.0.1"}, 0, false},
		{[]string{"::1"}, 0, false},
		{[]string{"127.0.0.0-127.0.0.255", "127.0.1.0-127.0.1.255", "127.0.2.0-127.0.2.255", "127.0.3.0-127.0.3.255", "127.0.4.0"}, 0, false},
	} {
		ips, err := ParseSourceIPs(tc.in)
		if (err == nil) != tc.ok || len(ips) != tc.want {
			t.Errorf("%v: %d addresses, err %v", tc.in, len(ips), err)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:3333", false, true},
		{"127.9.8.7:1", false, true},
		{"localhost:3333", false, true},
		{"10.0.0.1:3333", false, false},
		{"10.0.0.1:3333", true, true},
		{"[::1]:3333", false, false},
		{"pool.example:3333", false, false},
		{"127.0.0.1", false, false},
	} {
		_, err := CheckTarget(tc.addr, tc.remote)
		if (err == nil) != tc.ok {
			t.Errorf("%s remote=%v: err %v", tc.addr, tc.remote, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	s := DefaultScenario()
	s.URL, s.Rate, s.Duration, s.User, s.Agents, s.MinersPerAgent = "8.8.8.8:3333", -1, 0, "a.b", 1, 0
	err := s.Validate()
	for _, want := range []string{"outside 127.0.0.0/8", "rate", "duration", "user", "miners per agent"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if s := DefaultScenario(); s.Validate() != nil {
		t.Errorf("default scenario: %v", s.Validate())
	}
	s = DefaultScenario()
	s.LowDifficulty, s.SimulatorMode, s.SubmitDelay = true, true, s.Duration
	err = s.Validate()
	for _, want := range []string{"low difficulty and simulator mode", "submit delay"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestShardSplitsEverything(t *testing.T) {
	s := DefaultScenario()
	s.Miners, s.Agents, s.BadClients = 40001, 5, 3
	if s.procs() != 3 {
		t.Errorf("procs %d for %d connections", s.procs(), s.Connections())
	}
	var m, a, b int
	for i := range 3 {
		c := s.shard(i, 3)
		if c.Connections() > MaxConnsPerProc || c.Validate() != nil {
			t.Errorf("shard %d: %d connections, %v", i, c.Connections(), c.Validate())
		}
		m, a, b = m+c.Miners, a+c.Agents, b+c.BadClients
	}
	if m != 40001 || a != 5 || b != 3 {
		t.Errorf("shards sum to %d/%d/%d", m, a, b)
	}
}

func TestMergeReports(t *testing.T) {
	mk := func(acc int64, first, last int64, lat ...time.Duration) *Report {
		r := newRecorder()
		r.accepted.Add(acc)
		r.submitted.Add(acc + 1)
		r.reject(23)
		r.sessionsEver.Add(2)
		r.firstUp.Store(first)
		r.lastUp.Store(last)
		for _, d := range lat {
			r.submitLat.Record(d)
		}
		r.jobReceived("job1", time.Unix(0, first))
		r.txBytes.Add(100)
		r.txSegs.Add(2)
		return r.build(&Scenario{Miners: 2}, "t", time.Second)
	}
	m := Merge([]*Report{mk(5, 1e9, 2e9, time.Millisecond), mk(7, 1.5e9, 3e9, 3*time.Millisecond)})
	if m.Procs != 2 || m.Shares.Accepted != 12 || m.Shares.Submitted != 14 || m.Shares.Rejected["23 Low difficulty"] != 2 {
		t.Errorf("shares %+v", m.Shares)
	}
	if m.Shares.Latency.Count != 2 || m.Shares.Latency.MaxUs != 3000 {
		t.Errorf("latency %+v", m.Shares.Latency)
	}
	if m.Sessions.Ever != 4 || m.Sessions.RampSeconds != 2 || m.Sessions.Wanted != 4 {
		t.Errorf("sessions %+v", m.Sessions)
	}
	if m.Fanout.Jobs != 1 || m.Fanout.MaxReceipts != 2 || m.Fanout.FullMaxUs != 500000 {
		t.Errorf("fanout %+v", m.Fanout)
	}
	if m.Net.TxWireBytes != 200+4*HeaderBytesPerSegment || m.Net.TxWireKbps != float64(m.Net.TxWireBytes)*8/1000 {
		t.Errorf("net %+v", m.Net)
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKB <= 0 || s.CPUTime < 0 {
		t.Errorf("sample %+v", s)
	}
	if _, err := ReadProc(1 << 30); err == nil {
		t.Error("no error for a pid that does not exist")
	}
}

func FuzzParseNotify(f *testing.F) {
	f.Add([]byte(goldenNotify))
	f.Add([]byte(`{"id":null,"method":"mining.notify","params":["1","","","",[],"","","",false]}`))
	f.Add([]byte(`{"method":"mining.notify","params":[1,2,3]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var m stratum.Message
		if stratum.Parse(line, &m) != nil {
			return
		}
		w, err := ParseNotify(&m)
		if err != nil {
			return
		}
		if w.Job == nil || len(w.Job.Branch()) > maxBranch || w.JobID == "" {
			t.Fatalf("bad work from %q", line)
		}
		prev := w.Job.PrevHash()
		if got := string(stratum.AppendPrevHashBE(nil, &prev)); !strings.EqualFold(got, string(mustStr(m.Param(1)))) {
			t.Fatalf("prevhash round trip %s vs %s", got, mustStr(m.Param(1)))
		}
		_ = hex.EncodeToString(w.Job.Coinbase1())
	})
}

func mustStr(v stratum.Value) []byte { b, _ := v.Str(); return b }

func BenchmarkGrind(b *testing.B) {
	w, _ := parseNotifyLine(b, goldenNotify)
	target := sha.DiffToTarget(1 << 30) // never met: every iteration is a full hash
	var g grinder
	en1, en2 := []byte{0, 0, 0, 1}, make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	g.grind(context.Background(), w, en1, en2, w.Time, 0, &target, 0, uint64(b.N))
}

func BenchmarkAppendSubmit(b *testing.B) {
	buf := make([]byte, 0, 256)
	en2 := make([]byte, 8)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = appendSubmit(buf[:0], int64(i), "user.m000001", "17", en2, 0x5f5e1000, uint32(i), 0x2000, true)
	}
	b.SetBytes(int64(len(buf)))
}

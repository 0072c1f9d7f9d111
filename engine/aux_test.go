package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// auxOffline is an offline server whose job has aux chains and whose bus is reachable.
func auxOffline(tb testing.TB, chains []AuxChain) (*offline, bus.Bus) {
	tb.Helper()
	opts := testOptions(tb)
	opts.Topics = opts.Topics.WithAux().WithRSK()
	b := mem.New(mem.Options{})
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	users, err := OpenEmbeddedUsers(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := New(opts, Deps{Producer: prod, Users: users})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.out.close(); prod.Close(); b.Close() })
	job := testJobParams(100, false)
	job.Aux = chains
	if _, _, err := srv.repo.Add(job, time.Now().Unix()); err != nil {
		tb.Fatal(err)
	}
	return &offline{srv: srv, lp: newLoop(srv, 0), job: job}, b
}

var allOnes = sha.Target{math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64}

// benchChains are n aux chains with targets a share at the test difficulty (2^-32) almost
// never meets: the cost measured is the per-share check, not publishing.
func benchChains(n int) []AuxChain {
	out := make([]AuxChain, n)
	for i := range out {
		out[i] = AuxChain{Name: fmt.Sprintf("aux%d", i), ChainID: int32(i + 1), Hash: strings.Repeat("ab", 32),
			Target: sha.DiffToTarget(float64(int(1) << i)), Slot: uint32(i)}
	}
	return out
}

// TestAuxSolvedSharePublished: a share meeting two aux targets publishes one AuxSolvedShare
// per chain on the AuxSolvedShare topic whatever its own status (here a stale share), with
// what blkmaker needs to build each chain's auxpow.
func TestAuxSolvedSharePublished(t *testing.T) {
	branch := [][32]byte{{9, 9}}
	chains := []AuxChain{
		{Name: "nmc", ChainID: 1, Hash: strings.Repeat("11", 32), Target: allOnes, Slot: 0, Branch: branch, RPCAddr: "http://127.0.0.1:1", RPCUserPass: "u:p"},
		{Name: "never", ChainID: 2, Hash: strings.Repeat("22", 32), Target: sha.Target{1}, Slot: 1},
		{Name: "doge", ChainID: 98, Hash: strings.Repeat("98", 32), Target: allOnes, Slot: 2, Branch: branch},
	}
	o, b := auxOffline(t, chains)
	cons, err := b.NewConsumer(bus.DefaultAuxSolvedShare, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	s := authorizedSession(t, o)
	o.srv.repo.MarkStale(o.job.Height) // the share is stale: aux targets are checked anyway
	line := `{"id":9,"method":"mining.submit","params":["alice.rig1","0","0000000000000001","` + fmt.Sprintf("%08x", o.job.Time) + `","00000000"]}` + "\n"
	out := o.run(s, line)
	if !strings.Contains(out, `"error":[21,`) {
		t.Fatalf("stale share answered %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []btcpool.AuxSolvedShare
	for len(got) < 2 {
		msgs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("%d AuxSolvedShares: %v", len(got), err)
		}
		for _, m := range msgs {
			var a btcpool.AuxSolvedShare
			if err := btcpool.DecodeAuxSolvedShare(m.Value, &a); err != nil {
				t.Fatalf("AuxSolvedShare: %v\n%s", err, m.Value)
			}
			got = append(got, a)
		}
	}
	if got[0].ChainName != "nmc" || got[1].ChainName != "doge" || got[0].AuxBlockHash != chains[0].Hash ||
		got[0].RPCAddr != "http://127.0.0.1:1" || got[0].ChainID != 1 || got[1].AuxIndex != 2 ||
		len(got[0].AuxBranch) != 1 || got[0].AuxBranch[0] != branch[0] {
		t.Fatalf("aux solved shares %+v", got)
	}
	// The header and coinbase are what the miner hashed: the header's merkle root is the
	// coinbase's txid up the job's branch.
	a := got[0]
	if len(a.CoinbaseBranch) != 2 || a.JobID != o.job.ID {
		t.Fatalf("coinbase branch %v job %d", a.CoinbaseBranch, a.JobID)
	}
	root := auxpow.BranchRoot(sha.DoubleSHA256(a.CoinbaseTx), a.CoinbaseBranch, 0)
	if !bytes.Equal(root[:], a.BlockHeader[36:68]) {
		t.Fatal("header merkle root is not the coinbase's")
	}
	if o.srv.out.waitSolved(ctx); o.srv.metrics.SolvedPublished.Load() != 2 {
		t.Fatalf("SolvedPublished %d, want 2", o.srv.metrics.SolvedPublished.Load())
	}
}

// TestAuxJournalRepublish: an aux solved share left unacknowledged in the journal is
// published again at start, on the AuxSolvedShare topic (not the parent's).
func TestAuxJournalRepublish(t *testing.T) {
	dir := t.TempDir()
	b := mem.New(mem.Options{})
	defer b.Close()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	topics := bus.DefaultTopics().WithAux()
	o, err := newOutputs(prod, topics, dir, &Metrics{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.appendJournal([][]byte{[]byte("parent"), []byte(`{"aux":1}`)}, []uint32{0, auxFlag}); err != nil {
		t.Fatal(err)
	}
	o.close()
	auxCons, _ := b.NewConsumer(topics.AuxSolvedShare, bus.Start{})
	parCons, _ := b.NewConsumer(topics.SolvedShare, bus.Start{})
	defer auxCons.Close()
	defer parCons.Close()
	o, err = newOutputs(prod, topics, dir, &Metrics{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !o.waitSolved(ctx) {
		t.Fatal("journal not republished")
	}
	o.close()
	am, err := auxCons.Poll(ctx)
	if err != nil || len(am) != 1 || string(am[0].Value) != `{"aux":1}` {
		t.Fatalf("aux topic got %v %v", am, err)
	}
	pm, err := parCons.Poll(ctx)
	if err != nil || len(pm) != 1 || string(pm[0].Value) != "parent" {
		t.Fatalf("solved topic got %v %v", pm, err)
	}
	entries, err := ReadJournal(o.journalPath)
	if err != nil || len(entries) != 2 || !entries[1].Aux || entries[0].Aux || !entries[0].Acked || !entries[1].Acked {
		t.Fatalf("journal after republish %+v %v", entries, err)
	}
}

func TestSubmitPathZeroAllocsAux(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	o, _ := auxOffline(t, append(benchChains(3), rskBenchChain()))
	s := authorizedSession(t, o)
	line := []byte(`{"id":9,"method":"mining.submit","params":["alice.rig1","0","0000000000000000","` + fmt.Sprintf("%08x", o.job.Time) + `","00000000"]}` + "\n")
	en2At := bytes.Index(line, []byte("0000000000000000"))
	var n uint64
	allocs := testing.AllocsPerRun(200, func() {
		n++
		patchHex16(line[en2At:en2At+16], n)
		o.lp.out = o.lp.out[:0]
		s.feed(line, time.Now().Unix())
		o.lp.batch.buf, o.lp.batch.ends = o.lp.batch.buf[:0], o.lp.batch.ends[:0]
	})
	if allocs != 0 {
		t.Fatalf("submit path with 3 aux chains and RSK: %v allocs per share", allocs)
	}
}

// rskBenchChain is RSK's entry with a target the test shares almost never meet.
func rskBenchChain() AuxChain {
	return AuxChain{Name: "rsk", Hash: "0x" + strings.Repeat("cd", 32), Target: sha.DiffToTarget(16), RSK: true,
		FeesForMiner: "0", RPCAddr: "http://127.0.0.1:4444", RPCUserPass: "u:p"}
}

// BenchmarkSubmitPathAux is BenchmarkSubmitPath with 1 and 3 aux chains in the job, and with
// 3 aux chains and RSK.
func BenchmarkSubmitPathAux(b *testing.B) {
	for _, n := range []int{1, 3, -3} {
		name, chains := fmt.Sprintf("chains=%d", n), benchChains(max(n, -n))
		if n < 0 {
			name, chains = "chains=3+rsk", append(chains, rskBenchChain())
		}
		b.Run(name, func(b *testing.B) {
			o, _ := auxOffline(b, chains)
			s := authorizedSession(b, o)
			line := []byte(`{"id":9,"method":"mining.submit","params":["alice.rig1","0","0000000000000000","` + fmt.Sprintf("%08x", o.job.Time) + `","00000000"]}` + "\n")
			now := time.Now().Unix()
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			en2At := bytes.Index(line, []byte("0000000000000000"))
			var k uint64
			for b.Loop() {
				k++
				patchHex16(line[en2At:en2At+16], k)
				o.lp.out = o.lp.out[:0]
				s.feed(line, now)
				if len(o.lp.batch.ends) > 512 {
					o.lp.batch.buf, o.lp.batch.ends = o.lp.batch.buf[:0], o.lp.batch.ends[:0]
				}
			}
		})
	}
}

func TestAuxChainsFromJob(t *testing.T) {
	sj := btcpool.StratumJob{NmcBlockHash: strings.Repeat("11", 32), NmcBits: 0x207fffff, NmcRpcAddr: "http://x"}
	// btcpool's single chain from the nmc* keys.
	got, err := auxChainsFrom([]byte(`{"jobId":1}`), &sj)
	want, _ := sha.ParseCompact(0x207fffff)
	if err != nil || len(got) != 1 || got[0].Hash != sj.NmcBlockHash || got[0].Target != want || got[0].RPCAddr != "http://x" {
		t.Fatalf("nmc chain %+v %v", got, err)
	}
	if got, err := auxChainsFrom([]byte(`{"jobId":1}`), &btcpool.StratumJob{}); err != nil || got != nil {
		t.Fatalf("no aux: %+v %v", got, err)
	}
	// hashpool's key, as jobmaker writes it.
	v := `{"jobId":1,"mergedMining":{"size":4,"nonce":0,"chains":[` +
		`{"name":"nmc","chainid":1,"hash":"` + strings.Repeat("11", 32) + `","bits":545259519,"target":"7fffff0000000000000000000000000000000000000000000000000000000000","height":5,"slot":1,"branch":"` + strings.Repeat("ab", 64) + `","rpc_addr":"http://n","rpc_userpass":"a:b"},` +
		`{"name":"doge","chainid":98,"hash":"` + strings.Repeat("98", 32) + `","bits":545259519,"target":"7fffff0000000000000000000000000000000000000000000000000000000000","height":6,"slot":2,"branch":"","rpc_addr":"","rpc_userpass":""}]}}`
	got, err = auxChainsFrom([]byte(v), &sj)
	if err != nil || len(got) != 2 || got[0].Name != "nmc" || got[0].Slot != 1 || len(got[0].Branch) != 2 || got[0].Branch[0][0] != 0xab ||
		got[0].Target != want || got[1].ChainID != 98 || got[1].Slot != 2 || got[0].RPCUserPass != "a:b" {
		t.Fatalf("mergedMining chains %+v %v", got, err)
	}
	for _, bad := range []string{
		`{"mergedMining":{}}`, `{"mergedMining":{"chains":[]}}`,
		`{"mergedMining":{"chains":[{"name":"x","hash":"zz","target":"01"}]}}`,
		`{"mergedMining":{"chains":[{"name":"x","hash":"` + strings.Repeat("11", 32) + `","target":"0"}]}}`,
		`{"mergedMining":{"chains":[{"name":"x","hash":"` + strings.Repeat("11", 32) + `","target":"01","branch":"abc"}]}}`,
	} {
		if _, err := auxChainsFrom([]byte(bad), &sj); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// FuzzAuxChainsFrom reads arbitrary job JSON: no panic, and what is accepted is bounded
// (at most MaxChains chains, each with a valid hash and a branch within the tree height).
func FuzzAuxChainsFrom(f *testing.F) {
	f.Add([]byte(`{"mergedMining":{"size":2,"nonce":0,"chains":[{"name":"nmc","chainid":1,"hash":"` + strings.Repeat("11", 32) +
		`","bits":545259519,"target":"7fffff0000000000000000000000000000000000000000000000000000000000","height":5,"slot":1,"branch":"` +
		strings.Repeat("ab", 32) + `","rpc_addr":"http://n","rpc_userpass":"a:b"}]}}`))
	f.Add([]byte(`{"mergedMining":{"chains":[{"name":"x"}]}}`))
	f.Add([]byte(`{"jobId":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sj := btcpool.StratumJob{NmcBlockHash: strings.Repeat("11", 32), NmcBits: 0x207fffff}
		chains, err := auxChainsFrom(b, &sj)
		if err != nil {
			return
		}
		if len(chains) > auxpow.MaxChains {
			t.Fatalf("%d chains", len(chains))
		}
		for _, c := range chains {
			if _, err := auxpow.ParseDisplayHash(c.Hash); err != nil || c.Target.IsZero() || len(c.Branch) > maxAuxBranch {
				t.Fatalf("accepted chain %+v", c)
			}
		}
	})
}

// TestRSKSolvedSharePublished: a share meeting the RSK target publishes an RskSolvedShare
// (btcpool's binary RskSolvedShareData and the coinbase) on the RskSolvedShare topic whatever
// its own status (here a stale share), beside the aux chain's AuxSolvedShare, with the
// parent's durability: answered only once journaled, flagged RSK in the journal.
func TestRSKSolvedSharePublished(t *testing.T) {
	rsk := AuxChain{Name: "rsk", Hash: "0x" + strings.Repeat("cd", 32), Target: allOnes, RSK: true, FeesForMiner: "12",
		RPCAddr: "http://127.0.0.1:4444", RPCUserPass: "u:p"}
	chains := []AuxChain{{Name: "nmc", ChainID: 1, Hash: strings.Repeat("11", 32), Target: allOnes}, rsk}
	o, b := auxOffline(t, chains)
	rcons, err := b.NewConsumer(bus.DefaultRskSolvedShare, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer rcons.Close()
	acons, err := b.NewConsumer(bus.DefaultAuxSolvedShare, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer acons.Close()
	s := authorizedSession(t, o)
	o.srv.repo.MarkStale(o.job.Height)
	line := `{"id":9,"method":"mining.submit","params":["alice.rig1","0","0000000000000001","` + fmt.Sprintf("%08x", o.job.Time) + `","00000000"]}` + "\n"
	if out := o.run(s, line); !strings.Contains(out, `"error":[21,`) {
		t.Fatalf("stale share answered %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := rcons.Poll(ctx)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("RskSolvedShare: %v %v", msgs, err)
	}
	var r btcpool.RskSolvedShare
	if err := btcpool.DecodeRskSolvedShare(msgs[0].Value, &r); err != nil {
		t.Fatal(err)
	}
	if r.JobID != o.job.ID || r.Height != o.job.Height || r.FeesForMiner != "12" || r.RPCAddress != rsk.RPCAddr ||
		r.RPCUserPwd != "u:p" || r.WorkerFullName != "alice.rig1" || r.WorkerID == 0 {
		t.Fatalf("RskSolvedShare %+v", r)
	}
	root := auxpow.BranchRoot(sha.DoubleSHA256(r.Coinbase), o.job.Branch, 0)
	if !bytes.Equal(root[:], r.Header[36:68]) {
		t.Fatal("header merkle root is not the coinbase's")
	}
	if am, err := acons.Poll(ctx); err != nil || len(am) != 1 {
		t.Fatalf("AuxSolvedShare beside it: %v %v", am, err)
	}
	o.srv.out.waitSolved(ctx)
	entries, err := ReadJournal(o.srv.out.journalPath)
	if err != nil || len(entries) != 2 || entries[0].Rsk || !entries[0].Aux || !entries[1].Rsk || entries[1].Aux {
		t.Fatalf("journal %+v %v", entries, err)
	}
}

// TestRSKJournalRepublish: an RSK solved share left unacknowledged in the journal is published
// again at start on the RskSolvedShare topic; without that topic it is dropped with an error.
func TestRSKJournalRepublish(t *testing.T) {
	dir := t.TempDir()
	b := mem.New(mem.Options{})
	defer b.Close()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	topics := bus.DefaultTopics().WithAux().WithRSK()
	o, err := newOutputs(prod, topics, dir, &Metrics{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.appendJournal([][]byte{[]byte("rsk share"), []byte("parent")}, []uint32{rskFlag, 0}); err != nil {
		t.Fatal(err)
	}
	o.close()
	rskCons, _ := b.NewConsumer(topics.RskSolvedShare, bus.Start{})
	defer rskCons.Close()
	o, err = newOutputs(prod, topics, dir, &Metrics{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !o.waitSolved(ctx) {
		t.Fatal("journal not republished")
	}
	o.close()
	rm, err := rskCons.Poll(ctx)
	if err != nil || len(rm) != 1 || string(rm[0].Value) != "rsk share" {
		t.Fatalf("RSK topic got %v %v", rm, err)
	}
	entries, err := ReadJournal(o.journalPath)
	if err != nil || len(entries) != 2 || !entries[0].Rsk || entries[0].Aux || !entries[0].Acked || entries[1].Rsk {
		t.Fatalf("journal after republish %+v %v", entries, err)
	}
}

func TestRSKChainFromJob(t *testing.T) {
	sj := btcpool.StratumJob{RskBlockHashForMergedMining: "0x" + strings.Repeat("cd", 32), RskNetworkTarget: "0x" + strings.Repeat("0", 60) + "00ff",
		RskFeesForMiner: "5", RskdRpcAddress: "http://r", RskdRpcUserPwd: "a:b", MergedMiningClean: true}
	c, err := rskChainFrom(&sj)
	if err != nil || !c.RSK || c.Target != (sha.Target{0xff}) || c.FeesForMiner != "5" || c.RPCAddr != "http://r" || c.RPCUserPass != "a:b" {
		t.Fatalf("%+v %v", c, err)
	}
	o, _ := auxOffline(t, nil)
	p := &JobParams{Aux: benchChains(1)}
	o.srv.addRSK(p, &sj)
	if len(p.Aux) != 2 || !p.Aux[1].RSK || !p.MergedMiningClean {
		t.Fatalf("addRSK: %+v", p)
	}
	for _, bad := range []btcpool.StratumJob{
		{RskBlockHashForMergedMining: "0x12", RskNetworkTarget: sj.RskNetworkTarget},
		{RskBlockHashForMergedMining: sj.RskBlockHashForMergedMining, RskNetworkTarget: "0x00"},
		{RskBlockHashForMergedMining: sj.RskBlockHashForMergedMining, RskNetworkTarget: "0xzz"},
	} {
		p := &JobParams{}
		if o.srv.addRSK(p, &bad); len(p.Aux) != 0 {
			t.Errorf("accepted %+v", bad)
		}
	}
	if p := (&JobParams{}); func() bool { o.srv.addRSK(p, &btcpool.StratumJob{}); return len(p.Aux) != 0 }() {
		t.Error("RSK entry from a job without RSK work")
	}
}

package jobmaker

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

func auxValue(chainID int32, hash string, height int32, created uint32) []byte {
	return btcpool.AppendAuxRawGw(nil, &btcpool.AuxRawGw{CreatedAt: created, Hash: hash, Height: height,
		MerkleSize: 1, ChainID: chainID, Bits: "207fffff", RPCAddr: "http://127.0.0.1:1", RPCUserPass: "u:p"})
}

func hashHex(b byte) string { return strings.Repeat(hex.EncodeToString([]byte{b}), 32) }

func TestMakerAuxCommitmentAndPolicies(t *testing.T) {
	const T = 1_763_000_000
	for _, policy := range []int{AuxNotifyNever, AuxNotifyHeight, AuxNotifyHash} {
		clock := newFakeClock(T)
		m := testMaker(t, clock)
		m.aux.policy = policy
		if err := m.accept(rawGbtValue(gbt{height: 101, curtime: T}.text(t), T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		if j, _, _ := m.produce(clock.Now()); j == nil || j.NmcBits != 0 || m.merged != nil {
			t.Fatalf("job without aux work: %+v", j)
		}
		// Stale work is refused.
		if err := m.acceptAux([]byte("nmc"), auxValue(1, hashHex(0x11), 5, T-61), clock.Now()); err == nil {
			t.Fatal("61 s old aux work accepted")
		}
		if err := m.acceptAux([]byte("nmc"), auxValue(1, hashHex(0x11), 5, T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		j, why, err := m.produce(clock.Now())
		if policy == AuxNotifyNever {
			if j != nil {
				t.Fatalf("policy 0: aux work made a job (%v)", why)
			}
			clock.add(DefaultJobInterval)
			j, _, err = m.produce(clock.Now())
		} else if why != MergedMining || !j.MergedMiningClean {
			t.Fatalf("policy %d: first aux work: trigger %v clean %v", policy, why, j != nil && j.MergedMiningClean)
		}
		if err != nil || j == nil {
			t.Fatalf("policy %d: %v %v", policy, j, err)
		}
		// One chain: btcpool's 44 bytes, the aux hash in display order, size 1, nonce 0,
		// after coinbase_info and just before the extranonce slot.
		want := "fabe6d6d" + hashHex(0x11) + "01000000" + "00000000"
		if !strings.HasSuffix(j.Coinbase1, hex.EncodeToString([]byte("/hashpool/"))+want) {
			t.Fatalf("policy %d: coinbase1 %s lacks the commitment", policy, j.Coinbase1)
		}
		if j.NmcBlockHash != hashHex(0x11) || j.NmcBits != 0x207fffff || j.NmcHeight != 5 || j.NmcRpcAddr != "http://127.0.0.1:1" || j.NmcRpcUserpass != "u:p" {
			t.Fatalf("policy %d: nmc fields %+v", policy, j)
		}
		// Same height, new hash: only policy 2 notifies. Higher height: 1 and 2.
		if err := m.acceptAux([]byte("nmc"), auxValue(1, hashHex(0x12), 5, T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		_, why, _ = m.produce(clock.Now())
		if (why == MergedMining) != (policy == AuxNotifyHash) {
			t.Fatalf("policy %d: new hash at the same height: trigger %v", policy, why)
		}
		if err := m.acceptAux([]byte("nmc"), auxValue(1, hashHex(0x13), 6, T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		_, why, _ = m.produce(clock.Now())
		if (why == MergedMining) != (policy != AuxNotifyNever) {
			t.Fatalf("policy %d: higher aux height: trigger %v", policy, why)
		}
		// Work older than the one held is refused; after 60 s the work leaves the jobs.
		if err := m.acceptAux([]byte("nmc"), auxValue(1, hashHex(0x14), 7, T-1), clock.Now()); err == nil {
			t.Fatal("older aux work accepted")
		}
		clock.add(61 * time.Second)
		j, _, _ = m.produce(clock.Now())
		if j == nil || j.NmcBits != 0 || strings.Contains(j.Coinbase1, "fabe6d6d") {
			t.Fatalf("policy %d: stale aux work still in the job %+v", policy, j)
		}
	}
}

func TestRunMergesAuxChains(t *testing.T) {
	b := mem.New(mem.Options{})
	t.Cleanup(func() { b.Close() })
	jobs := newJobReader(t, b, DefaultJobTopic)
	raw, err := b.NewConsumer(DefaultJobTopic, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	startJobMaker(t, b, Options{ID: 3, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", CoinbaseInfo: "/hashpool/",
		JobInterval: time.Second, AuxRawGwTopic: bus.DefaultAuxRawGw, AuxNotifyPolicy: AuxNotifyHeight})
	now := uint32(time.Now().Unix())
	publish(t, b, DefaultRawGbtTopic, rawGbtValue(gbt{height: 300, curtime: now}.text(t), now))
	jobs.next(10 * time.Second)

	// A fake auxmaker: three chains on one topic, keyed by name.
	p, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	chains := []struct {
		name string
		id   int32
		hash string
	}{{"nmc", 1, hashHex(0x21)}, {"fake3", 3, hashHex(0x23)}, {"doge", 98, hashHex(0x98)}}
	for _, c := range chains {
		if err := p.PublishSync(ctx, bus.DefaultAuxRawGw, []byte(c.name), auxValue(c.id, c.hash, 10, now)); err != nil {
			t.Fatal(err)
		}
	}
	// Jobs follow; the last one carries all three chains.
	var value []byte
	for value == nil {
		msgs, err := raw.Poll(ctx)
		if err != nil {
			t.Fatalf("no job with three aux chains: %v", err)
		}
		for _, m := range msgs {
			v, _ := fastjson.ParseBytes(m.Value)
			if v != nil && len(v.GetArray(btcpool.MergedMiningKey, "chains")) == 3 {
				value = bytes.Clone(m.Value)
			}
		}
	}
	var j btcpool.StratumJob
	if err := btcpool.DecodeStratumJob(value, &j); err != nil {
		t.Fatalf("job with mergedMining does not decode: %v", err)
	}
	v := fastjson.MustParseBytes(value)
	mm := v.Get(btcpool.MergedMiningKey)
	works := make([]auxpow.Work, len(chains))
	for i, c := range chains {
		works[i], _ = auxpow.NewWork(c.name, c.id, c.hash, "207fffff", 10)
	}
	merged, err := auxpow.Merge(works, auxpow.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mm.GetUint("size") != uint(merged.Tree.Size()) || mm.GetUint("nonce") != 0 {
		t.Fatalf("mergedMining %s", mm)
	}
	commit := hex.EncodeToString(merged.AppendCommitment(nil))
	if !strings.HasSuffix(j.Coinbase1, commit) {
		t.Fatalf("coinbase1 %s lacks the tree commitment %s", j.Coinbase1, commit)
	}
	if j.NmcBlockHash != hashHex(0x21) {
		t.Fatalf("nmcBlockHash %s, want the first chain's", j.NmcBlockHash)
	}
	for i, c := range v.GetArray(btcpool.MergedMiningKey, "chains") {
		if string(c.GetStringBytes("name")) != chains[i].name || c.GetInt("chainid") != int(chains[i].id) ||
			string(c.GetStringBytes("hash")) != chains[i].hash || c.GetUint("slot") != uint(merged.Slot(i)) ||
			c.GetUint("bits") != uint(0x207fffff) || c.GetInt("height") != 10 {
			t.Fatalf("chain %d: %s", i, c)
		}
		br, _ := hex.DecodeString(string(c.GetStringBytes("branch")))
		var branch [][32]byte
		for k := 0; k+32 <= len(br); k += 32 {
			branch = append(branch, [32]byte(br[k:k+32]))
		}
		if root := auxpow.BranchRoot(works[i].Hash, branch, merged.Slot(i)); root != merged.Tree.Root() {
			t.Fatalf("chain %d: branch does not lead to the root", i)
		}
		tgt := sha.Target{}
		tgt, _ = auxpow.ParseTargetBE(string(c.GetStringBytes("target")))
		if tgt != works[i].Target {
			t.Fatalf("chain %d: target %s", i, c.GetStringBytes("target"))
		}
	}
}

func TestCoinbaseInfoFitsBesideCommitment(t *testing.T) {
	o := Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", CoinbaseInfo: strings.Repeat("x", MaxCoinbaseInfoAux+1)}.WithDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("without merged mining: %v", err)
	}
	o.AuxRawGwTopic = bus.DefaultAuxRawGw
	if err := o.Validate(); err == nil {
		t.Fatal("coinbase_info too long for the commitment accepted")
	}
	o.CoinbaseInfo = strings.Repeat("x", MaxCoinbaseInfoAux)
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	// The longest tag with the commitment and the largest height and time still builds.
	cb1, _, err := buildCoinbase(coinbaseInput{height: 1<<31 - 1, now: 1<<32 - 1, info: []byte(o.CoinbaseInfo),
		payout: []byte{0x51}, aux: make([]byte, auxpow.CommitmentSize)})
	if err != nil || len(cb1) == 0 {
		t.Fatal(err)
	}
	if o.AuxNotifyPolicy = 3; o.Validate() == nil {
		t.Fatal("notify policy 3 accepted")
	}
}

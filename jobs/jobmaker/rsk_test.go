package jobmaker

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
)

func rskValue(hash byte, notify bool, created uint32) []byte {
	return btcpool.AppendRskRawGw(nil, &btcpool.RskRawGw{CreatedAt: created, ChainType: "RSK", RPCAddress: "http://127.0.0.1:4444",
		RPCUserPwd: "u:p", Target: "0x00ff", ParentBlockHash: "0x" + hashHex(0xaa), BlockHashForMergedMining: "0x" + hashHex(hash),
		FeesPaidToMiner: "7", Notify: notify})
}

// lastOutput returns the script of the job's coinbase's last output (extranonces zero).
func lastOutput(t *testing.T, j *btcpool.StratumJob) []byte {
	t.Helper()
	raw, err := hex.DecodeString(j.Coinbase1 + strings.Repeat("00", 12) + j.Coinbase2)
	if err != nil {
		t.Fatal(err)
	}
	var tx wire.MsgTx
	if err := tx.DeserializeNoWitness(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return tx.TxOut[len(tx.TxOut)-1].PkScript
}

func TestMakerRSKOutputAndPolicies(t *testing.T) {
	const T = 1_763_000_000
	for _, policy := range []int{RSKNotifyNever, RSKNotifyFlag, RSKNotifyHash} {
		clock := newFakeClock(T)
		m := testMaker(t, clock)
		m.rsk.policy = policy
		if err := m.accept(rawGbtValue(gbt{height: 101, curtime: T, commitment: strings.ReplaceAll(emptyCommitment, " ", "")}.text(t), T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		if j, _, _ := m.produce(clock.Now()); j == nil || j.RskBlockHashForMergedMining != "" {
			t.Fatalf("job without RSK work: %+v", j)
		}
		if err := m.acceptRSK(rskValue(0x31, true, T-61), clock.Now()); err == nil {
			t.Fatal("61 s old RSK work accepted")
		}
		if err := m.acceptRSK(rskValue(0x31, true, T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		j, why, _ := m.produce(clock.Now())
		if policy == RSKNotifyNever {
			if j != nil {
				t.Fatalf("policy 0: RSK work made a job (%v)", why)
			}
			clock.add(DefaultJobInterval)
			j, _, _ = m.produce(clock.Now())
		} else if why != MergedMining || !j.IsRskCleanJob || !j.MergedMiningClean {
			t.Fatalf("policy %d: first RSK work: trigger %v job %+v", policy, why, j)
		}
		if j == nil {
			t.Fatalf("policy %d: no job", policy)
		}
		// The RSK output is the last one (after the witness commitment), with the hash as the
		// node wrote it, not byte-reversed.
		want, _ := hex.DecodeString("6a29" + hex.EncodeToString([]byte("RSKBLOCK:")) + hashHex(0x31))
		if got := lastOutput(t, j); !bytes.Equal(got, want) {
			t.Fatalf("policy %d: last output %x, want %x", policy, got, want)
		}
		if j.RskBlockHashForMergedMining != "0x"+hashHex(0x31) || j.RskNetworkTarget != "0x"+strings.Repeat("0", 60)+"00ff" ||
			j.RskFeesForMiner != "7" || j.RskdRpcAddress != "http://127.0.0.1:4444" || j.RskdRpcUserPwd != "u:p" {
			t.Fatalf("policy %d: rsk fields %+v", policy, j)
		}
		v := btcpool.AppendStratumJob(nil, j)
		var back btcpool.StratumJob
		if err := btcpool.DecodeStratumJob(v, &back); err != nil || back.RskBlockHashForMergedMining != j.RskBlockHashForMergedMining ||
			back.RskNetworkTarget != j.RskNetworkTarget || back.IsRskCleanJob != j.IsRskCleanJob {
			t.Fatalf("policy %d: job JSON %s: %v", policy, v, err)
		}
		// Same hash, notify set: policy 1 only. New hash without notify: policy 2 only.
		if err := m.acceptRSK(rskValue(0x31, true, T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, why, _ = m.produce(clock.Now()); (why == MergedMining) != (policy == RSKNotifyFlag) {
			t.Fatalf("policy %d: notify with the same hash: trigger %v", policy, why)
		}
		if err := m.acceptRSK(rskValue(0x32, false, T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		_, why, _ = m.produce(clock.Now())
		if (why == MergedMining) != (policy == RSKNotifyHash) {
			t.Fatalf("policy %d: new hash without notify: trigger %v", policy, why)
		}
		if m.rsk.prev == nil || m.rsk.prev.hash == m.rsk.cur.hash {
			t.Fatalf("policy %d: previous work not kept", policy)
		}
		if err := m.acceptRSK(rskValue(0x33, true, T-1), clock.Now()); err == nil {
			t.Fatal("older RSK work accepted")
		}
		// 120 s after its created_at_ts the work leaves the jobs.
		clock.add(100 * time.Second)
		if j, _, _ = m.produce(clock.Now()); j != nil && j.RskBlockHashForMergedMining == "" {
			t.Fatalf("policy %d: RSK work dropped before 120 s", policy)
		}
		clock.add(21 * time.Second)
		j, _, _ = m.produce(clock.Now())
		if j == nil || j.RskBlockHashForMergedMining != "" || bytes.Contains(lastOutput(t, j), []byte("RSKBLOCK:")) {
			t.Fatalf("policy %d: stale RSK work still in the job %+v", policy, j)
		}
	}
}

// TestMakerRSKWithAux: aux commitment in the scriptSig and the RSK output together.
func TestMakerRSKWithAux(t *testing.T) {
	const T = 1_763_000_000
	clock := newFakeClock(T)
	m := testMaker(t, clock)
	if err := m.accept(rawGbtValue(gbt{height: 101, curtime: T}.text(t), T), clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.acceptAux([]byte("nmc"), auxValue(1, hashHex(0x11), 5, T), clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.acceptRSK(rskValue(0x31, true, T), clock.Now()); err != nil {
		t.Fatal(err)
	}
	j, _, err := m.produce(clock.Now())
	if err != nil || j == nil || !strings.Contains(j.Coinbase1, "fabe6d6d") || j.NmcBits == 0 || j.RskBlockHashForMergedMining == "" {
		t.Fatalf("job %+v, %v", j, err)
	}
	if !bytes.Contains(lastOutput(t, j), []byte("RSKBLOCK:")) {
		t.Fatal("no RSK output")
	}
	if err := m.acceptRSK([]byte(`{"created_at_ts":1}`), clock.Now()); err == nil {
		t.Fatal("bad RskRawGw accepted")
	}
	var o Options
	if o = (Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", RSKNotifyPolicy: 3}).WithDefaults(); o.Validate() == nil {
		t.Fatal("rsk notify policy 3 accepted")
	}
}

// TestRunRSK: jobmaker reads RskRawGw from its topic; the notify flag makes a job at once.
func TestRunRSK(t *testing.T) {
	b := mem.New(mem.Options{})
	t.Cleanup(func() { b.Close() })
	jobs := newJobReader(t, b, DefaultJobTopic)
	startJobMaker(t, b, Options{ID: 3, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", CoinbaseInfo: "/hashpool/",
		JobInterval: 60 * time.Second, RSKRawGwTopic: "RskRawGw", RSKNotifyPolicy: RSKNotifyFlag})
	now := uint32(time.Now().Unix())
	publish(t, b, DefaultRawGbtTopic, rawGbtValue(gbt{height: 300, curtime: now}.text(t), now))
	if j := jobs.next(10 * time.Second); j.RskBlockHashForMergedMining != "" {
		t.Fatalf("first job has RSK work: %+v", j)
	}
	p, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.PublishSync(ctx, "RskRawGw", nil, rskValue(0x41, true, uint32(time.Now().Unix()))); err != nil {
		t.Fatal(err)
	}
	j := jobs.next(20 * time.Second) // long before job_interval: the notify flag made it
	if j.RskBlockHashForMergedMining != "0x"+hashHex(0x41) || !j.IsRskCleanJob || !j.MergedMiningClean {
		t.Fatalf("job after RSK notify: %+v", j)
	}
}

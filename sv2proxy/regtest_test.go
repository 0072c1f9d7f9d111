package sv2proxy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/internal/btcdtest"
)

// TestRegtest mines real btcd regtest blocks with SV1 miners through the
// translator and sv2pool over Noise, in both channel modes: accepted,
// duplicate, low-difficulty and stale shares are answered and counted, the
// pool sees each worker (per-miner mode), and when the first pool is
// killed the miners, still connected, mine the next blocks through the
// second.
func TestRegtest(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	n.MineBlocks(t, 1)
	for _, mode := range []Mode{ChannelPerMiner, SharedChannel} {
		t.Run(mode.String(), func(t *testing.T) { testRegtest(t, n, mode) })
	}
}

func testRegtest(t *testing.T, n *btcdtest.Node, mode Mode) {
	a, b := startPool(t, time.Time{}, time.Time{}), startPool(t, time.Time{}, time.Time{})
	c := &chain{t: t, n: n, pools: []*testPool{a, b}}
	c.newJob()
	tr, addr := startTranslator(t, Options{Mode: mode, Upstreams: []Upstream{
		{Addr: a.addr, Authority: a.authority, User: "farm"},
		{Addr: b.addr, Authority: b.authority, User: "farm"}}})
	m1 := dialMiner(t, addr, "farm.w1", true)
	m2 := dialMiner(t, addr, "farm.w2", false)
	m1.waitClean(0)
	m2.waitClean(0)
	if m1.diff != poolDiff || m2.diff != poolDiff {
		t.Fatalf("difficulty %v/%v, want the pool's %v", m1.diff, m2.diff, poolDiff)
	}
	start := c.height()

	// Accepted, duplicate, low difficulty; the accepted share is a block.
	s := m1.grind(true)
	if code := m1.submit(s); code != 0 {
		t.Fatalf("share answered %d, want accepted", code)
	}
	if code := m1.submit(s); code != 22 {
		t.Fatalf("duplicate answered %d, want 22", code)
	}
	if code := m1.submit(m1.grind(false)); code != 23 {
		t.Fatalf("low-difficulty share answered %d, want 23", code)
	}
	c.submit(a)

	// The new block's job arrives with clean_jobs; the old job is stale.
	m1.waitClean(1)
	if code := m1.submit(s); code != 21 {
		t.Fatalf("stale share answered %d, want 21", code)
	}
	m2.waitClean(1)
	if code := m2.submit(m2.grind(true)); code != 0 {
		t.Fatalf("w2's share answered %d", code)
	}
	c.submit(a)

	// Per-miner channels: the pool saw each worker under the sub-account.
	users := a.users()
	if mode == ChannelPerMiner {
		if !users["farm.w1"] || !users["farm.w2"] || len(users) != 2 {
			t.Fatalf("pool saw users %v, want farm.w1 and farm.w2", users)
		}
	} else if !users["farm"] || len(users) != 1 {
		t.Fatalf("pool saw users %v, want the shared channel's farm", users)
	}

	// Kill the first pool: the miners stay connected and mine through the second.
	m1.waitClean(2)
	m2.waitClean(2)
	c1, c2 := m1.cleans, m2.cleans
	a.stop()
	c.pools[0] = nil
	eventually(t, "the translator on the second pool", func() bool { up, _ := tr.Upstream(); return up == b.addr })
	m1.waitClean(c1)
	m2.waitClean(c2)
	if code := m1.submit(m1.grind(true)); code != 0 {
		t.Fatalf("w1's share on the second pool answered %d", code)
	}
	c2 = m2.cleans
	c.submit(b)
	m2.waitClean(c2)
	if code := m2.submit(m2.grind(true)); code != 0 {
		t.Fatalf("w2's share on the second pool answered %d", code)
	}
	c.submit(b)
	if got := c.height(); got != start+4 {
		t.Fatalf("height %d, want %d", got, start+4)
	}

	st := tr.Stats()
	if st.Accepted.Load() != 4 || st.RejectedDup.Load() != 1 || st.RejectedLow.Load() != 1 || st.RejectedStale.Load() != 1 || st.Rejected.Load() != 3 {
		t.Fatalf("accepted %d, rejected %d (dup %d, low %d, stale %d); want 4, 3 (1, 1, 1)", st.Accepted.Load(), st.Rejected.Load(),
			st.RejectedDup.Load(), st.RejectedLow.Load(), st.RejectedStale.Load())
	}
	if st.Miners.Load() != 2 || st.Connects.Load() != 2 {
		t.Fatalf("%d miners, %d upstream sessions; want 2 and 2", st.Miners.Load(), st.Connects.Load())
	}
	for _, ms := range tr.Miners() {
		want := [2]int64{2, 3}
		if ms.Worker == "w2" {
			want = [2]int64{2, 0}
		}
		if [2]int64{ms.Accepted, ms.Rejected} != want || ms.AcceptDiff != float64(want[0])*poolDiff {
			t.Errorf("%+v: want %d accepted, %d rejected", ms, want[0], want[1])
		}
	}
}

// TestRefusedCertificates: a pool whose certificate the configured
// authority key did not sign, or whose certificate has expired, is never
// mined for; the translator keeps retrying and says why.
func TestRefusedCertificates(t *testing.T) {
	good := startPool(t, time.Time{}, time.Time{})
	other := startPool(t, time.Time{}, time.Time{})
	expired := startPool(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	for _, tc := range []struct {
		name string
		up   Upstream
		want error
	}{
		{"wrong authority", Upstream{Addr: good.addr, Authority: other.authority}, noise.ErrCertSignature},
		{"expired", Upstream{Addr: expired.addr, Authority: expired.authority}, noise.ErrCertExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, addr := startTranslator(t, Options{Upstreams: []Upstream{tc.up}})
			dialMiner(t, addr, "farm.w1", false) // miners are served while no pool is
			eventually(t, "three refused dials", func() bool { return tr.Stats().DialFailures.Load() >= 3 })
			_, err := tr.Upstream()
			if !errors.Is(err, tc.want) {
				t.Fatalf("last error %v, want %v", err, tc.want)
			}
			if tr.Stats().Connects.Load() != 0 || tr.Stats().Jobs.Load() != 0 {
				t.Fatal("the translator used a pool it should have refused")
			}
			if !strings.Contains(err.Error(), tc.up.Addr) {
				t.Fatalf("error %q does not name the pool", err)
			}
		})
	}
}

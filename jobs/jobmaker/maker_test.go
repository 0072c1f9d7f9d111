package jobmaker

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/codec/btcpool"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock(unix int64) *fakeClock { return &fakeClock{t: time.Unix(unix, 0)} }
func rawGbtValue(text []byte, created uint32) []byte {
	m := btcpool.NewRawGbt(text, created)
	return btcpool.AppendRawGbt(nil, &m)
}

func testMaker(t *testing.T, clock *fakeClock) *maker {
	t.Helper()
	o := Options{ID: 7, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", CoinbaseInfo: "/hashpool/", Now: clock.Now}.WithDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := newMaker(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMakerAcceptAndProduce(t *testing.T) {
	const T = 1_763_000_000
	clock := newFakeClock(T)
	m := testMaker(t, clock)

	empty := gbt{height: 101, curtime: T}.text(t)
	if err := m.accept(rawGbtValue(empty, T), clock.Now()); err != nil {
		t.Fatal(err)
	}
	j, why, err := m.produce(clock.Now())
	if err != nil || why != NewHeight {
		t.Fatalf("first job: %v %v", why, err)
	}
	if j.JobID != T<<32|7 || j.Height != 101 || j.MerkleBranch != "" {
		t.Errorf("first job %+v", j)
	}
	if j, why, _ := m.produce(clock.Now()); j != nil || why != NoTrigger {
		t.Fatalf("second produce at the same time: %v", why)
	}

	// The same message again is a duplicate.
	if err := m.accept(rawGbtValue(empty, T), clock.Now()); !errors.Is(err, ErrDuplicateGbt) {
		t.Errorf("duplicate: %v", err)
	}

	// A full template at the same height replaces the empty job at once.
	clock.add(2 * time.Second)
	full := gbt{height: 101, curtime: T + 2, txs: []*wire.MsgTx{testTx(1), testTx(2)},
		commitment: strings.ReplaceAll(emptyCommitment, " ", "")}.text(t)
	if err := m.accept(rawGbtValue(full, T+2), clock.Now()); err != nil {
		t.Fatal(err)
	}
	j, why, err = m.produce(clock.Now())
	if err != nil || why != EmptyToFull {
		t.Fatalf("full job: %v %v", why, err)
	}
	if j.JobID != (T+2)<<32|7 || len(jobBranch(t, j)) != 2 || j.WitnessCommitment == "" {
		t.Errorf("full job %+v", j)
	}

	// Periodic refresh: same template, new time in the coinbase and id.
	clock.add(20 * time.Second)
	j2, why, err := m.produce(clock.Now())
	if err != nil || why != PeriodicRefresh {
		t.Fatalf("refresh: %v %v", why, err)
	}
	if j2.GbtHash != j.GbtHash || j2.Coinbase1 == j.Coinbase1 || j2.JobID != (T+22)<<32|7 {
		t.Errorf("refresh job %+v", j2)
	}

	// Too old, and a malformed message, are refused and change nothing.
	old := gbt{height: 101, curtime: T - 40}.text(t)
	if err := m.accept(rawGbtValue(old, T-38), clock.Now()); !errors.Is(err, ErrGbtTooOld) {
		t.Errorf("old template: %v", err)
	}
	for _, bad := range [][]byte{
		nil, []byte(`{}`), []byte(`{"created_at_ts":1,"block_template_base64":"!!","gbthash":"00"}`),
		rawGbtBase64(T+22, "!!not base64"),
		rawGbtBase64(T+22, base64.StdEncoding.EncodeToString([]byte(`{"result":{}}`))),
	} {
		if err := m.accept(bad, clock.Now()); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	// The empty template expired at T+15; only the full one is left.
	if len(m.book.entries) != 1 || m.book.entries[0].tmpl.Empty() {
		t.Errorf("book holds %d templates, want the full one", len(m.book.entries))
	}
}

func rawGbtBase64(created uint32, b64 string) []byte {
	m := btcpool.RawGbt{CreatedAt: created, BlockTemplateBase64: b64, GbtHash: strings.Repeat("ab", 32)}
	return btcpool.AppendRawGbt(nil, &m)
}

// TestMakerIDsWithinOneSecond makes several jobs in one second (a new
// height each) and checks the counter bits.
func TestMakerIDsWithinOneSecond(t *testing.T) {
	const T = 1_763_000_000
	clock := newFakeClock(T)
	m := testMaker(t, clock)
	for i := range 3 {
		if err := m.accept(rawGbtValue(gbt{height: int32(200 + i), curtime: T}.text(t), T), clock.Now()); err != nil {
			t.Fatal(err)
		}
		j, why, err := m.produce(clock.Now())
		if err != nil || why != NewHeight {
			t.Fatal(why, err)
		}
		if want := uint64(T)<<32 | uint64(i)<<8 | 7; j.JobID != want {
			t.Errorf("job %d id %#x, want %#x", i, j.JobID, want)
		}
	}
}

func FuzzMakerAccept(f *testing.F) {
	const T = 1_763_000_000
	f.Add(rawGbtValue(gbt{height: 5, curtime: T, txs: []*wire.MsgTx{testTx(3)}}.text(f), T))
	f.Add(rawGbtValue([]byte(`{"result":{"height":1}}`), T))
	f.Add([]byte(`{"created_at_ts":1763000000,"block_template_base64":"e30=","gbthash":"` + strings.Repeat("0", 64) + `"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		clock := newFakeClock(T)
		o := Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Now: clock.Now}.WithDefaults()
		m, err := newMaker(o)
		if err != nil {
			t.Fatal(err)
		}
		if m.accept(value, clock.Now()) != nil {
			return
		}
		j, _, err := m.produce(clock.Now())
		if err == nil && j == nil {
			t.Fatal("accepted template gave no job")
		}
	})
}

// BenchmarkProduce measures one periodic job: coinbase, merkle branch and
// the StratumJob JSON, for templates of several sizes.
func BenchmarkProduce(b *testing.B) {
	const T = 1_763_000_000
	for _, n := range []int{0, 100, 3000} {
		b.Run(fmt.Sprint(n, " txs"), func(b *testing.B) {
			var txs []*wire.MsgTx
			for i := range n {
				txs = append(txs, testTx(i))
			}
			clock := newFakeClock(T)
			o := Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Now: clock.Now}.WithDefaults()
			m, err := newMaker(o)
			if err != nil {
				b.Fatal(err)
			}
			if err := m.accept(rawGbtValue(gbt{height: 9, curtime: T, txs: txs}.text(b), T), clock.Now()); err != nil {
				b.Fatal(err)
			}
			var out []byte
			b.ReportAllocs()
			for b.Loop() {
				clock.add(20 * time.Second) // the last template never expires
				j, _, err := m.produce(clock.Now())
				if err != nil || j == nil {
					b.Fatal(err)
				}
				out = btcpool.AppendStratumJob(out[:0], j)
			}
		})
	}
}

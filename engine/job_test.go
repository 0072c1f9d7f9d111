package engine

import (
	"bytes"
	"strings"
	"testing"
)

func jobAt(created uint32, seq uint32, height int32, branches int) *JobParams {
	p := &JobParams{
		ID: uint64(created)<<32 | uint64(seq), Height: height,
		Coinbase1: []byte{0x01, 0x02}, Coinbase2: []byte{0xff},
		Version: 0x20000000, Bits: 0x1d00ffff, Time: created, MinTime: created - 600,
	}
	for i := 0; i < 32; i++ {
		p.PrevHash[i] = byte(i)
	}
	for i := 0; i < branches; i++ {
		var b [32]byte
		b[0] = byte(0xa0 + i)
		p.Branch = append(p.Branch, b)
	}
	return p
}

func TestNotifyGolden(t *testing.T) {
	r := NewJobRepo(300, 30, 6, 1)
	j, send, err := r.Add(jobAt(0x5f5e1000, 1, 100, 1), 0x5f5e1000)
	if err != nil || !send {
		t.Fatalf("Add: send %v err %v", send, err)
	}
	want := `{"id":null,"method":"mining.notify","params":["0",` +
		`"03020100070605040b0a09080f0e0d0c13121110171615141b1a19181f1e1d1c",` +
		`"01020000","ff",["a000000000000000000000000000000000000000000000000000000000000000"],` +
		`"20000000","1d00ffff","5f5e1000",true]}` + "\n"
	if got := string(j.Notify(true)); got != want {
		t.Fatalf("notify\n got %s\nwant %s", got, want)
	}
	if got := j.Notify(false); !bytes.HasSuffix(got, []byte(",false]}\n")) || len(got) != len(want)+1 {
		t.Fatalf("unclean notify %s", got)
	}
	// NiceHash: the same line with a unique id (spec §4.6).
	nh := strings.Replace(want, `["0",`, `["409600000000",`, 1)
	if got := string(j.AppendNotifyWithID([]byte("x"), true, 0x5f5e1000*256)); got != "x"+nh {
		t.Fatalf("NiceHash notify\n got %s\nwant x%s", got, nh)
	}
	// Padding (8 - 6 = 2 zero bytes) is part of the hashed coinbase too.
	if cb := j.Hash.AppendCoinbase(nil, []byte{9, 9, 9, 9}, []byte{7, 7, 7, 7, 7, 7}); !bytes.Equal(cb, []byte{1, 2, 0, 0, 9, 9, 9, 9, 7, 7, 7, 7, 7, 7, 0xff}) {
		t.Fatalf("coinbase %x", cb)
	}
}

func TestJobRepoRules(t *testing.T) {
	const t0 = 1_700_000_000
	r := NewJobRepo(300, 30, 8, 2)
	add := func(p *JobParams, now int64, wantSend bool, wantErr error) *Job {
		t.Helper()
		j, send, err := r.Add(p, now)
		if err != wantErr || send != wantSend {
			t.Fatalf("Add(id %x h %d): send %v err %v, want %v %v", p.ID, p.Height, send, err, wantSend, wantErr)
		}
		return j
	}
	a := add(jobAt(t0, 1, 100, 0), t0, true, nil) // first job: new height
	if !a.Clean || a.ShortID != 0 || r.Latest() != a {
		t.Fatalf("first job clean %v short %d", a.Clean, a.ShortID)
	}
	add(jobAt(t0, 1, 100, 0), t0, false, ErrJobDuplicate)
	b := add(jobAt(t0+1, 2, 100, 3), t0+1, true, nil) // empty → full: at once
	if b.Clean || b.ShortID != 1 || a.Stale() {
		t.Fatalf("b clean %v short %d a stale %v", b.Clean, b.ShortID, a.Stale())
	}
	c := add(jobAt(t0+5, 3, 100, 4), t0+5, false, nil) // same height, full → waits for refresh
	if resend, _ := r.Tick(t0 + 30); resend != nil {
		t.Fatal("refresh before 30 s since the last send")
	}
	if resend, _ := r.Tick(t0 + 31); resend != c {
		t.Fatalf("refresh at +31 s = %v, want the latest job", resend)
	}
	add(jobAt(t0-400, 4, 100, 4), t0, false, ErrJobTooOld)
	d := add(jobAt(t0+40, 5, 101, 4), t0+40, true, nil) // new height: old jobs stale
	if !a.Stale() || !b.Stale() || !c.Stale() || d.Stale() || !d.Clean {
		t.Fatal("stale marks wrong after a new height")
	}
	_, expired := r.Tick(t0 + 302)
	if len(expired) != 2 || expired[0] != a || expired[1] != b || !a.Expired() || c.Expired() {
		t.Fatalf("expired %d jobs", len(expired))
	}
	_, expired = r.Tick(t0 + 10000) // everything is old; the newest stays
	if len(expired) != 1 || r.Len() != 1 || r.Latest() != d || d.Expired() {
		t.Fatalf("keep-one rule: expired %d, left %d", len(expired), r.Len())
	}
	e := add(jobAt(t0+10000, 6, 101, 4), t0+10000, false, nil)
	r.MarkStale(101)
	if !d.Stale() || !e.Stale() {
		t.Fatal("MarkStale(101) missed jobs")
	}
}

func TestDupSet(t *testing.T) {
	var d dupSet
	h := sha256d([]byte("share"))
	k := dupKeyOf(&h)
	if d.seenBefore(k) || !d.seenBefore(k) {
		t.Fatal("dup set")
	}
	if d.seenBefore(dupKey{}) || !d.seenBefore(dupKey{}) || d.seenBefore(dupKey{0, 2}) {
		t.Fatal("zero key")
	}
	// Keys that all want slot 0 probe past each other, across growths.
	keys := 5 * dupSetInitial
	for i := 1; i <= keys; i++ {
		if d.seenBefore(dupKey{uint64(i) << 32, uint64(i)}) {
			t.Fatalf("key %d seen before it was added", i)
		}
	}
	for i := 1; i <= keys; i++ {
		if !d.seenBefore(dupKey{uint64(i) << 32, uint64(i)}) {
			t.Fatalf("key %d lost", i)
		}
	}
	if n := int(d.n.Load()); n != keys+3 || 2*n > len(d.slots) || !d.seenBefore(k) {
		t.Fatalf("%d keys in %d slots", d.n.Load(), len(d.slots))
	}
}

func TestDupSetBound(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a set to its bound")
	}
	var d dupSet
	for i := uint64(1); i <= maxDupPerLoop+10; i++ {
		d.seenBefore(dupKey{i * 0x9e3779b97f4a7c15, i})
	}
	if int(d.n.Load()) != maxDupPerLoop || len(d.slots) != 2*maxDupPerLoop {
		t.Fatalf("%d keys in %d slots", d.n.Load(), len(d.slots))
	}
	// A full set takes no new key: asking twice finds it absent both times.
	first := d.seenBefore(dupKey{7, 7})
	second := d.seenBefore(dupKey{7, 7})
	if first || second {
		t.Fatal("a full set remembered a new key")
	}
}

// A job on a new height whose id is lower than the latest job's (a
// jobmaker restarted within the second of its last job, another jobmaker,
// a clock step back) is the latest: new sessions get it, and the stale job
// it replaced is never handed out. It also outlives the job with the higher
// id at expiry.
func TestJobRepoNewHeightWithALowerID(t *testing.T) {
	const t0 = 1_700_000_000
	r := NewJobRepo(300, 30, 8, 2)
	old, _, err := r.Add(jobAt(t0, 0x201, 10, 0), t0)
	if err != nil {
		t.Fatal(err)
	}
	j, send, err := r.Add(jobAt(t0, 0x001, 11, 0), t0)
	if err != nil || !send {
		t.Fatalf("new height with a lower id: send %v err %v", send, err)
	}
	if r.Latest() != j || j.Stale() || !old.Stale() {
		t.Fatalf("latest is job %x (stale %v), want the new height's %x", r.Latest().ID, r.Latest().Stale(), j.ID)
	}
	// Same height, lower id again (a replayed older job): not the latest.
	if _, send, err := r.Add(jobAt(t0-1, 0x301, 11, 0), t0); err != nil || send || r.Latest() != j {
		t.Fatalf("older job at the same height: send %v err %v latest %x", send, err, r.Latest().ID)
	}
	_, expired := r.Tick(t0 + 10000)
	if r.Latest() != j || j.Expired() {
		t.Fatalf("the latest job expired (%d expired, %d left)", len(expired), r.Len())
	}
}

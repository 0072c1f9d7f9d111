package sv2proxy

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hashpool/hashpool/codec/sv2"
)

// fuzzRig is a translator with a working shared channel and one miner whose
// input is fed by hand: no sockets, so a fuzzer can drive the line handling.
type fuzzRig struct {
	t  *Translator
	m  *miner
	up *upconn
}

func newFuzzRig(tb testing.TB, mode Mode) *fuzzRig {
	tr, err := New(Options{Mode: mode, Upstreams: []Upstream{{Addr: "127.0.0.1:1", Authority: [32]byte{1}, User: "farm"}},
		MinerQueue: 4096, UpstreamQueue: 1 << 14, MaxPending: 64})
	if err != nil {
		tb.Fatal(err)
	}
	up := &upconn{addr: "fuzz", user: "farm", out: make(chan []byte, 1<<14), done: make(chan struct{})}
	tr.up = up
	m, _ := tr.addMiner(nil)
	tr.mu.Lock()
	if mode == SharedChannel {
		tr.shared = tr.openChannel(nil)
		<-up.out
		tr.channelOpened(&sv2.OpenExtendedMiningChannelSuccess{RequestID: tr.shared.reqID, ChannelID: 1, Target: u256(maxTarget()),
			ExtranonceSize: 10, ExtranoncePrefix: []byte{1, 2}})
		tr.handleUpstream(up, sv2.MsgNewExtendedMiningJob, sv2.AppendNewExtendedMiningJob(nil, testJob(1, 1, 0))[sv2.HeaderLen:])
		tr.handleUpstream(up, sv2.MsgSetNewPrevHash, sv2.AppendSetNewPrevHash(nil, &sv2.SetNewPrevHash{ChannelID: 1, JobID: 1, MinNTime: 5, NBits: 7})[sv2.HeaderLen:])
	}
	tr.mu.Unlock()
	return &fuzzRig{t: tr, m: m, up: up}
}

func maxTarget() (t [4]uint64) {
	for i := range t {
		t[i] = ^uint64(0)
	}
	return t
}

// feed gives the miner input in two reads (cut at split), as run does, and
// returns what it wrote, whether it closed, and the frames sent upstream.
func (r *fuzzRig) feed(in []byte, split int) (out [][]byte, closed bool, frames [][]byte) {
	split = min(max(split, 0), len(in))
	var buf []byte
	for _, part := range [][]byte{in[:split], in[split:]} {
		buf = append(buf, part...)
		used, err := r.m.consume(buf)
		buf = buf[:copy(buf, buf[used:])]
		if err != nil {
			closed = true
			break
		}
	}
	for {
		select {
		case l := <-r.m.out:
			out = append(out, l)
		case f := <-r.up.out:
			frames = append(frames, f)
		default:
			return out, closed, frames
		}
	}
}

var fuzzSeeds = []string{
	`{"id":1,"method":"mining.subscribe","params":["cgminer/4.10"]}` + "\n" +
		`{"id":2,"method":"mining.authorize","params":["farm.w1","x"]}` + "\n" +
		`{"id":3,"method":"mining.submit","params":["farm.w1","1","00000001","00000005","deadbeef"]}` + "\n",
	`{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"1fffe000"}]}` + "\n" +
		`{"id":2,"method":"mining.subscribe","params":[]}` + "\n{\"id\":3,\"method\":\"mining.authorize\",\"params\":[\"a.b\",\"\"]}\n" +
		`{"id":"s","method":"mining.submit","params":["a.b","1","0000000000","5","1","00002000"]}` + "\n",
	`{"id":4,"method":"mining.submit","params":["x","1","00000001","5","1"]}` + "\n",
	"\r\n  \n{\"id\":null}\n[1,2]\n{\"method\":\"mining.extranonce.subscribe\",\"params\":[],\"id\":9}\n",
	`{"id":5,"method":"mining.suggest_difficulty","params":[0.001]}` + "\nnot json\n",
}

// FuzzMinerLines drives a miner's line handling with arbitrary input split
// across two reads: it never panics, everything it writes is one JSON line,
// and every frame it sends upstream decodes.
func FuzzMinerLines(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s), i*7)
	}
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		r := newFuzzRig(t, SharedChannel)
		out, _, frames := r.feed(in, split)
		for _, l := range out {
			if len(l) == 0 || l[len(l)-1] != '\n' || bytes.Count(l, []byte("\n")) != 1 || !json.Valid(l) {
				t.Fatalf("bad output line %q", l)
			}
		}
		for _, fr := range frames {
			h, err := sv2.ParseHeader(fr)
			if err != nil || int(h.Length) != len(fr)-sv2.HeaderLen {
				t.Fatalf("bad frame %x", fr)
			}
			switch h.MsgType {
			case sv2.MsgSubmitSharesExtended:
				var s sv2.SubmitSharesExtended
				if err := sv2.DecodeSubmitSharesExtended(fr[sv2.HeaderLen:], &s); err != nil || s.ChannelID != 1 || len(s.Extranonce) != 10 {
					t.Fatalf("bad share frame %+v %v", s, err)
				}
			case sv2.MsgOpenExtendedMiningChannel, sv2.MsgCloseChannel:
			default:
				t.Fatalf("unexpected %s upstream", sv2.MsgName(h.MsgType))
			}
		}
	})
}

// TestSeedsAnswered checks the fuzz seeds do what they say: the first seed's
// share goes upstream as one SubmitSharesExtended.
func TestSeedsAnswered(t *testing.T) {
	r := newFuzzRig(t, SharedChannel)
	out, closed, frames := r.feed([]byte(fuzzSeeds[0]), 10)
	if closed || len(out) < 4 || len(frames) != 1 {
		t.Fatalf("out %q closed %v frames %d", out, closed, len(frames))
	}
	var s sv2.SubmitSharesExtended
	if err := sv2.DecodeSubmitSharesExtended(frames[0][sv2.HeaderLen:], &s); err != nil || s.Nonce != 0xdeadbeef || s.JobID != 1 || s.NTime != 5 {
		t.Fatalf("share %+v %v", s, err)
	}
	r = newFuzzRig(t, SharedChannel)
	if _, closed, _ := r.feed(bytes.Repeat([]byte("garbage\n"), 20), 3); !closed {
		t.Fatal("a miner sending garbage was not closed")
	}
}

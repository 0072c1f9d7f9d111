package engine

import (
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hashpool/hashpool/codec/sv2"
)

// sv2FuzzConn stands in for a gnet connection: what the SV2 handler writes
// goes to out; any other method of the nil gnet.Conn panics, so a handler
// path that reaches one is found.
type sv2FuzzConn struct {
	gnet.Conn
	out int
}

func (c *sv2FuzzConn) Write(b []byte) (int, error) { c.out += len(b); return len(b), nil }
func (c *sv2FuzzConn) OutboundBuffered() int       { return 0 }

// FuzzSV2Handle feeds arbitrary plaintext frames (as they come out of the
// Noise layer) to a fresh SV2 connection, before or after SetupConnection,
// and checks that the handler never panics, that what it queues for the
// client is whole frames, and that every channel it opened is released.
func FuzzSV2Handle(f *testing.F) {
	mt := maxTarget()
	seeds := [][]byte{
		sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Vendor: []byte("fuzz")}),
		sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 1, UserIdentity: []byte("alice.f"), MaxTarget: mt, MinExtranonceSize: 4}),
		sv2.AppendOpenStandardMiningChannel(nil, &sv2.OpenStandardMiningChannel{RequestID: 2, UserIdentity: []byte("alice.g"), NominalHashRate: 1e12, MaxTarget: mt}),
		sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: 2, SequenceNumber: 1, Extranonce: make([]byte, 8)}),
		sv2.AppendSubmitSharesStandard(nil, &sv2.SubmitSharesStandard{ChannelID: 3, SequenceNumber: 2}),
		sv2.AppendUpdateChannel(nil, &sv2.UpdateChannel{ChannelID: 2, MaximumTarget: mt}),
		sv2.AppendCloseChannel(nil, &sv2.CloseChannel{ChannelID: sv2GroupID}),
		sv2.AppendSetCustomMiningJob(nil, &sv2.SetCustomMiningJob{ChannelID: 2}),
		sv2.AppendSetTarget(nil, &sv2.SetTarget{ChannelID: 2}),
	}
	all := []byte{}
	for _, s := range seeds {
		all = append(all, s...)
	}
	f.Add(all, true)
	f.Add(all, false)
	for _, s := range seeds {
		f.Add(s, true)
	}
	k := newSV2Keys(f)
	o := testOptions(f)
	o.SV2Responder = k.responder(f, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	off := newOffline(f, o)
	_, ns := sv2SessionPair(f, o.SV2Responder, k.pub) // the handler only seals with it
	now := time.Now().Unix()
	f.Fuzz(func(t *testing.T, in []byte, setUp bool) {
		fc := &sv2FuzzConn{}
		sc := &sv2Conn{srv: off.srv, lp: off.lp, c: fc, ns: ns, state: sv2Setup, nextID: sv2GroupID + 1, ip: netipLoopback}
		if setUp {
			sc.state = sv2Ready
		}
		off.lp.sv2.plain = off.lp.sv2.plain[:0]
		for len(in) >= sv2.HeaderLen && !sc.closed {
			h, n, err := sv2.Split(in, o.SV2MaxPayload)
			if err != nil || n == 0 {
				break
			}
			if !sc.handle(h, in[sv2.HeaderLen:n], now) {
				break
			}
			in = in[n:]
		}
		for _, ch := range sc.chans {
			sc.flushAcks(ch)
		}
		for p := off.lp.sv2.plain; len(p) > 0; {
			h, n, err := sv2.Split(p, sv2.MaxU24)
			if err != nil || n == 0 {
				t.Fatalf("the handler queued a broken frame: %x", p)
			}
			if sv2.CheckHeader(h) != nil {
				t.Fatalf("the handler queued %+v", h)
			}
			p = p[n:]
		}
		chans := off.srv.metrics.SV2Channels.Load()
		open := int64(len(sc.chans))
		off.srv.sv2Close(sc)
		if got := off.srv.metrics.SV2Channels.Load(); got != chans-open {
			t.Fatalf("%d channels open after close, want %d", got, chans-open)
		}
		off.lp.batch.buf, off.lp.batch.ends = off.lp.batch.buf[:0], off.lp.batch.ends[:0]
	})
}

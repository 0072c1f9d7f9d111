package noise

import (
	"math"
	"testing"

	"github.com/hashpool/hashpool/codec/sv2"
)

// BenchmarkHandshake is one full handshake: both sides' key generation,
// three ECDHs each side (ee, es and the EllSwift decodes) and the
// certificate's BIP340 verification.
func BenchmarkHandshake(b *testing.B) {
	p := newPKI(b, "bench", 0, math.MaxUint32)
	r, _ := NewResponder(p.static, p.cert, nil)
	auth := XOnly(p.authority)
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		i, err := NewInitiator(auth, nil, -1)
		if err != nil {
			b.Fatal(err)
		}
		act1, _ := i.WriteAct1(nil)
		act2, _, err := r.Respond(nil, act1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := i.ReadAct2(act2, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResponder is the pool's share of a handshake.
func BenchmarkResponder(b *testing.B) {
	p := newPKI(b, "bench", 0, math.MaxUint32)
	r, _ := NewResponder(p.static, p.cert, nil)
	i, _ := NewInitiator(XOnly(p.authority), nil, -1)
	act1, _ := i.WriteAct1(nil)
	out := make([]byte, 0, Act2Len)
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		if _, _, err := r.Respond(out[:0], act1); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTransport(b *testing.B, frame []byte) {
	p := newPKI(b, "bench", 0, math.MaxUint32)
	cli, srv, _ := handshake(b, p, XOnly(p.authority), testNow)
	ct := make([]byte, 0, len(frame)+1024)
	work := make([]byte, len(frame)+1024)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		ct, _ = cli.Seal(ct[:0], frame)
		h, err := srv.OpenHeader(ct)
		if err != nil {
			b.Fatal(err)
		}
		w := work[:CiphertextLen(int(h.Length))]
		copy(w, ct[HeaderCiphertextLen:])
		if _, err := srv.OpenPayload(w, int(h.Length)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransport seals and opens one frame (both directions' work).
func BenchmarkTransport(b *testing.B) {
	share := sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: 1, Extranonce: make([]byte, 8)})
	b.Run("share", func(b *testing.B) { benchTransport(b, share) })
	b.Run("job-1KB", func(b *testing.B) { benchTransport(b, frameOf(900)) })
	b.Run("64KB", func(b *testing.B) { benchTransport(b, frameOf(65000)) })
}

// BenchmarkSessionState reports the heap transport sessions keep (B/op for
// a connected pair, so half is one connection's): each Session and its two
// ChaCha20-Poly1305 keys, keyed directly (the handshake's transient
// allocations are not kept).
func BenchmarkSessionState(b *testing.B) {
	b.ReportAllocs()
	var keep *Session
	for n := 0; n < b.N; n++ {
		keep, _ = sessionPair()
	}
	_ = keep
}

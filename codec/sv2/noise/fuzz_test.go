package noise

import (
	"bytes"
	"math"
	"testing"

	"github.com/hashpool/hashpool/codec/sv2"
)

// FuzzResponder feeds garbage first messages to a responder: each either
// fails with ErrHandshakeLength or (any 64 bytes are a valid EllSwift key)
// yields an answer of Act2Len bytes; nothing panics.
func FuzzResponder(f *testing.F) {
	p := newPKI(f, "fuzz", 0, math.MaxUint32)
	r, _ := NewResponder(p.static, p.cert, newDetRand("fuzz responder"))
	i, _ := NewInitiator(XOnly(p.authority), nil, -1)
	act1, _ := i.WriteAct1(nil)
	f.Add(act1)
	f.Add(make([]byte, Act1Len))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, s, err := r.Respond(nil, in)
		if len(in) != Act1Len {
			if err != ErrHandshakeLength || s != nil || len(out) != 0 {
				t.Fatalf("len %d: %v", len(in), err)
			}
			return
		}
		if err != nil || len(out) != Act2Len || s == nil {
			t.Fatalf("64-byte act1: %v, %d", err, len(out))
		}
	})
}

// FuzzInitiator feeds garbage second messages to an initiator: never a
// panic, never a session.
func FuzzInitiator(f *testing.F) {
	p := newPKI(f, "fuzz", 0, math.MaxUint32)
	r, _ := NewResponder(p.static, p.cert, nil)
	i, _ := NewInitiator(XOnly(p.authority), nil, -1)
	act1, _ := i.WriteAct1(nil)
	act2, _, _ := r.Respond(nil, act1)
	f.Add(act2)
	f.Add(act2[:100])
	base, _ := NewInitiator(XOnly(p.authority), newDetRand("fuzz initiator"), -1)
	base.WriteAct1(nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		i := *base // the state after act 1 (k is still empty), without a new key per input
		if s, err := i.ReadAct2(in, testNow); err == nil || s != nil {
			t.Fatalf("garbage act2 accepted: %v", err)
		}
	})
}

// FuzzTransportOpen feeds garbage ciphertext to a session's decrypter, as
// a header and as a payload of each plausible length: always an error,
// never a panic.
func FuzzTransportOpen(f *testing.F) {
	p := newPKI(f, "fuzz", 0, math.MaxUint32)
	// Failed decryptions do not advance the nonce, so one session serves
	// every input.
	// The seeds are real ciphertexts of another session.
	_, srv, err := handshake(f, p, XOnly(p.authority), testNow)
	if err != nil {
		f.Fatal(err)
	}
	other, _, _ := handshake(f, p, XOnly(p.authority), testNow)
	ct, _ := other.Seal(nil, frameOf(40))
	f.Add(ct, uint16(40))
	f.Add(ct[:HeaderCiphertextLen], uint16(0))
	f.Add([]byte{}, uint16(65535))
	f.Fuzz(func(t *testing.T, in []byte, plain uint16) {
		if _, err := srv.OpenHeader(in); err == nil {
			t.Fatal("garbage header opened")
		}
		buf := append([]byte(nil), in...)
		if _, err := srv.OpenPayload(buf, int(plain)); err == nil && len(in) > 0 {
			t.Fatal("garbage payload opened")
		}
	})
}

// sessionPair returns two connected sessions keyed directly (no handshake),
// cheap enough for one pair per fuzz input.
func sessionPair() (cli, srv *Session) {
	k1, k2 := [32]byte{1}, [32]byte{2}
	cli, srv = &Session{}, &Session{}
	cli.send.initializeKey(&k1)
	srv.recv.initializeKey(&k1)
	srv.send.initializeKey(&k2)
	cli.recv.initializeKey(&k2)
	return cli, srv
}

// FuzzOpenFrame delivers a sealed stream of frames, XORed with the fuzzer's
// bytes, in two parts: an unmodified stream yields every frame intact; a
// modified one yields intact frames up to an error; nothing panics.
func FuzzOpenFrame(f *testing.F) {
	frames := [][]byte{frameOf(0), frameOf(40), sv2.AppendHeader(nil, sv2.Header{MsgType: sv2.MsgSetupConnection}), frameOf(1000)}
	f.Add([]byte{}, uint16(30))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(500))
	f.Add([]byte{0xff}, uint16(0))
	f.Fuzz(func(t *testing.T, mask []byte, cut uint16) {
		cli, srv := sessionPair()
		var stream []byte
		for _, fr := range frames {
			stream, _ = cli.Seal(stream, fr)
		}
		changed := false
		for i, m := range mask {
			if i < len(stream) && m != 0 {
				stream[i] ^= m
				changed = true
			}
		}
		c := int(cut) % (len(stream) + 1)
		buf := append([]byte(nil), stream[:c]...)
		rest := stream[c:]
		got := 0
		for i := 0; i < 64; i++ {
			h, pl, n, err := srv.OpenFrame(buf, 4096)
			if err != nil {
				if !changed {
					t.Fatalf("intact stream: %v", err)
				}
				return
			}
			if n == 0 {
				if len(rest) == 0 {
					break
				}
				buf = append(buf, rest...)
				rest = nil
				continue
			}
			if !bytes.Equal(append(sv2.AppendHeader(nil, h), pl...), frames[got]) {
				t.Fatalf("frame %d differs", got)
			}
			got++
			buf = buf[n:]
		}
		if !changed && got != len(frames) {
			t.Fatalf("intact stream gave %d frames", got)
		}
	})
}

package noise

import (
	"math"
	"testing"
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

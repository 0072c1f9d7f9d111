package noise

import (
	"crypto/rand"
	"errors"
	"io"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
)

// Handshake message lengths.
const (
	// Act1Len is the initiator's message: its ephemeral EllSwift key.
	Act1Len = EllSwiftLen
	// Act2Len is the responder's message: ephemeral key (64), encrypted
	// static key (64+16), encrypted SIGNATURE_NOISE_MESSAGE (74+16).
	Act2Len = EllSwiftLen + EllSwiftLen + MACLen + CertLen + MACLen
)

// DefaultClockSkew is how far the initiator's clock may disagree with the
// certificate's window (SRI allows the same 10 seconds).
const DefaultClockSkew = 10 * time.Second

// Handshake errors.
var (
	// ErrHandshakeLength is returned for a handshake message of the wrong
	// length (a truncated or padded message).
	ErrHandshakeLength = errors.New("noise: handshake message has the wrong length")
	// ErrHandshakeState is returned when a handshake step is called twice or
	// out of order.
	ErrHandshakeState = errors.New("noise: handshake step out of order")
)

// Initiator runs the client side of the handshake: WriteAct1, then ReadAct2.
type Initiator struct {
	sym       symmetricState
	e         *btcec.PrivateKey
	eEll      [EllSwiftLen]byte
	authority [32]byte
	skew      time.Duration
	step      int

	// ServerKey is the server's x-only static key, set by ReadAct2 once the
	// certificate is verified.
	ServerKey [32]byte
	// Cert is the server's certificate, set by ReadAct2.
	Cert Certificate
}

// NewInitiator returns an initiator that accepts only servers whose
// certificate the authority key (x-only) signed. rnd nil means crypto/rand;
// skew < 0 means DefaultClockSkew.
func NewInitiator(authority [32]byte, rnd io.Reader, skew time.Duration) (*Initiator, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if skew < 0 {
		skew = DefaultClockSkew
	}
	i := &Initiator{authority: authority, skew: skew}
	var err error
	if i.e, i.eEll, err = generateKey(rnd); err != nil {
		return nil, err
	}
	i.sym.init()
	return i, nil
}

// WriteAct1 appends the first handshake message (-> e) to dst.
func (i *Initiator) WriteAct1(dst []byte) ([]byte, error) {
	if i.step != 0 {
		return dst, ErrHandshakeState
	}
	i.step = 1
	dst = append(dst, i.eEll[:]...)
	i.sym.mixHash(i.eEll[:])
	// EncryptAndHash of the empty payload with k empty: MixHash("").
	return i.sym.encryptAndHash(dst, nil)
}

// ReadAct2 processes the responder's message (<- e, ee, s, es, certificate),
// verifies the certificate against the authority key at time now, and
// returns the transport session. Any error means the connection must be
// closed.
func (i *Initiator) ReadAct2(msg []byte, now time.Time) (*Session, error) {
	if i.step != 1 {
		return nil, ErrHandshakeState
	}
	i.step = 2
	if len(msg) != Act2Len {
		return nil, ErrHandshakeLength
	}
	var re, rs [EllSwiftLen]byte
	copy(re[:], msg[:EllSwiftLen])
	i.sym.mixHash(re[:])
	ee, err := ecdh(i.e, &i.eEll, &re, true)
	if err != nil {
		return nil, err
	}
	i.sym.mixKey(ee)
	var buf [CertLen]byte
	p, err := i.sym.decryptAndHash(buf[:0], msg[EllSwiftLen:2*EllSwiftLen+MACLen])
	if err != nil {
		return nil, err
	}
	copy(rs[:], p)
	es, err := ecdh(i.e, &i.eEll, &rs, true)
	if err != nil {
		return nil, err
	}
	i.sym.mixKey(es)
	p, err = i.sym.decryptAndHash(buf[:0], msg[2*EllSwiftLen+MACLen:])
	if err != nil {
		return nil, err
	}
	cert, err := ParseCertificate(p)
	if err != nil {
		return nil, err
	}
	server, err := ellswiftX(&rs)
	if err != nil {
		return nil, err
	}
	if err := cert.Verify(i.authority, server, now, i.skew); err != nil {
		return nil, err
	}
	i.ServerKey, i.Cert = server, cert
	c1, c2 := i.sym.split()
	return &Session{send: c1, recv: c2}, nil
}

// Responder holds a pool server's static key, its EllSwift encoding and
// certificate; one Responder serves every connection (Respond keeps no
// state in it).
type Responder struct {
	static    *btcec.PrivateKey
	staticEll [EllSwiftLen]byte
	cert      [CertLen]byte
	rnd       io.Reader
}

// NewResponder returns a responder for the static key and its certificate.
// rnd nil means crypto/rand.
func NewResponder(static *btcec.PrivateKey, cert Certificate, rnd io.Reader) (*Responder, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if static == nil || static.Key.IsZero() {
		return nil, ErrBadKey
	}
	r := &Responder{static: static, rnd: rnd}
	var err error
	if r.staticEll, err = ellswiftEncode(rnd, static); err != nil {
		return nil, err
	}
	AppendCertificate(r.cert[:0], &cert)
	return r, nil
}

// Certificate returns the certificate the responder sends, so that a
// server can check its validity window and renew it before it ends (the
// initiator refuses an expired one; the responder does not look).
func (r *Responder) Certificate() Certificate {
	c, _ := ParseCertificate(r.cert[:])
	return c
}

// Respond processes the initiator's first message and appends the answer
// (Act2Len bytes) to dst, returning the transport session. Any error means
// the connection must be closed without an answer.
func (r *Responder) Respond(dst, act1 []byte) ([]byte, *Session, error) {
	if len(act1) != Act1Len {
		return dst, nil, ErrHandshakeLength
	}
	var sym symmetricState
	sym.init()
	var re [EllSwiftLen]byte
	copy(re[:], act1)
	sym.mixHash(re[:])
	if _, err := sym.decryptAndHash(nil, nil); err != nil { // MixHash("")
		return dst, nil, err
	}
	e, eEll, err := generateKey(r.rnd)
	if err != nil {
		return dst, nil, err
	}
	off := len(dst)
	dst = append(dst, eEll[:]...)
	sym.mixHash(eEll[:])
	ee, err := ecdh(e, &eEll, &re, false)
	if err != nil {
		return dst[:off], nil, err
	}
	sym.mixKey(ee)
	if dst, err = sym.encryptAndHash(dst, r.staticEll[:]); err != nil {
		return dst[:off], nil, err
	}
	es, err := ecdh(r.static, &r.staticEll, &re, false)
	if err != nil {
		return dst[:off], nil, err
	}
	sym.mixKey(es)
	if dst, err = sym.encryptAndHash(dst, r.cert[:]); err != nil {
		return dst[:off], nil, err
	}
	c1, c2 := sym.split()
	return dst, &Session{send: c2, recv: c1}, nil
}

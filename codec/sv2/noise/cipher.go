package noise

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"

	"golang.org/x/crypto/chacha20poly1305"
)

// MACLen is the Poly1305 tag length.
const MACLen = 16

// Cipher errors.
var (
	// ErrMAC is returned when a ciphertext fails authentication: the
	// connection must be closed.
	ErrMAC = errors.New("noise: message authentication failed")
	// ErrNonceExhausted is returned when a cipher has used every nonce; the
	// spec has no rekey, so the connection must be closed.
	ErrNonceExhausted = errors.New("noise: cipher nonce exhausted")
)

// cipherState is Noise's CipherState (§4.4.1): key k, nonce n.
type cipherState struct {
	aead  cipher.AEAD // nil while k is empty
	n     uint64
	nonce [chacha20poly1305.NonceSize]byte // kept here so Seal/Open do not allocate one
}

func (c *cipherState) initializeKey(k *[32]byte) {
	a, err := chacha20poly1305.New(k[:])
	if err != nil {
		panic("noise: chacha20poly1305.New with a 32-byte key: " + err.Error()) // unreachable
	}
	c.aead, c.n = a, 0
}

func (c *cipherState) setNonce() error {
	// n = 2^64-1 is reserved by Noise; never use it.
	if c.n == math.MaxUint64 {
		return ErrNonceExhausted
	}
	binary.LittleEndian.PutUint64(c.nonce[4:], c.n)
	return nil
}

// encryptWithAd appends ENCRYPT(k, n++, ad, pt) to dst (pt when k is empty).
// dst must not overlap pt unless dst[len(dst):] starts exactly at pt.
func (c *cipherState) encryptWithAd(dst, ad, pt []byte) ([]byte, error) {
	if c.aead == nil {
		return append(dst, pt...), nil
	}
	if err := c.setNonce(); err != nil {
		return dst, err
	}
	dst = c.aead.Seal(dst, c.nonce[:], pt, ad)
	c.n++
	return dst, nil
}

// decryptWithAd appends DECRYPT(k, n++, ad, ct) to dst; on an authentication
// failure n is not incremented (§4.4.1).
func (c *cipherState) decryptWithAd(dst, ad, ct []byte) ([]byte, error) {
	if c.aead == nil {
		return append(dst, ct...), nil
	}
	if err := c.setNonce(); err != nil {
		return dst, err
	}
	out, err := c.aead.Open(dst, c.nonce[:], ct, ad)
	if err != nil {
		return dst, ErrMAC
	}
	c.n++
	return out, nil
}

// hmacHash is HMAC-SHA256(key, data...).
func hmacHash(key []byte, data ...[]byte) (out [32]byte) {
	m := hmac.New(sha256.New, key)
	for _, d := range data {
		m.Write(d)
	}
	m.Sum(out[:0])
	return out
}

// hkdf is the spec's HKDF(chaining_key, ikm) with two outputs (§4.4.2).
func hkdf(ck *[32]byte, ikm []byte) (o1, o2 [32]byte) {
	tmp := hmacHash(ck[:], ikm)
	o1 = hmacHash(tmp[:], []byte{1})
	o2 = hmacHash(tmp[:], o1[:], []byte{2})
	return o1, o2
}

// symmetricState is Noise's handshake state: chaining key, handshake hash
// and the handshake CipherState.
type symmetricState struct {
	ck, h [32]byte
	cs    cipherState
}

// ProtocolName is the Noise protocol name sv2-spec §4.5.1 defines.
const ProtocolName = "Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256"

// init: h = HASH(protocolName) (the name is over 32 bytes), ck = h,
// h = HASH(h), k empty.
func (s *symmetricState) init() {
	s.h = sha256.Sum256([]byte(ProtocolName))
	s.ck = s.h
	s.h = sha256.Sum256(s.h[:])
	s.cs = cipherState{}
}

func (s *symmetricState) mixHash(data []byte) {
	d := sha256.New()
	d.Write(s.h[:])
	d.Write(data)
	d.Sum(s.h[:0])
}

func (s *symmetricState) mixKey(ikm []byte) {
	var k [32]byte
	s.ck, k = hkdf(&s.ck, ikm)
	s.cs.initializeKey(&k)
}

func (s *symmetricState) encryptAndHash(dst, pt []byte) ([]byte, error) {
	off := len(dst)
	dst, err := s.cs.encryptWithAd(dst, s.h[:], pt)
	if err != nil {
		return dst, err
	}
	s.mixHash(dst[off:])
	return dst, nil
}

func (s *symmetricState) decryptAndHash(dst, ct []byte) ([]byte, error) {
	dst, err := s.cs.decryptWithAd(dst, s.h[:], ct)
	if err != nil {
		return dst, err
	}
	s.mixHash(ct)
	return dst, nil
}

// split returns the transport CipherStates: c1 for initiator → responder,
// c2 for responder → initiator.
func (s *symmetricState) split() (c1, c2 cipherState) {
	k1, k2 := hkdf(&s.ck, nil)
	c1.initializeKey(&k1)
	c2.initializeKey(&k2)
	return c1, c2
}

package noise

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// CertLen is the length of SIGNATURE_NOISE_MESSAGE: version U16,
// valid_from U32, not_valid_after U32, signature (64 bytes).
const CertLen = 2 + 4 + 4 + 64

// Certificate errors; Verify returns exactly one of them.
var (
	// ErrCertSignature is returned when the certificate's signature is not
	// the authority key's over this server's static key: a wrong authority
	// key configured, or a server impersonating the pool.
	ErrCertSignature = errors.New("noise: server certificate is not signed by the pool's authority key")
	// ErrCertNotYetValid is returned before valid_from (beyond the skew).
	ErrCertNotYetValid = errors.New("noise: server certificate is not valid yet (check both clocks)")
	// ErrCertExpired is returned after not_valid_after (beyond the skew).
	ErrCertExpired = errors.New("noise: server certificate has expired")
)

// Certificate is SIGNATURE_NOISE_MESSAGE: the pool authority's statement
// that a static key may serve for a time window (§4.5.3).
type Certificate struct {
	Version       uint16
	ValidFrom     uint32 // unix seconds
	NotValidAfter uint32 // unix seconds
	Signature     [64]byte
}

// signedHash is m = SHA-256(version || valid_from || not_valid_after ||
// server_public_key) with the key as its 32-byte x-only form (§4.5.3.1).
func (c *Certificate) signedHash(server [32]byte) [32]byte {
	var b [2 + 4 + 4 + 32]byte
	binary.LittleEndian.PutUint16(b[0:], c.Version)
	binary.LittleEndian.PutUint32(b[2:], c.ValidFrom)
	binary.LittleEndian.PutUint32(b[6:], c.NotValidAfter)
	copy(b[10:], server[:])
	return sha256.Sum256(b[:])
}

// SignCertificate returns a certificate for server's static key, valid from
// validFrom to notValidAfter (unix seconds), signed by the authority key.
func SignCertificate(authority, server *btcec.PrivateKey, version uint16, validFrom, notValidAfter uint32) (Certificate, error) {
	c := Certificate{Version: version, ValidFrom: validFrom, NotValidAfter: notValidAfter}
	m := c.signedHash(XOnly(server))
	sig, err := schnorr.Sign(authority, m[:])
	if err != nil {
		return Certificate{}, err
	}
	copy(c.Signature[:], sig.Serialize())
	return c, nil
}

// Verify checks that the certificate is the authority's signature over the
// server's x-only static key and that now lies in its validity window
// widened by skew on both sides.
func (c *Certificate) Verify(authority, server [32]byte, now time.Time, skew time.Duration) error {
	pk, err := schnorr.ParsePubKey(authority[:])
	if err != nil {
		return ErrCertSignature
	}
	sig, err := schnorr.ParseSignature(c.Signature[:])
	if err != nil {
		return ErrCertSignature
	}
	m := c.signedHash(server)
	if !sig.Verify(m[:], pk) {
		return ErrCertSignature
	}
	t, s := now.Unix(), int64(skew/time.Second)
	if t+s < int64(c.ValidFrom) {
		return ErrCertNotYetValid
	}
	if t-s > int64(c.NotValidAfter) {
		return ErrCertExpired
	}
	return nil
}

// AppendCertificate appends the 74-byte SIGNATURE_NOISE_MESSAGE.
func AppendCertificate(dst []byte, c *Certificate) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, c.Version)
	dst = binary.LittleEndian.AppendUint32(dst, c.ValidFrom)
	dst = binary.LittleEndian.AppendUint32(dst, c.NotValidAfter)
	return append(dst, c.Signature[:]...)
}

// ParseCertificate decodes a 74-byte SIGNATURE_NOISE_MESSAGE.
func ParseCertificate(b []byte) (Certificate, error) {
	var c Certificate
	if len(b) != CertLen {
		return c, ErrHandshakeLength
	}
	c.Version = binary.LittleEndian.Uint16(b[0:])
	c.ValidFrom = binary.LittleEndian.Uint32(b[2:])
	c.NotValidAfter = binary.LittleEndian.Uint32(b[6:])
	copy(c.Signature[:], b[10:])
	return c, nil
}

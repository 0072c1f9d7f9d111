package noise

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ellswift"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// EllSwiftLen is the length of an ElligatorSwift-encoded public key.
const EllSwiftLen = 64

// Key errors.
var (
	// ErrBadKey is returned for a private key of zero (or not below the
	// group order), or an x-only key that is not on the curve.
	ErrBadKey = errors.New("noise: invalid secp256k1 key")
	// ErrAuthorityKey is returned for a malformed authority key string.
	ErrAuthorityKey = errors.New("noise: authority key is not base58check of [1 0] || 32-byte x-only key")
)

// ellswiftEncode returns an ElligatorSwift encoding of the x coordinate of
// priv's public key (BIP324 "XElligatorSwift"): u and the case are drawn from
// rnd until XSwiftECInv finds a t. Each try succeeds with probability about
// 1/4, so 256 failures in a row mean a broken random source.
func ellswiftEncode(rnd io.Reader, priv *btcec.PrivateKey) ([EllSwiftLen]byte, error) {
	var out [EllSwiftLen]byte
	var x btcec.FieldVal
	x.SetByteSlice(priv.PubKey().SerializeCompressed()[1:])
	x.Normalize()
	var buf [33]byte
	for i := 0; i < 256; i++ {
		if _, err := io.ReadFull(rnd, buf[:]); err != nil {
			return out, err
		}
		var u btcec.FieldVal
		u.SetByteSlice(buf[:32])
		if u.Normalize().IsZero() {
			continue // XSwiftEC reads u = 0 as 1; never emit it
		}
		t := ellswift.XSwiftECInv(&u, &x, int(buf[32]&7))
		if t == nil {
			continue
		}
		t.Normalize()
		u.PutBytesUnchecked(out[:32])
		t.PutBytesUnchecked(out[32:])
		return out, nil
	}
	return out, errors.New("noise: no ElligatorSwift encoding found in 256 tries (random source broken?)")
}

// generateKey returns a fresh private key and its ElligatorSwift encoding
// (§4.3.1's key generation), drawing from rnd.
func generateKey(rnd io.Reader) (*btcec.PrivateKey, [EllSwiftLen]byte, error) {
	var sk [32]byte
	for i := 0; i < 16; i++ {
		if _, err := io.ReadFull(rnd, sk[:]); err != nil {
			return nil, [EllSwiftLen]byte{}, err
		}
		var d btcec.ModNScalar
		if overflow := d.SetBytes(&sk); overflow != 0 || d.IsZero() {
			continue // fail if d = 0 or d >= n; draw again
		}
		priv := btcec.PrivKeyFromScalar(&d)
		ell, err := ellswiftEncode(rnd, priv)
		return priv, ell, err
	}
	return nil, [EllSwiftLen]byte{}, ErrBadKey
}

// GenerateKey returns a new random secp256k1 private key (for a pool's static
// key or authority key) from crypto/rand.
func GenerateKey() (*btcec.PrivateKey, error) {
	priv, _, err := generateKey(rand.Reader)
	return priv, err
}

// ecdh is the spec's ECDH(k, rk) = v2_ecdh(k, ellswift_k, rk, initiator):
// BIP324's x-only ElligatorSwift ECDH followed by the tagged hash of both
// encodings (initiator's first) and the shared x.
func ecdh(priv *btcec.PrivateKey, ours, theirs *[EllSwiftLen]byte, initiator bool) ([]byte, error) {
	h, err := ellswift.V2Ecdh(priv, *theirs, *ours, initiator)
	if err != nil {
		return nil, ErrBadKey
	}
	return h[:], nil
}

// ellswiftX decodes an ElligatorSwift encoding to its 32-byte x coordinate
// (BIP324 XSwiftEC; every 64-byte string decodes).
func ellswiftX(e *[EllSwiftLen]byte) ([32]byte, error) {
	var u, t btcec.FieldVal
	u.SetByteSlice(e[:32])
	u.Normalize()
	t.SetByteSlice(e[32:])
	t.Normalize()
	x, err := ellswift.XSwiftEC(&u, &t)
	if err != nil {
		return [32]byte{}, ErrBadKey
	}
	var out [32]byte
	x.PutBytesUnchecked(out[:])
	return out, nil
}

// XOnly returns the 32-byte BIP340 x-only encoding of priv's public key.
func XOnly(priv *btcec.PrivateKey) [32]byte {
	var out [32]byte
	copy(out[:], schnorr.SerializePubKey(priv.PubKey()))
	return out
}

// authorityKeyVersion is the LE u16 prefix of an encoded authority key (§4.7).
var authorityKeyVersion = [2]byte{1, 0}

// FormatAuthorityKey encodes a pool authority x-only public key the way
// §4.7 publishes it: base58check of [1 0] || key.
func FormatAuthorityKey(key [32]byte) string {
	b := make([]byte, 0, 2+32+4)
	b = append(b, authorityKeyVersion[:]...)
	b = append(b, key[:]...)
	sum := checksum(b)
	return base58Encode(append(b, sum[:4]...))
}

// ParseAuthorityKey decodes FormatAuthorityKey's form and checks the key is
// on the curve.
func ParseAuthorityKey(s string) ([32]byte, error) {
	var key [32]byte
	b, ok := base58Decode(s)
	if !ok || len(b) != 2+32+4 || b[0] != authorityKeyVersion[0] || b[1] != authorityKeyVersion[1] {
		return key, ErrAuthorityKey
	}
	if sum := checksum(b[:34]); [4]byte(sum[:4]) != [4]byte(b[34:]) {
		return key, ErrAuthorityKey
	}
	copy(key[:], b[2:34])
	if _, err := schnorr.ParsePubKey(key[:]); err != nil {
		return key, ErrBadKey
	}
	return key, nil
}

func checksum(b []byte) [32]byte {
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// Big-number conversion, base 256 → base 58, on a small buffer.
	digits := make([]byte, 0, len(b)*138/100+1)
	for _, c := range b[zeros:] {
		carry := int(c)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, 0, zeros+len(digits))
	for i := 0; i < zeros; i++ {
		out = append(out, '1')
	}
	for i := len(digits) - 1; i >= 0; i-- {
		out = append(out, base58Alphabet[digits[i]])
	}
	return string(out)
}

func base58Decode(s string) ([]byte, bool) {
	if len(s) > 128 {
		return nil, false
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	bytes := make([]byte, 0, len(s))
	for i := zeros; i < len(s); i++ {
		v := -1
		for j := 0; j < len(base58Alphabet); j++ {
			if base58Alphabet[j] == s[i] {
				v = j
				break
			}
		}
		if v < 0 {
			return nil, false
		}
		carry := v
		for k := range bytes {
			carry += int(bytes[k]) * 58
			bytes[k] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			bytes = append(bytes, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros, zeros+len(bytes))
	for i := len(bytes) - 1; i >= 0; i-- {
		out = append(out, bytes[i])
	}
	return out, true
}

package noise

import (
	"errors"

	"github.com/hashpool/hashpool/codec/sv2"
)

// Transport sizes (§4.6).
const (
	// MaxCiphertextBlock is the largest Noise transport message.
	MaxCiphertextBlock = 65535
	// MaxPlaintextBlock is the plaintext one block carries.
	MaxPlaintextBlock = MaxCiphertextBlock - MACLen
	// HeaderCiphertextLen is an encrypted frame header: 6 bytes and a MAC.
	HeaderCiphertextLen = sv2.HeaderLen + MACLen
)

// ErrFrame is returned by Seal for a frame whose header length disagrees
// with its payload, and by OpenPayload for a ciphertext of the wrong length.
var ErrFrame = errors.New("noise: frame length does not match its header")

// CiphertextLen converts a payload's plaintext length to its ciphertext
// length: full 65519-byte blocks become 65535 bytes, a last partial block
// gains one MAC, and an empty payload has no ciphertext at all (§4.6's
// pt_len_to_ct_len).
func CiphertextLen(plain int) int {
	rem := plain % MaxPlaintextBlock
	if rem > 0 {
		rem += MACLen
	}
	return plain/MaxPlaintextBlock*MaxCiphertextBlock + rem
}

// Session is an established transport: one CipherState per direction. It is
// not safe for concurrent use; a connection's reader and writer may each use
// their own half (Seal only touches the send state, Open* only the receive
// state).
type Session struct {
	send, recv cipherState
	hdr        [sv2.HeaderLen]byte // OpenHeader's plaintext; a stack array would escape through the AEAD interface
	pending    bool                // OpenFrame decrypted a header whose payload has not all arrived
	ph         sv2.Header
}

// Seal appends the encryption of one plaintext Stratum V2 frame (header and
// payload, as codec/sv2's Append functions produce) to dst: the header as
// one AEAD message, then the payload in blocks. dst must not overlap frame.
// An error means the connection must be closed.
func (s *Session) Seal(dst, frame []byte) ([]byte, error) {
	h, err := sv2.ParseHeader(frame)
	if err != nil || int(h.Length) != len(frame)-sv2.HeaderLen {
		return dst, ErrFrame
	}
	off := len(dst)
	if dst, err = s.send.encryptWithAd(dst, nil, frame[:sv2.HeaderLen]); err != nil {
		return dst[:off], err
	}
	for p := frame[sv2.HeaderLen:]; len(p) > 0; {
		n := min(len(p), MaxPlaintextBlock)
		if dst, err = s.send.encryptWithAd(dst, nil, p[:n]); err != nil {
			return dst[:off], err
		}
		p = p[n:]
	}
	return dst, nil
}

// OpenHeader decrypts an encrypted frame header (its first
// HeaderCiphertextLen bytes) and returns it. The caller then checks
// h.Length against its limit and reads CiphertextLen(int(h.Length)) bytes
// for OpenPayload. ct is not modified.
func (s *Session) OpenHeader(ct []byte) (sv2.Header, error) {
	if len(ct) < HeaderCiphertextLen {
		return sv2.Header{}, ErrFrame
	}
	if _, err := s.recv.decryptWithAd(s.hdr[:0], nil, ct[:HeaderCiphertextLen]); err != nil {
		return sv2.Header{}, err
	}
	return sv2.ParseHeader(s.hdr[:])
}

// OpenPayload decrypts a payload's ciphertext in place and returns the
// plaintext, which aliases ct's first plain bytes. len(ct) must be
// CiphertextLen(plain).
func (s *Session) OpenPayload(ct []byte, plain int) ([]byte, error) {
	if plain < 0 || len(ct) != CiphertextLen(plain) {
		return nil, ErrFrame
	}
	w := 0
	for r := 0; r < len(ct); {
		n := min(len(ct)-r, MaxCiphertextBlock)
		blk := ct[r : r+n]
		p, err := s.recv.decryptWithAd(blk[:0], nil, blk)
		if err != nil {
			return nil, err
		}
		w += copy(ct[w:], p) // moves block 2.. down over the MACs
		r += n
	}
	return ct[:w], nil
}

// ErrFrameTooLarge is returned for a frame whose payload is over the
// caller's limit; the connection cannot continue.
var ErrFrameTooLarge = errors.New("noise: frame payload exceeds the configured maximum")

// OpenFrame finds and decrypts the first encrypted frame in buf, an event
// loop's buffered input (gnet's Peek). When buf does not hold the whole frame
// yet it returns n == 0 and remembers the header if it could already decrypt
// it (a header's nonce is used once), so the caller calls again with the
// same bytes and more. Otherwise it returns the header, the plaintext
// payload, decrypted in place and aliasing buf, and n, the bytes to discard.
// A payload over maxPayload is ErrFrameTooLarge as soon as the header is
// read. Any error leaves the session unusable.
func (s *Session) OpenFrame(buf []byte, maxPayload int) (h sv2.Header, payload []byte, n int, err error) {
	if !s.pending {
		if len(buf) < HeaderCiphertextLen {
			return h, nil, 0, nil
		}
		if s.ph, err = s.OpenHeader(buf); err != nil {
			return h, nil, 0, err
		}
		s.pending = true
	}
	h = s.ph
	if int(h.Length) > maxPayload {
		return h, nil, 0, ErrFrameTooLarge
	}
	n = HeaderCiphertextLen + CiphertextLen(int(h.Length))
	if len(buf) < n {
		return h, nil, 0, nil
	}
	if payload, err = s.OpenPayload(buf[HeaderCiphertextLen:n], int(h.Length)); err != nil {
		return h, nil, 0, err
	}
	s.pending = false
	return h, payload, n, nil
}

package sv2

import (
	"encoding/binary"
	"errors"
	"math"
)

// Bounds of the spec's variable-length types (§3.1).
const (
	MaxStr255 = 255
	MaxB32    = 32
	MaxB255   = 255
	MaxB64K   = 65535
	MaxB16M   = 1<<24 - 1
	MaxSeq255 = 255
	MaxSeq64K = 65535
	// MaxU24 is the largest value a U24 holds, hence the largest payload.
	MaxU24 = 1<<24 - 1
)

// U256 is a 256-bit unsigned integer as the spec serializes it: 32 bytes,
// little-endian (the raw byte order of a SHA-256 output).
type U256 = [32]byte

// Pubkey is a 32-byte x-only secp256k1 public key (BIP340).
type Pubkey = [32]byte

// OptionU32 is OPTION[U32]: a U32 that may be absent.
type OptionU32 struct {
	Valid bool
	V     uint32
}

// Decoding errors. Decoders return exactly these values (never wrapped) so
// that the hot path allocates nothing; the message type the caller was
// decoding gives the context.
var (
	// ErrShort is returned when a payload ends before its fields do.
	ErrShort = errors.New("sv2: payload shorter than its fields")
	// ErrBounds is returned when a length prefix exceeds its type's bound
	// (B0_32 over 32, OPTION over 1, ...).
	ErrBounds = errors.New("sv2: length prefix exceeds the field type's bound")
	// ErrTrailing is returned when bytes follow the last field of a message
	// that does not carry TLV extension fields.
	ErrTrailing = errors.New("sv2: trailing bytes after the message's last field")
)

// Reader reads the spec's data types from a payload. The first error sticks:
// later reads return zero values, and Err reports it. A Reader is a value
// type meant to live on the stack.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over p. Slices it returns alias p.
func NewReader(p []byte) Reader { return Reader{b: p} }

// Err returns the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Rest returns the unread bytes and consumes them.
func (r *Reader) Rest() []byte {
	b := r.b
	r.b = r.b[len(r.b):]
	return b
}

// Done returns the sticky error, or ErrTrailing if unread bytes remain.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return ErrTrailing
	}
	return nil
}

func (r *Reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = r.b[len(r.b):]
}

// Bytes reads n raw bytes (BYTES).
func (r *Reader) Bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(ErrShort)
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

// U8 reads a U8.
func (r *Reader) U8() uint8 {
	b := r.Bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// Bool reads a BOOL; only the least significant bit has meaning (§3.1).
func (r *Reader) Bool() bool { return r.U8()&1 == 1 }

// U16 reads a little-endian U16.
func (r *Reader) U16() uint16 {
	b := r.Bytes(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

// U24 reads a little-endian U24.
func (r *Reader) U24() uint32 {
	b := r.Bytes(3)
	if b == nil {
		return 0
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
}

// U32 reads a little-endian U32.
func (r *Reader) U32() uint32 {
	b := r.Bytes(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// U64 reads a little-endian U64.
func (r *Reader) U64() uint64 {
	b := r.Bytes(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// F32 reads an IEEE-754 binary32, little-endian.
func (r *Reader) F32() float32 { return math.Float32frombits(r.U32()) }

// U256 reads 32 bytes.
func (r *Reader) U256() (v U256) {
	if b := r.Bytes(32); b != nil {
		copy(v[:], b)
	}
	return v
}

// Pubkey reads a 32-byte x-only public key.
func (r *Reader) Pubkey() Pubkey { return r.U256() }

func (r *Reader) prefixed(n int, max int) []byte {
	if r.err != nil {
		return nil
	}
	if n > max {
		r.fail(ErrBounds)
		return nil
	}
	return r.Bytes(n)
}

// Str255 reads a STR0_255 (returned as bytes aliasing the payload).
func (r *Reader) Str255() []byte { return r.prefixed(int(r.U8()), MaxStr255) }

// B32 reads a B0_32; a length prefix over 32 is ErrBounds.
func (r *Reader) B32() []byte { return r.prefixed(int(r.U8()), MaxB32) }

// B255 reads a B0_255.
func (r *Reader) B255() []byte { return r.prefixed(int(r.U8()), MaxB255) }

// B64K reads a B0_64K.
func (r *Reader) B64K() []byte { return r.prefixed(int(r.U16()), MaxB64K) }

// B16M reads a B0_16M.
func (r *Reader) B16M() []byte { return r.prefixed(int(r.U24()), MaxB16M) }

// Seq255 reads the length prefix of a SEQ0_255 and checks that n elements
// of elemSize bytes each are present (elemSize 0 for variable-size T skips
// the check).
func (r *Reader) Seq255(elemSize int) int {
	n := int(r.U8())
	return r.seqCheck(n, elemSize)
}

// Seq64K reads the length prefix of a SEQ0_64K, as Seq255 does.
func (r *Reader) Seq64K(elemSize int) int {
	n := int(r.U16())
	return r.seqCheck(n, elemSize)
}

// Option reads the length prefix of an OPTION[T] (SEQ0_1): present or not;
// a prefix over 1 is ErrBounds.
func (r *Reader) Option() bool {
	n := r.U8()
	if n > 1 {
		r.fail(ErrBounds)
		return false
	}
	return n == 1
}

func (r *Reader) seqCheck(n, elemSize int) int {
	if r.err != nil {
		return 0
	}
	if elemSize > 0 && n*elemSize > len(r.b) {
		r.fail(ErrShort)
		return 0
	}
	return n
}

// OptionU32 reads an OPTION[U32].
func (r *Reader) OptionU32() OptionU32 {
	if !r.Option() {
		return OptionU32{}
	}
	v := r.U32()
	return OptionU32{Valid: r.err == nil, V: v}
}

// AppendU8 appends a U8.
func AppendU8(dst []byte, v uint8) []byte { return append(dst, v) }

// AppendBool appends a BOOL (0 or 1).
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendU16 appends a little-endian U16.
func AppendU16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }

// AppendU24 appends the low 24 bits of v, little-endian.
func AppendU24(dst []byte, v uint32) []byte { return append(dst, byte(v), byte(v>>8), byte(v>>16)) }

// AppendU32 appends a little-endian U32.
func AppendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }

// AppendU64 appends a little-endian U64.
func AppendU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }

// AppendF32 appends an IEEE-754 binary32, little-endian.
func AppendF32(dst []byte, v float32) []byte { return AppendU32(dst, math.Float32bits(v)) }

// AppendU256 appends 32 bytes.
func AppendU256(dst []byte, v *U256) []byte { return append(dst, v[:]...) }

func clip(b []byte, max int) []byte {
	if len(b) > max {
		return b[:max]
	}
	return b
}

// AppendStr255 appends a STR0_255; bytes past 255 are cut.
func AppendStr255(dst, s []byte) []byte {
	s = clip(s, MaxStr255)
	return append(append(dst, byte(len(s))), s...)
}

// AppendB32 appends a B0_32; bytes past 32 are cut.
func AppendB32(dst, b []byte) []byte {
	b = clip(b, MaxB32)
	return append(append(dst, byte(len(b))), b...)
}

// AppendB255 appends a B0_255; bytes past 255 are cut.
func AppendB255(dst, b []byte) []byte {
	b = clip(b, MaxB255)
	return append(append(dst, byte(len(b))), b...)
}

// AppendB64K appends a B0_64K; bytes past 65535 are cut.
func AppendB64K(dst, b []byte) []byte {
	b = clip(b, MaxB64K)
	return append(AppendU16(dst, uint16(len(b))), b...)
}

// AppendB16M appends a B0_16M; bytes past 2^24-1 are cut.
func AppendB16M(dst, b []byte) []byte {
	b = clip(b, MaxB16M)
	return append(AppendU24(dst, uint32(len(b))), b...)
}

// AppendOptionU32 appends an OPTION[U32].
func AppendOptionU32(dst []byte, v OptionU32) []byte {
	if !v.Valid {
		return append(dst, 0)
	}
	return AppendU32(append(dst, 1), v.V)
}

// AppendSeq255U256 appends a SEQ0_255[U256]; elements past 255 are cut.
func AppendSeq255U256(dst []byte, s []U256) []byte {
	if len(s) > MaxSeq255 {
		s = s[:MaxSeq255]
	}
	dst = append(dst, byte(len(s)))
	for i := range s {
		dst = append(dst, s[i][:]...)
	}
	return dst
}

// AppendSeq64KU32 appends a SEQ0_64K[U32]; elements past 65535 are cut.
func AppendSeq64KU32(dst []byte, s []uint32) []byte {
	if len(s) > MaxSeq64K {
		s = s[:MaxSeq64K]
	}
	dst = AppendU16(dst, uint16(len(s)))
	for _, v := range s {
		dst = AppendU32(dst, v)
	}
	return dst
}

// Seq255U256 reads a SEQ0_255[U256], appending to dst[:0].
func (r *Reader) Seq255U256(dst []U256) []U256 {
	dst = dst[:0]
	n := r.Seq255(32)
	for i := 0; i < n; i++ {
		dst = append(dst, r.U256())
	}
	return dst
}

// Seq64KU32 reads a SEQ0_64K[U32], appending to dst[:0].
func (r *Reader) Seq64KU32(dst []uint32) []uint32 {
	dst = dst[:0]
	n := r.Seq64K(4)
	for i := 0; i < n; i++ {
		dst = append(dst, r.U32())
	}
	return dst
}

package sv2

import (
	"errors"
	"io"
)

// HeaderLen is the length of a frame header: extension_type U16, msg_type U8,
// msg_length U24 (§3.2).
const HeaderLen = 6

// ChannelBit is the channel_msg bit of extension_type (its most significant
// bit): the payload starts with the U32 channel_id the message is for.
const ChannelBit uint16 = 0x8000

// Header is a decoded frame header.
type Header struct {
	// ExtensionType is the raw field, channel_msg bit included.
	ExtensionType uint16
	MsgType       uint8
	// Length is the payload length (msg_length), at most MaxU24.
	Length uint32
}

// ChannelMsg reports whether the channel_msg bit is set.
func (h Header) ChannelMsg() bool { return h.ExtensionType&ChannelBit != 0 }

// Extension returns the extension id without the channel_msg bit (0 for the
// core protocols).
func (h Header) Extension() uint16 { return h.ExtensionType &^ ChannelBit }

// ParseHeader decodes the first HeaderLen bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrShort
	}
	return Header{
		ExtensionType: uint16(b[0]) | uint16(b[1])<<8,
		MsgType:       b[2],
		Length:        uint32(b[3]) | uint32(b[4])<<8 | uint32(b[5])<<16,
	}, nil
}

// AppendHeader appends h; Length is cut to 24 bits.
func AppendHeader(dst []byte, h Header) []byte {
	return AppendU24(append(AppendU16(dst, h.ExtensionType), h.MsgType), h.Length)
}

// beginFrame appends a header with a zero length for a core message of type
// t and returns the new slice and the header's offset; endFrame patches the
// length once the payload is appended.
func beginFrame(dst []byte, t uint8) ([]byte, int) {
	off := len(dst)
	ext := uint16(0)
	if channelMsg(t) {
		ext = ChannelBit
	}
	return append(dst, byte(ext), byte(ext>>8), t, 0, 0, 0), off
}

func endFrame(dst []byte, off int) []byte {
	n := len(dst) - off - HeaderLen
	dst[off+3], dst[off+4], dst[off+5] = byte(n), byte(n>>8), byte(n>>16)
	return dst
}

// Frame errors.
var (
	// ErrFrameTooLarge is returned when a header declares a payload larger
	// than the reader's limit; the connection cannot be resynchronised.
	ErrFrameTooLarge = errors.New("sv2: frame payload exceeds the configured maximum")
	// ErrChannelBit is returned by CheckHeader when a core message's
	// channel_msg bit disagrees with §8's table.
	ErrChannelBit = errors.New("sv2: channel_msg bit does not match the message type")
	// ErrUnknownMessage is returned by CheckHeader for a core msg_type the
	// Common and Mining protocols do not define.
	ErrUnknownMessage = errors.New("sv2: unknown message type")
)

// CheckHeader checks a core-protocol (extension 0) header against §8's
// table: the message type is one of the Common or Mining protocol's and its
// channel_msg bit is the table's. Frames of other extensions are the
// caller's to route or discard (§3.4.1) and are not checked here.
func CheckHeader(h Header) error {
	if h.Extension() != 0 {
		return nil
	}
	ch, ok := msgChannelBit(h.MsgType)
	if !ok {
		return ErrUnknownMessage
	}
	if ch != h.ChannelMsg() {
		return ErrChannelBit
	}
	return nil
}

// Split finds the first frame in buf (an event loop's buffered input). It
// returns the header and the frame's total length (HeaderLen+payload), or
// n == 0 when buf does not hold a whole frame yet. A payload over
// maxPayload is ErrFrameTooLarge as soon as the header is complete.
func Split(buf []byte, maxPayload int) (h Header, n int, err error) {
	if len(buf) < HeaderLen {
		return Header{}, 0, nil
	}
	h, _ = ParseHeader(buf)
	if int(h.Length) > maxPayload {
		return h, 0, ErrFrameTooLarge
	}
	n = HeaderLen + int(h.Length)
	if len(buf) < n {
		return h, 0, nil
	}
	return h, n, nil
}

// DefaultMaxPayload is FrameReader's default payload bound: room for a
// NewExtendedMiningJob with two full B0_64K coinbase parts and a 255-hash
// merkle path, with margin.
const DefaultMaxPayload = 1 << 18

// FrameReader reads plaintext frames from an io.Reader into one reused
// buffer, never holding more than HeaderLen+MaxPayload bytes.
type FrameReader struct {
	r   io.Reader
	max int
	buf []byte
}

// NewFrameReader returns a FrameReader over r; maxPayload <= 0 means
// DefaultMaxPayload, and values over MaxU24 are MaxU24.
func NewFrameReader(r io.Reader, maxPayload int) *FrameReader {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	if maxPayload > MaxU24 {
		maxPayload = MaxU24
	}
	return &FrameReader{r: r, max: maxPayload}
}

// Next reads one frame. The payload aliases the reader's buffer and is valid
// until the next call. At a clean end of input it returns io.EOF; a frame
// cut short is io.ErrUnexpectedEOF.
func (fr *FrameReader) Next() (Header, []byte, error) {
	var hb [HeaderLen]byte
	if _, err := io.ReadFull(fr.r, hb[:]); err != nil {
		return Header{}, nil, err
	}
	h, _ := ParseHeader(hb[:])
	if int(h.Length) > fr.max {
		return h, nil, ErrFrameTooLarge
	}
	if cap(fr.buf) < int(h.Length) {
		fr.buf = make([]byte, h.Length)
	}
	p := fr.buf[:h.Length]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, p, nil
}

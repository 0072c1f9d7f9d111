package agent

import (
	"encoding/binary"
	"errors"
)

// Magic is the first byte of every ex-message frame. A stratum JSON line
// never starts with it, which is how one connection carries both.
const Magic = 0x7F

// HeaderLen is the frame header: magic u8, cmd u8, total length u16 LE.
const HeaderLen = 4

// MaxFrameLen is the largest frame the u16 length field can describe.
const MaxFrameLen = 0xFFFF

// MaxSessionID is the largest agent session id btcpool honours (AGENT_MAX_SESSION_ID).
const MaxSessionID = 0xFFFE

// Cmd is the ex-message command byte (spec §5.2).
type Cmd uint8

// Commands of the BTC agent protocol.
const (
	CmdRegisterWorker         Cmd = 0x01 // agent → pool
	CmdSubmitShare            Cmd = 0x02 // agent → pool
	CmdSubmitShareWithTime    Cmd = 0x03 // agent → pool
	CmdUnregisterWorker       Cmd = 0x04 // agent → pool
	CmdMiningSetDiff          Cmd = 0x05 // pool → agent
	CmdSubmitResponse         Cmd = 0x10 // pool → agent
	CmdSubmitShareWithVer     Cmd = 0x12 // agent → pool
	CmdSubmitShareWithTimeVer Cmd = 0x13 // agent → pool
)

// String returns the command's name in btcpool's spelling.
func (c Cmd) String() string {
	switch c {
	case CmdRegisterWorker:
		return "REGISTER_WORKER"
	case CmdSubmitShare:
		return "SUBMIT_SHARE"
	case CmdSubmitShareWithTime:
		return "SUBMIT_SHARE_WITH_TIME"
	case CmdUnregisterWorker:
		return "UNREGISTER_WORKER"
	case CmdMiningSetDiff:
		return "MINING_SET_DIFF"
	case CmdSubmitResponse:
		return "SUBMIT_RESPONSE"
	case CmdSubmitShareWithVer:
		return "SUBMIT_SHARE_WITH_VER"
	case CmdSubmitShareWithTimeVer:
		return "SUBMIT_SHARE_WITH_TIME_VER"
	}
	const hex = "0123456789abcdef"
	return "CMD_0x" + string([]byte{hex[c>>4], hex[c&0xf]})
}

// Errors reported by Split and the decoders. btcpool drops frames with a
// wrong length silently; the engine decides what to log or count.
var (
	// ErrNotFrame: the buffer does not start with Magic.
	ErrNotFrame = errors.New("agent: not an ex-message frame (first byte is not 0x7f)")
	// ErrBadLength: the declared total length is below HeaderLen. btcpool
	// stops parsing that connection (it stalls until its read timeout).
	ErrBadLength = errors.New("agent: declared frame length < 4")
	// ErrLength: the frame's length is not the one its command requires.
	ErrLength = errors.New("agent: wrong frame length for command")
	// ErrCmd: the frame carries a different command than the decoder handles.
	ErrCmd = errors.New("agent: unexpected command")
	// ErrTooLong: an encoder's input does not fit the frame limits.
	ErrTooLong = errors.New("agent: frame content too long")
	// ErrNUL: a string given to an encoder contains a NUL byte.
	ErrNUL = errors.New("agent: string contains NUL")
)

// Split looks at the start of a connection's buffered input. It returns the
// length n of the first frame when all of it is buffered (n ≥ HeaderLen;
// the frame is buf[:n]); n == 0 and a nil error when more bytes are needed
// (fewer than HeaderLen, or fewer than the declared length); ErrBadLength
// when the declared length is below HeaderLen; ErrNotFrame when buf[0] is
// not Magic. It never reads past buf and never allocates.
func Split(buf []byte) (n int, err error) {
	if len(buf) == 0 {
		return 0, nil
	}
	if buf[0] != Magic {
		return 0, ErrNotFrame
	}
	if len(buf) < HeaderLen {
		return 0, nil
	}
	l := int(binary.LittleEndian.Uint16(buf[2:4]))
	if l < HeaderLen {
		return 0, ErrBadLength
	}
	if len(buf) < l {
		return 0, nil
	}
	return l, nil
}

// FrameCmd returns the command byte of a frame (0 if frame is shorter than 2 bytes).
func FrameCmd(frame []byte) Cmd {
	if len(frame) < 2 {
		return 0
	}
	return Cmd(frame[1])
}

// check verifies magic, command and that the declared length equals len(frame).
func check(frame []byte, cmd Cmd) error {
	if len(frame) < HeaderLen || frame[0] != Magic {
		return ErrNotFrame
	}
	if Cmd(frame[1]) != cmd {
		return ErrCmd
	}
	if int(binary.LittleEndian.Uint16(frame[2:4])) != len(frame) {
		return ErrLength
	}
	return nil
}

// appendHeader appends the 4-byte header of a frame of total length n.
func appendHeader(dst []byte, cmd Cmd, n int) []byte {
	return append(dst, Magic, byte(cmd), byte(n), byte(n>>8))
}

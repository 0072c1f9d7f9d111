package agent

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// Frame lengths fixed by btcpool (spec §5.2-5.3; AGENT.md's examples for
// 0x01, 0x12 and 0x13 show wrong values, these are the ones the code checks).
const (
	SubmitShareLen            = 15
	SubmitShareWithTimeLen    = 19
	SubmitShareWithVerLen     = 19
	SubmitShareWithTimeVerLen = 23
	UnregisterWorkerLen       = 6
	SubmitResponseLen         = 10
	RegisterWorkerMinLen      = 8
	RegisterWorkerMaxLen      = 100
	setDiffHeaderLen          = 7 // header + diff_exp u8 + count u16
)

// MaxSetDiffSessions is the most session ids btcpool puts in one
// MINING_SET_DIFF frame; AppendSetDiff splits larger batches.
const MaxSetDiffSessions = 32764

// Submit is one share from an agent (SUBMIT_SHARE, _WITH_TIME, _WITH_VER,
// _WITH_TIME_VER). HasTime and HasVersionMask select the command.
type Submit struct {
	JobID          uint8  // the pool's short job id
	SessionID      uint16 // agent-side session id of the miner
	ExtraNonce2    uint32 // the miner's extranonce2; the pool uses SessionID<<32 | ExtraNonce2
	Nonce          uint32
	Time           uint32 // valid when HasTime
	VersionMask    uint32 // valid when HasVersionMask
	HasTime        bool
	HasVersionMask bool
}

// Cmd returns the command that carries s.
func (s *Submit) Cmd() Cmd {
	switch {
	case s.HasTime && s.HasVersionMask:
		return CmdSubmitShareWithTimeVer
	case s.HasTime:
		return CmdSubmitShareWithTime
	case s.HasVersionMask:
		return CmdSubmitShareWithVer
	}
	return CmdSubmitShare
}

// FullExtraNonce2 returns the 8-byte extranonce2 the pool validates:
// SessionID<<32 | ExtraNonce2 (spec §5.3).
func (s *Submit) FullExtraNonce2() uint64 {
	return uint64(s.SessionID)<<32 | uint64(s.ExtraNonce2)
}

// AppendSubmit appends the frame for s.
// Layout: job_id u8, session_id u16, extra_nonce2 u32, nonce u32 [, ntime u32] [, version_mask u32].
func AppendSubmit(dst []byte, s *Submit) []byte {
	n := SubmitShareLen
	if s.HasTime {
		n += 4
	}
	if s.HasVersionMask {
		n += 4
	}
	dst = appendHeader(dst, s.Cmd(), n)
	dst = append(dst, s.JobID)
	dst = binary.LittleEndian.AppendUint16(dst, s.SessionID)
	dst = binary.LittleEndian.AppendUint32(dst, s.ExtraNonce2)
	dst = binary.LittleEndian.AppendUint32(dst, s.Nonce)
	if s.HasTime {
		dst = binary.LittleEndian.AppendUint32(dst, s.Time)
	}
	if s.HasVersionMask {
		dst = binary.LittleEndian.AppendUint32(dst, s.VersionMask)
	}
	return dst
}

// DecodeSubmit reads any of the four submit frames into s, with btcpool's
// exact length per command (15/19/19/23). The declared length must equal
// len(frame) (pass the slice Split delimited).
func DecodeSubmit(frame []byte, s *Submit) error {
	*s = Submit{}
	if len(frame) < HeaderLen || frame[0] != Magic {
		return ErrNotFrame
	}
	want := 0
	switch Cmd(frame[1]) {
	case CmdSubmitShare:
		want = SubmitShareLen
	case CmdSubmitShareWithTime:
		want, s.HasTime = SubmitShareWithTimeLen, true
	case CmdSubmitShareWithVer:
		want, s.HasVersionMask = SubmitShareWithVerLen, true
	case CmdSubmitShareWithTimeVer:
		want, s.HasTime, s.HasVersionMask = SubmitShareWithTimeVerLen, true, true
	default:
		return ErrCmd
	}
	if len(frame) != want || int(binary.LittleEndian.Uint16(frame[2:4])) != want {
		*s = Submit{}
		return ErrLength
	}
	s.JobID = frame[4]
	s.SessionID = binary.LittleEndian.Uint16(frame[5:7])
	s.ExtraNonce2 = binary.LittleEndian.Uint32(frame[7:11])
	s.Nonce = binary.LittleEndian.Uint32(frame[11:15])
	rest := frame[15:]
	if s.HasTime {
		s.Time = binary.LittleEndian.Uint32(rest[0:4])
		rest = rest[4:]
	}
	if s.HasVersionMask {
		s.VersionMask = binary.LittleEndian.Uint32(rest[0:4])
	}
	return nil
}

// RegisterWorker announces a miner behind the agent (REGISTER_WORKER).
type RegisterWorker struct {
	SessionID uint16
	// ClientAgent and WorkerName are the two C strings of the body, without
	// their NUL, unfiltered. Decoded values alias the frame. WorkerName is
	// empty when the body holds a single string; btcpool then uses
	// "__default__" (the engine's business, like character filtering).
	ClientAgent []byte
	WorkerName  []byte
}

// AppendRegisterWorker appends a REGISTER_WORKER frame: session_id u16,
// agent NUL, worker NUL. It returns ErrNUL if a string contains NUL and
// ErrTooLong if the frame would exceed btcpool's 100-byte limit
// (len(agent)+len(worker) ≤ 92); dst is then returned unchanged.
func AppendRegisterWorker(dst []byte, sessionID uint16, clientAgent, workerName string) ([]byte, error) {
	if strings.IndexByte(clientAgent, 0) >= 0 || strings.IndexByte(workerName, 0) >= 0 {
		return dst, ErrNUL
	}
	n := HeaderLen + 2 + len(clientAgent) + 1 + len(workerName) + 1
	if n > RegisterWorkerMaxLen {
		return dst, ErrTooLong
	}
	dst = appendHeader(dst, CmdRegisterWorker, n)
	dst = binary.LittleEndian.AppendUint16(dst, sessionID)
	dst = append(dst, clientAgent...)
	dst = append(dst, 0)
	dst = append(dst, workerName...)
	return append(dst, 0), nil
}

// DecodeRegisterWorker reads a REGISTER_WORKER frame as btcpool does: length
// 8..100, the body after the session id treated as if its last byte were NUL,
// the first C string is the client agent, the second (if any) the worker name.
func DecodeRegisterWorker(frame []byte, r *RegisterWorker) error {
	*r = RegisterWorker{}
	if err := check(frame, CmdRegisterWorker); err != nil {
		return err
	}
	if len(frame) < RegisterWorkerMinLen || len(frame) > RegisterWorkerMaxLen {
		return ErrLength
	}
	r.SessionID = binary.LittleEndian.Uint16(frame[4:6])
	body := frame[6 : len(frame)-1] // the last byte is forced to NUL
	i := bytes.IndexByte(body, 0)
	if i < 0 {
		r.ClientAgent = body
		return nil
	}
	r.ClientAgent = body[:i]
	rest := body[i+1:]
	if j := bytes.IndexByte(rest, 0); j >= 0 {
		rest = rest[:j]
	}
	r.WorkerName = rest
	return nil
}

// AppendUnregisterWorker appends an UNREGISTER_WORKER frame (length 6).
func AppendUnregisterWorker(dst []byte, sessionID uint16) []byte {
	dst = appendHeader(dst, CmdUnregisterWorker, UnregisterWorkerLen)
	return binary.LittleEndian.AppendUint16(dst, sessionID)
}

// DecodeUnregisterWorker reads an UNREGISTER_WORKER frame (exactly 6 bytes).
func DecodeUnregisterWorker(frame []byte) (sessionID uint16, err error) {
	if err := check(frame, CmdUnregisterWorker); err != nil {
		return 0, err
	}
	if len(frame) != UnregisterWorkerLen {
		return 0, ErrLength
	}
	return binary.LittleEndian.Uint16(frame[4:6]), nil
}

// AppendSubmitResponse appends a SUBMIT_RESPONSE frame: index u16, status i32
// (length 10). status is btcpool's raw status (the accept magic number or a
// reject code, not remapped to 21).
func AppendSubmitResponse(dst []byte, index uint16, status int32) []byte {
	dst = appendHeader(dst, CmdSubmitResponse, SubmitResponseLen)
	dst = binary.LittleEndian.AppendUint16(dst, index)
	return binary.LittleEndian.AppendUint32(dst, uint32(status))
}

// DecodeSubmitResponse reads a SUBMIT_RESPONSE frame (exactly 10 bytes).
func DecodeSubmitResponse(frame []byte) (index uint16, status int32, err error) {
	if err := check(frame, CmdSubmitResponse); err != nil {
		return 0, 0, err
	}
	if len(frame) != SubmitResponseLen {
		return 0, 0, ErrLength
	}
	return binary.LittleEndian.Uint16(frame[4:6]), int32(binary.LittleEndian.Uint32(frame[6:10])), nil
}

// SetDiff is a decoded MINING_SET_DIFF frame: every listed agent session gets
// difficulty 2^DiffExp.
type SetDiff struct {
	DiffExp uint8
	// ids holds count little-endian u16 session ids; it aliases the frame.
	ids []byte
}

// Count returns the number of session ids in the frame.
func (d *SetDiff) Count() int { return len(d.ids) / 2 }

// SessionID returns the i-th session id (0 ≤ i < Count).
func (d *SetDiff) SessionID(i int) uint16 {
	return binary.LittleEndian.Uint16(d.ids[2*i:])
}

// AppendSetDiff appends MINING_SET_DIFF frames (diff_exp u8, count u16,
// session_id u16 × count) for all of sessionIDs, MaxSetDiffSessions per frame;
// nothing when sessionIDs is empty.
func AppendSetDiff(dst []byte, diffExp uint8, sessionIDs []uint16) []byte {
	for len(sessionIDs) > 0 {
		batch := sessionIDs[:min(len(sessionIDs), MaxSetDiffSessions)]
		sessionIDs = sessionIDs[len(batch):]
		dst = appendHeader(dst, CmdMiningSetDiff, setDiffHeaderLen+2*len(batch))
		dst = append(dst, diffExp)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(batch)))
		for _, id := range batch {
			dst = binary.LittleEndian.AppendUint16(dst, id)
		}
	}
	return dst
}

// DecodeSetDiff reads a MINING_SET_DIFF frame; its length must be exactly
// 7 + 2×count. d's ids alias frame.
func DecodeSetDiff(frame []byte, d *SetDiff) error {
	*d = SetDiff{}
	if err := check(frame, CmdMiningSetDiff); err != nil {
		return err
	}
	if len(frame) < setDiffHeaderLen {
		return ErrLength
	}
	count := int(binary.LittleEndian.Uint16(frame[5:7]))
	if len(frame) != setDiffHeaderLen+2*count {
		return ErrLength
	}
	d.DiffExp = frame[4]
	d.ids = frame[setDiffHeaderLen:]
	return nil
}

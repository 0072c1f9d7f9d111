package btcpool

import (
	"encoding/binary"
	"errors"
)

// FoundBlockSize is the size of btcpool's FoundBlock struct that starts a SolvedShare message.
const FoundBlockSize = 144

// workerFullNameSize is the char[40] field of FoundBlock; the name is NUL-terminated inside it.
const workerFullNameSize = 40

// SolvedShare is the sserver → blkmaker message for a share that meets the network target
// (topic BtcSolvedShare, spec §7.1): a 144-byte FoundBlock followed by the coinbase transaction.
type SolvedShare struct {
	JobID    uint64
	WorkerID int64 // workerHashId
	UserID   int32
	Height   int32
	// Header is the 80-byte serialized block header exactly as hashed.
	Header [80]byte
	// WorkerFullName is "user.worker"; at most 39 bytes are written (NUL-padded to 40).
	WorkerFullName string
	// Coinbase is the raw coinbase transaction that was hashed (no witness).
	Coinbase []byte
}

// AppendSolvedShare appends the binary message: FoundBlock (x86-64 layout, little-endian)
// then the coinbase bytes. WorkerFullName is truncated to 39 bytes.
func AppendSolvedShare(dst []byte, m *SolvedShare) []byte {
	dst = appendFoundBlock(dst, m.JobID, m.WorkerID, m.UserID, m.Height, &m.Header, m.WorkerFullName)
	return append(dst, m.Coinbase...)
}

// appendFoundBlock appends btcpool's 144-byte FoundBlock (RskSolvedShareData begins with the
// same fields): jobId, workerId, userId, height, the 80-byte header, and workerFullName
// truncated to 39 bytes and NUL-padded to 40.
func appendFoundBlock(dst []byte, jobID uint64, workerID int64, userID, height int32, header *[80]byte, name string) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, jobID)
	dst = le.AppendUint64(dst, uint64(workerID))
	dst = le.AppendUint32(dst, uint32(userID))
	dst = le.AppendUint32(dst, uint32(height))
	dst = append(dst, header[:]...)
	return appendCString(dst, name, workerFullNameSize)
}

// decodeFoundBlock reads the fixed-size fields appendFoundBlock writes (all but the name) from
// b, which holds at least FoundBlockSize bytes.
func decodeFoundBlock(b []byte, jobID *uint64, workerID *int64, userID, height *int32, header *[80]byte) {
	le := binary.LittleEndian
	*jobID = le.Uint64(b[0:])
	*workerID = int64(le.Uint64(b[8:]))
	*userID = int32(le.Uint32(b[16:]))
	*height = int32(le.Uint32(b[20:]))
	*header = [80]byte(b[24:104])
}

var errSolvedShort = errors.Join(ErrMalformed, errors.New("SolvedShare: message must be longer than the 144-byte FoundBlock"))

// DecodeSolvedShare decodes a SolvedShare message into m. Like blkmaker it requires
// len(b) > FoundBlockSize (a coinbase of at least one byte). WorkerFullName is read up to the
// first NUL of its 40 bytes. Coinbase is copied into m.Coinbase's existing storage (reused when
// large enough), so m does not alias b.
func DecodeSolvedShare(b []byte, m *SolvedShare) error {
	if len(b) <= FoundBlockSize {
		return errSolvedShort
	}
	decodeFoundBlock(b, &m.JobID, &m.WorkerID, &m.UserID, &m.Height, &m.Header)
	name := b[104:FoundBlockSize]
	for i, c := range name {
		if c == 0 {
			name = name[:i]
			break
		}
	}
	m.WorkerFullName = string(name)
	m.Coinbase = append(m.Coinbase[:0], b[FoundBlockSize:]...)
	return nil
}

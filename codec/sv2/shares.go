// Code written from sv2-spec §3.6, §5.3 and §8 (commit 0f38d51); the field
// order and types are the spec's tables.

package sv2

import "encoding/binary"

// SubmitSharesStandard (§5.3.11, client → server) is a standard channel's share.
type SubmitSharesStandard struct {
	ChannelID      uint32 // U32
	SequenceNumber uint32 // U32
	JobID          uint32 // U32
	Nonce          uint32 // U32
	NTime          uint32 // U32
	Version        uint32 // U32
}

// AppendSubmitSharesStandard appends m as a complete frame.
func AppendSubmitSharesStandard(dst []byte, m *SubmitSharesStandard) []byte {
	dst, off := beginFrame(dst, MsgSubmitSharesStandard)
	dst = appendShareHead(dst, m.ChannelID, m.SequenceNumber, m.JobID, m.Nonce, m.NTime, m.Version)
	return endFrame(dst, off)
}

// DecodeSubmitSharesStandard decodes a SubmitSharesStandard payload into m.
func DecodeSubmitSharesStandard(p []byte, m *SubmitSharesStandard) error {
	r := NewReader(p)
	m.ChannelID, m.SequenceNumber, m.JobID, m.Nonce, m.NTime, m.Version = r.shareHead()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SubmitSharesStandard) Check() error {
	return nil
}

// SubmitSharesExtended (§5.3.12, client → server) is an extended channel's share. TLV holds
// any TLV extension fields after the extranonce (§3.4.3), nil when there are none.
type SubmitSharesExtended struct {
	ChannelID      uint32 // U32
	SequenceNumber uint32 // U32
	JobID          uint32 // U32
	Nonce          uint32 // U32
	NTime          uint32 // U32
	Version        uint32 // U32
	Extranonce     []byte // B0_32
	TLV            []byte // TLV fields
}

// AppendSubmitSharesExtended appends m as a complete frame.
func AppendSubmitSharesExtended(dst []byte, m *SubmitSharesExtended) []byte {
	dst, off := beginFrame(dst, MsgSubmitSharesExtended)
	dst = appendShareHead(dst, m.ChannelID, m.SequenceNumber, m.JobID, m.Nonce, m.NTime, m.Version)
	dst = AppendB32(dst, m.Extranonce)
	dst = append(dst, m.TLV...)
	return endFrame(dst, off)
}

// DecodeSubmitSharesExtended decodes a SubmitSharesExtended payload into m.
func DecodeSubmitSharesExtended(p []byte, m *SubmitSharesExtended) error {
	r := NewReader(p)
	m.ChannelID, m.SequenceNumber, m.JobID, m.Nonce, m.NTime, m.Version = r.shareHead()
	m.Extranonce = r.B32()
	m.TLV = nil
	if r.Err() == nil && r.Len() > 0 {
		m.TLV = r.Rest()
	}
	return r.Err()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SubmitSharesExtended) Check() error {
	if len(m.Extranonce) > MaxB32 {
		return ErrBounds
	}
	return nil
}

// appendShareHead appends the six U32 fields both SubmitShares.Standard and .Extended begin
// with (channel_id, sequence_number, job_id, nonce, ntime, version).
func appendShareHead(dst []byte, channel, seq, job, nonce, ntime, version uint32) []byte {
	dst = AppendU32(dst, channel)
	dst = AppendU32(dst, seq)
	dst = AppendU32(dst, job)
	dst = AppendU32(dst, nonce)
	dst = AppendU32(dst, ntime)
	return AppendU32(dst, version)
}

// shareHead reads the fields appendShareHead writes, in one bounds check. With fewer than 24
// bytes left all six are zero and the Reader holds ErrShort.
func (r *Reader) shareHead() (channel, seq, job, nonce, ntime, version uint32) {
	b := r.Bytes(24)
	if b == nil {
		return
	}
	le := binary.LittleEndian
	return le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[16:]), le.Uint32(b[20:])
}

// SubmitSharesSuccess (§5.3.13, server → client) acknowledges a batch of shares.
type SubmitSharesSuccess struct {
	ChannelID               uint32 // U32
	LastSequenceNumber      uint32 // U32
	NewSubmitsAcceptedCount uint32 // U32
	NewSharesSum            uint64 // U64
}

// AppendSubmitSharesSuccess appends m as a complete frame.
func AppendSubmitSharesSuccess(dst []byte, m *SubmitSharesSuccess) []byte {
	dst, off := beginFrame(dst, MsgSubmitSharesSuccess)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU32(dst, m.LastSequenceNumber)
	dst = AppendU32(dst, m.NewSubmitsAcceptedCount)
	dst = AppendU64(dst, m.NewSharesSum)
	return endFrame(dst, off)
}

// DecodeSubmitSharesSuccess decodes a SubmitShares.Success payload into m.
func DecodeSubmitSharesSuccess(p []byte, m *SubmitSharesSuccess) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.LastSequenceNumber = r.U32()
	m.NewSubmitsAcceptedCount = r.U32()
	m.NewSharesSum = r.U64()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SubmitSharesSuccess) Check() error {
	return nil
}

// SubmitSharesError (§5.3.14, server → client) rejects one share.
type SubmitSharesError struct {
	ChannelID      uint32 // U32
	SequenceNumber uint32 // U32
	ErrorCode      []byte // STR0_255
}

// AppendSubmitSharesError appends m as a complete frame.
func AppendSubmitSharesError(dst []byte, m *SubmitSharesError) []byte {
	dst, off := beginFrame(dst, MsgSubmitSharesError)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU32(dst, m.SequenceNumber)
	dst = AppendStr255(dst, m.ErrorCode)
	return endFrame(dst, off)
}

// DecodeSubmitSharesError decodes a SubmitShares.Error payload into m.
func DecodeSubmitSharesError(p []byte, m *SubmitSharesError) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.SequenceNumber = r.U32()
	m.ErrorCode = r.Str255()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SubmitSharesError) Check() error {
	if len(m.ErrorCode) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

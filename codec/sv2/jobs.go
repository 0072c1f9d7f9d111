// Code written from sv2-spec §3.6, §5.3 and §8 (commit 0f38d51); the field
// order and types are the spec's tables.

package sv2

// NewExtendedMiningJob (§5.3.16, server → client) is an extended or group channel's job.
// CoinbaseTxPrefix and CoinbaseTxSuffix are stripped of BIP141 fields (§3.7.1).
type NewExtendedMiningJob struct {
	ChannelID             uint32    // U32
	JobID                 uint32    // U32
	MinNTime              OptionU32 // OPTION[U32]
	Version               uint32    // U32
	VersionRollingAllowed bool      // BOOL
	MerklePath            []U256    // SEQ0_255[U256]
	CoinbaseTxPrefix      []byte    // B0_64K
	CoinbaseTxSuffix      []byte    // B0_64K
}

// AppendNewExtendedMiningJob appends m as a complete frame.
func AppendNewExtendedMiningJob(dst []byte, m *NewExtendedMiningJob) []byte {
	dst, off := beginFrame(dst, MsgNewExtendedMiningJob)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU32(dst, m.JobID)
	dst = AppendOptionU32(dst, m.MinNTime)
	dst = AppendU32(dst, m.Version)
	dst = AppendBool(dst, m.VersionRollingAllowed)
	dst = AppendSeq255U256(dst, m.MerklePath)
	dst = AppendB64K(dst, m.CoinbaseTxPrefix)
	dst = AppendB64K(dst, m.CoinbaseTxSuffix)
	return endFrame(dst, off)
}

// DecodeNewExtendedMiningJob decodes a NewExtendedMiningJob payload into m.
func DecodeNewExtendedMiningJob(p []byte, m *NewExtendedMiningJob) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.JobID = r.U32()
	m.MinNTime = r.OptionU32()
	m.Version = r.U32()
	m.VersionRollingAllowed = r.Bool()
	m.MerklePath = r.Seq255U256(m.MerklePath)
	m.CoinbaseTxPrefix = r.B64K()
	m.CoinbaseTxSuffix = r.B64K()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *NewExtendedMiningJob) Check() error {
	if len(m.MerklePath) > MaxSeq255 || len(m.CoinbaseTxPrefix) > MaxB64K || len(m.CoinbaseTxSuffix) > MaxB64K {
		return ErrBounds
	}
	return nil
}

// SetNewPrevHash (§5.3.17, server → client) activates JobID on a new previous block.
type SetNewPrevHash struct {
	ChannelID uint32 // U32
	JobID     uint32 // U32
	PrevHash  U256   // U256
	MinNTime  uint32 // U32
	NBits     uint32 // U32
}

// AppendSetNewPrevHash appends m as a complete frame.
func AppendSetNewPrevHash(dst []byte, m *SetNewPrevHash) []byte {
	dst, off := beginFrame(dst, MsgSetNewPrevHash)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU32(dst, m.JobID)
	dst = AppendU256(dst, &m.PrevHash)
	dst = AppendU32(dst, m.MinNTime)
	dst = AppendU32(dst, m.NBits)
	return endFrame(dst, off)
}

// DecodeSetNewPrevHash decodes a SetNewPrevHash payload into m.
func DecodeSetNewPrevHash(p []byte, m *SetNewPrevHash) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.JobID = r.U32()
	m.PrevHash = r.U256()
	m.MinNTime = r.U32()
	m.NBits = r.U32()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetNewPrevHash) Check() error {
	return nil
}

// SetTarget (§5.3.21, server → client) sets a channel's maximum share target.
type SetTarget struct {
	ChannelID     uint32 // U32
	MaximumTarget U256   // U256
}

// AppendSetTarget appends m as a complete frame.
func AppendSetTarget(dst []byte, m *SetTarget) []byte {
	dst, off := beginFrame(dst, MsgSetTarget)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU256(dst, &m.MaximumTarget)
	return endFrame(dst, off)
}

// DecodeSetTarget decodes a SetTarget payload into m.
func DecodeSetTarget(p []byte, m *SetTarget) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.MaximumTarget = r.U256()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetTarget) Check() error {
	return nil
}

// SetCustomMiningJob (§5.3.18, client → server) proposes a job declared with a JDS.
type SetCustomMiningJob struct {
	ChannelID                uint32 // U32
	RequestID                uint32 // U32
	MiningJobToken           []byte // B0_255
	Version                  uint32 // U32
	PrevHash                 U256   // U256
	MinNTime                 uint32 // U32
	NBits                    uint32 // U32
	CoinbaseTxVersion        uint32 // U32
	CoinbasePrefix           []byte // B0_255
	CoinbaseTxInputNSequence uint32 // U32
	CoinbaseTxOutputs        []byte // B0_64K
	CoinbaseTxLocktime       uint32 // U32
	MerklePath               []U256 // SEQ0_255[U256]
}

// AppendSetCustomMiningJob appends m as a complete frame.
func AppendSetCustomMiningJob(dst []byte, m *SetCustomMiningJob) []byte {
	dst, off := beginFrame(dst, MsgSetCustomMiningJob)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU32(dst, m.RequestID)
	dst = AppendB255(dst, m.MiningJobToken)
	dst = AppendU32(dst, m.Version)
	dst = AppendU256(dst, &m.PrevHash)
	dst = AppendU32(dst, m.MinNTime)
	dst = AppendU32(dst, m.NBits)
	dst = AppendU32(dst, m.CoinbaseTxVersion)
	dst = AppendB255(dst, m.CoinbasePrefix)
	dst = AppendU32(dst, m.CoinbaseTxInputNSequence)
	dst = AppendB64K(dst, m.CoinbaseTxOutputs)
	dst = AppendU32(dst, m.CoinbaseTxLocktime)
	dst = AppendSeq255U256(dst, m.MerklePath)
	return endFrame(dst, off)
}

// DecodeSetCustomMiningJob decodes a SetCustomMiningJob payload into m.
func DecodeSetCustomMiningJob(p []byte, m *SetCustomMiningJob) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.RequestID = r.U32()
	m.MiningJobToken = r.B255()
	m.Version = r.U32()
	m.PrevHash = r.U256()
	m.MinNTime = r.U32()
	m.NBits = r.U32()
	m.CoinbaseTxVersion = r.U32()
	m.CoinbasePrefix = r.B255()
	m.CoinbaseTxInputNSequence = r.U32()
	m.CoinbaseTxOutputs = r.B64K()
	m.CoinbaseTxLocktime = r.U32()
	m.MerklePath = r.Seq255U256(m.MerklePath)
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetCustomMiningJob) Check() error {
	if len(m.MiningJobToken) > MaxB255 || len(m.CoinbasePrefix) > MaxB255 || len(m.CoinbaseTxOutputs) > MaxB64K || len(m.MerklePath) > MaxSeq255 {
		return ErrBounds
	}
	return nil
}

// SetCustomMiningJobSuccess (§5.3.19, server → client) accepts a custom job as JobID.
type SetCustomMiningJobSuccess struct {
	ChannelID uint32 // U32
	RequestID uint32 // U32
	JobID     uint32 // U32
}

// AppendSetCustomMiningJobSuccess appends m as a complete frame.
func AppendSetCustomMiningJobSuccess(dst []byte, m *SetCustomMiningJobSuccess) []byte {
	dst, off := beginFrame(dst, MsgSetCustomMiningJobSuccess)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU32(dst, m.RequestID)
	dst = AppendU32(dst, m.JobID)
	return endFrame(dst, off)
}

// DecodeSetCustomMiningJobSuccess decodes a SetCustomMiningJob.Success payload into m.
func DecodeSetCustomMiningJobSuccess(p []byte, m *SetCustomMiningJobSuccess) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.RequestID = r.U32()
	m.JobID = r.U32()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetCustomMiningJobSuccess) Check() error {
	return nil
}

// SetCustomMiningJobError (§5.3.20, server → client) refuses a custom job.
type SetCustomMiningJobError struct {
	ChannelID uint32 // U32
	RequestID uint32 // U32
	ErrorCode []byte // STR0_255
}

// AppendSetCustomMiningJobError appends m as a complete frame.
func AppendSetCustomMiningJobError(dst []byte, m *SetCustomMiningJobError) []byte {
	dst, off := beginFrame(dst, MsgSetCustomMiningJobError)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU32(dst, m.RequestID)
	dst = AppendStr255(dst, m.ErrorCode)
	return endFrame(dst, off)
}

// DecodeSetCustomMiningJobError decodes a SetCustomMiningJob.Error payload into m.
func DecodeSetCustomMiningJobError(p []byte, m *SetCustomMiningJobError) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.RequestID = r.U32()
	m.ErrorCode = r.Str255()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetCustomMiningJobError) Check() error {
	if len(m.ErrorCode) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

// SetGroupChannel (§5.3.22, server → client) (re)defines a group channel's members.
type SetGroupChannel struct {
	GroupChannelID uint32   // U32
	ChannelIDs     []uint32 // SEQ0_64K[U32]
}

// AppendSetGroupChannel appends m as a complete frame.
func AppendSetGroupChannel(dst []byte, m *SetGroupChannel) []byte {
	dst, off := beginFrame(dst, MsgSetGroupChannel)
	dst = AppendU32(dst, m.GroupChannelID)
	dst = AppendSeq64KU32(dst, m.ChannelIDs)
	return endFrame(dst, off)
}

// DecodeSetGroupChannel decodes a SetGroupChannel payload into m.
func DecodeSetGroupChannel(p []byte, m *SetGroupChannel) error {
	r := NewReader(p)
	m.GroupChannelID = r.U32()
	m.ChannelIDs = r.Seq64KU32(m.ChannelIDs)
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetGroupChannel) Check() error {
	if len(m.ChannelIDs) > MaxSeq64K {
		return ErrBounds
	}
	return nil
}

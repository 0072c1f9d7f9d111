// Code written from sv2-spec §3.6, §5.3 and §8 (commit 0f38d51); the field
// order and types are the spec's tables.

package sv2

// OpenStandardMiningChannel (§5.3.2, client → server) asks for a header-only channel.
type OpenStandardMiningChannel struct {
	RequestID       uint32  // U32
	UserIdentity    []byte  // STR0_255
	NominalHashRate float32 // F32
	MaxTarget       U256    // U256
}

// AppendOpenStandardMiningChannel appends m as a complete frame.
func AppendOpenStandardMiningChannel(dst []byte, m *OpenStandardMiningChannel) []byte {
	dst, off := beginFrame(dst, MsgOpenStandardMiningChannel)
	dst = AppendU32(dst, m.RequestID)
	dst = AppendStr255(dst, m.UserIdentity)
	dst = AppendF32(dst, m.NominalHashRate)
	dst = AppendU256(dst, &m.MaxTarget)
	return endFrame(dst, off)
}

// DecodeOpenStandardMiningChannel decodes a OpenStandardMiningChannel payload into m.
func DecodeOpenStandardMiningChannel(p []byte, m *OpenStandardMiningChannel) error {
	r := NewReader(p)
	m.RequestID = r.U32()
	m.UserIdentity = r.Str255()
	m.NominalHashRate = r.F32()
	m.MaxTarget = r.U256()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *OpenStandardMiningChannel) Check() error {
	if len(m.UserIdentity) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

// OpenStandardMiningChannelSuccess (§5.3.3, server → client) opens a standard channel.
type OpenStandardMiningChannelSuccess struct {
	RequestID        uint32 // U32
	ChannelID        uint32 // U32
	Target           U256   // U256
	ExtranoncePrefix []byte // B0_32
	GroupChannelID   uint32 // U32
}

// AppendOpenStandardMiningChannelSuccess appends m as a complete frame.
func AppendOpenStandardMiningChannelSuccess(dst []byte, m *OpenStandardMiningChannelSuccess) []byte {
	dst, off := beginFrame(dst, MsgOpenStandardMiningChannelSuccess)
	dst = AppendU32(dst, m.RequestID)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU256(dst, &m.Target)
	dst = AppendB32(dst, m.ExtranoncePrefix)
	dst = AppendU32(dst, m.GroupChannelID)
	return endFrame(dst, off)
}

// DecodeOpenStandardMiningChannelSuccess decodes a OpenStandardMiningChannel.Success payload into m.
func DecodeOpenStandardMiningChannelSuccess(p []byte, m *OpenStandardMiningChannelSuccess) error {
	r := NewReader(p)
	m.RequestID = r.U32()
	m.ChannelID = r.U32()
	m.Target = r.U256()
	m.ExtranoncePrefix = r.B32()
	m.GroupChannelID = r.U32()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *OpenStandardMiningChannelSuccess) Check() error {
	if len(m.ExtranoncePrefix) > MaxB32 {
		return ErrBounds
	}
	return nil
}

// OpenMiningChannelError (§5.3.6, server → client) refuses an Open*MiningChannel.
type OpenMiningChannelError struct {
	RequestID uint32 // U32
	ErrorCode []byte // STR0_255
}

// AppendOpenMiningChannelError appends m as a complete frame.
func AppendOpenMiningChannelError(dst []byte, m *OpenMiningChannelError) []byte {
	dst, off := beginFrame(dst, MsgOpenMiningChannelError)
	dst = AppendU32(dst, m.RequestID)
	dst = AppendStr255(dst, m.ErrorCode)
	return endFrame(dst, off)
}

// DecodeOpenMiningChannelError decodes a OpenMiningChannel.Error payload into m.
func DecodeOpenMiningChannelError(p []byte, m *OpenMiningChannelError) error {
	r := NewReader(p)
	m.RequestID = r.U32()
	m.ErrorCode = r.Str255()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *OpenMiningChannelError) Check() error {
	if len(m.ErrorCode) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

// OpenExtendedMiningChannel (§5.3.4, client → server) asks for an extended channel.
type OpenExtendedMiningChannel struct {
	RequestID         uint32  // U32
	UserIdentity      []byte  // STR0_255
	NominalHashRate   float32 // F32
	MaxTarget         U256    // U256
	MinExtranonceSize uint16  // U16
}

// AppendOpenExtendedMiningChannel appends m as a complete frame.
func AppendOpenExtendedMiningChannel(dst []byte, m *OpenExtendedMiningChannel) []byte {
	dst, off := beginFrame(dst, MsgOpenExtendedMiningChannel)
	dst = AppendU32(dst, m.RequestID)
	dst = AppendStr255(dst, m.UserIdentity)
	dst = AppendF32(dst, m.NominalHashRate)
	dst = AppendU256(dst, &m.MaxTarget)
	dst = AppendU16(dst, m.MinExtranonceSize)
	return endFrame(dst, off)
}

// DecodeOpenExtendedMiningChannel decodes a OpenExtendedMiningChannel payload into m.
func DecodeOpenExtendedMiningChannel(p []byte, m *OpenExtendedMiningChannel) error {
	r := NewReader(p)
	m.RequestID = r.U32()
	m.UserIdentity = r.Str255()
	m.NominalHashRate = r.F32()
	m.MaxTarget = r.U256()
	m.MinExtranonceSize = r.U16()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *OpenExtendedMiningChannel) Check() error {
	if len(m.UserIdentity) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

// OpenExtendedMiningChannelSuccess (§5.3.5, server → client) opens an extended channel.
type OpenExtendedMiningChannelSuccess struct {
	RequestID        uint32 // U32
	ChannelID        uint32 // U32
	Target           U256   // U256
	ExtranonceSize   uint16 // U16
	ExtranoncePrefix []byte // B0_32
	GroupChannelID   uint32 // U32
}

// AppendOpenExtendedMiningChannelSuccess appends m as a complete frame.
func AppendOpenExtendedMiningChannelSuccess(dst []byte, m *OpenExtendedMiningChannelSuccess) []byte {
	dst, off := beginFrame(dst, MsgOpenExtendedMiningChannelSuccess)
	dst = AppendU32(dst, m.RequestID)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU256(dst, &m.Target)
	dst = AppendU16(dst, m.ExtranonceSize)
	dst = AppendB32(dst, m.ExtranoncePrefix)
	dst = AppendU32(dst, m.GroupChannelID)
	return endFrame(dst, off)
}

// DecodeOpenExtendedMiningChannelSuccess decodes a OpenExtendedMiningChannel.Success payload into m.
func DecodeOpenExtendedMiningChannelSuccess(p []byte, m *OpenExtendedMiningChannelSuccess) error {
	r := NewReader(p)
	m.RequestID = r.U32()
	m.ChannelID = r.U32()
	m.Target = r.U256()
	m.ExtranonceSize = r.U16()
	m.ExtranoncePrefix = r.B32()
	m.GroupChannelID = r.U32()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *OpenExtendedMiningChannelSuccess) Check() error {
	if len(m.ExtranoncePrefix) > MaxB32 {
		return ErrBounds
	}
	return nil
}

// NewMiningJob (§5.3.15, server → client) is a standard channel's job: the merkle root is given.
type NewMiningJob struct {
	ChannelID  uint32    // U32
	JobID      uint32    // U32
	MinNTime   OptionU32 // OPTION[U32]
	Version    uint32    // U32
	MerkleRoot U256      // U256
}

// AppendNewMiningJob appends m as a complete frame.
func AppendNewMiningJob(dst []byte, m *NewMiningJob) []byte {
	dst, off := beginFrame(dst, MsgNewMiningJob)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendU32(dst, m.JobID)
	dst = AppendOptionU32(dst, m.MinNTime)
	dst = AppendU32(dst, m.Version)
	dst = AppendU256(dst, &m.MerkleRoot)
	return endFrame(dst, off)
}

// DecodeNewMiningJob decodes a NewMiningJob payload into m.
func DecodeNewMiningJob(p []byte, m *NewMiningJob) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.JobID = r.U32()
	m.MinNTime = r.OptionU32()
	m.Version = r.U32()
	m.MerkleRoot = r.U256()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *NewMiningJob) Check() error {
	return nil
}

// UpdateChannel (§5.3.7, client → server) reports a new hash rate or maximum target.
type UpdateChannel struct {
	ChannelID       uint32  // U32
	NominalHashRate float32 // F32
	MaximumTarget   U256    // U256
}

// AppendUpdateChannel appends m as a complete frame.
func AppendUpdateChannel(dst []byte, m *UpdateChannel) []byte {
	dst, off := beginFrame(dst, MsgUpdateChannel)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendF32(dst, m.NominalHashRate)
	dst = AppendU256(dst, &m.MaximumTarget)
	return endFrame(dst, off)
}

// DecodeUpdateChannel decodes a UpdateChannel payload into m.
func DecodeUpdateChannel(p []byte, m *UpdateChannel) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.NominalHashRate = r.F32()
	m.MaximumTarget = r.U256()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *UpdateChannel) Check() error {
	return nil
}

// UpdateChannelError (§5.3.8, server → client) refuses an UpdateChannel.
type UpdateChannelError struct {
	ChannelID uint32 // U32
	ErrorCode []byte // STR0_255
}

// AppendUpdateChannelError appends m as a complete frame.
func AppendUpdateChannelError(dst []byte, m *UpdateChannelError) []byte {
	dst, off := beginFrame(dst, MsgUpdateChannelError)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendStr255(dst, m.ErrorCode)
	return endFrame(dst, off)
}

// DecodeUpdateChannelError decodes a UpdateChannel.Error payload into m.
func DecodeUpdateChannelError(p []byte, m *UpdateChannelError) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.ErrorCode = r.Str255()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *UpdateChannelError) Check() error {
	if len(m.ErrorCode) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

// CloseChannel (§5.3.9, either direction) closes a channel (all of a group's channels for a group id).
type CloseChannel struct {
	ChannelID  uint32 // U32
	ReasonCode []byte // STR0_255
}

// AppendCloseChannel appends m as a complete frame.
func AppendCloseChannel(dst []byte, m *CloseChannel) []byte {
	dst, off := beginFrame(dst, MsgCloseChannel)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendStr255(dst, m.ReasonCode)
	return endFrame(dst, off)
}

// DecodeCloseChannel decodes a CloseChannel payload into m.
func DecodeCloseChannel(p []byte, m *CloseChannel) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.ReasonCode = r.Str255()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *CloseChannel) Check() error {
	if len(m.ReasonCode) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

// SetExtranoncePrefix (§5.3.10, server → client) changes a channel's extranonce prefix.
type SetExtranoncePrefix struct {
	ChannelID        uint32 // U32
	ExtranoncePrefix []byte // B0_32
}

// AppendSetExtranoncePrefix appends m as a complete frame.
func AppendSetExtranoncePrefix(dst []byte, m *SetExtranoncePrefix) []byte {
	dst, off := beginFrame(dst, MsgSetExtranoncePrefix)
	dst = AppendU32(dst, m.ChannelID)
	dst = AppendB32(dst, m.ExtranoncePrefix)
	return endFrame(dst, off)
}

// DecodeSetExtranoncePrefix decodes a SetExtranoncePrefix payload into m.
func DecodeSetExtranoncePrefix(p []byte, m *SetExtranoncePrefix) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	m.ExtranoncePrefix = r.B32()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetExtranoncePrefix) Check() error {
	if len(m.ExtranoncePrefix) > MaxB32 {
		return ErrBounds
	}
	return nil
}

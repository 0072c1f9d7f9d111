// Code written from sv2-spec §3.6, §5.3 and §8 (commit 0f38d51); the field
// order and types are the spec's tables.

package sv2

// Message types (§8). Those marked channel_msg carry the channel bit in the
// frame header and start with the channel id.
const (
	// MsgSetupConnection is SetupConnection.
	MsgSetupConnection uint8 = 0x00
	// MsgSetupConnectionSuccess is SetupConnection.Success.
	MsgSetupConnectionSuccess uint8 = 0x01
	// MsgSetupConnectionError is SetupConnection.Error.
	MsgSetupConnectionError uint8 = 0x02
	// MsgChannelEndpointChanged is ChannelEndpointChanged (channel_msg).
	MsgChannelEndpointChanged uint8 = 0x03
	// MsgReconnect is Reconnect.
	MsgReconnect uint8 = 0x04
	// MsgOpenStandardMiningChannel is OpenStandardMiningChannel.
	MsgOpenStandardMiningChannel uint8 = 0x10
	// MsgOpenStandardMiningChannelSuccess is OpenStandardMiningChannel.Success.
	MsgOpenStandardMiningChannelSuccess uint8 = 0x11
	// MsgOpenMiningChannelError is OpenMiningChannel.Error.
	MsgOpenMiningChannelError uint8 = 0x12
	// MsgOpenExtendedMiningChannel is OpenExtendedMiningChannel.
	MsgOpenExtendedMiningChannel uint8 = 0x13
	// MsgOpenExtendedMiningChannelSuccess is OpenExtendedMiningChannel.Success.
	MsgOpenExtendedMiningChannelSuccess uint8 = 0x14
	// MsgNewMiningJob is NewMiningJob (channel_msg).
	MsgNewMiningJob uint8 = 0x15
	// MsgUpdateChannel is UpdateChannel (channel_msg).
	MsgUpdateChannel uint8 = 0x16
	// MsgUpdateChannelError is UpdateChannel.Error (channel_msg).
	MsgUpdateChannelError uint8 = 0x17
	// MsgCloseChannel is CloseChannel (channel_msg).
	MsgCloseChannel uint8 = 0x18
	// MsgSetExtranoncePrefix is SetExtranoncePrefix (channel_msg).
	MsgSetExtranoncePrefix uint8 = 0x19
	// MsgSubmitSharesStandard is SubmitSharesStandard (channel_msg).
	MsgSubmitSharesStandard uint8 = 0x1a
	// MsgSubmitSharesExtended is SubmitSharesExtended (channel_msg).
	MsgSubmitSharesExtended uint8 = 0x1b
	// MsgSubmitSharesSuccess is SubmitShares.Success (channel_msg).
	MsgSubmitSharesSuccess uint8 = 0x1c
	// MsgSubmitSharesError is SubmitShares.Error (channel_msg).
	MsgSubmitSharesError uint8 = 0x1d
	// MsgNewExtendedMiningJob is NewExtendedMiningJob (channel_msg).
	MsgNewExtendedMiningJob uint8 = 0x1f
	// MsgSetNewPrevHash is SetNewPrevHash (channel_msg).
	MsgSetNewPrevHash uint8 = 0x20
	// MsgSetTarget is SetTarget (channel_msg).
	MsgSetTarget uint8 = 0x21
	// MsgSetCustomMiningJob is SetCustomMiningJob (channel_msg).
	MsgSetCustomMiningJob uint8 = 0x22
	// MsgSetCustomMiningJobSuccess is SetCustomMiningJob.Success (channel_msg).
	MsgSetCustomMiningJobSuccess uint8 = 0x23
	// MsgSetCustomMiningJobError is SetCustomMiningJob.Error (channel_msg).
	MsgSetCustomMiningJobError uint8 = 0x24
	// MsgSetGroupChannel is SetGroupChannel.
	MsgSetGroupChannel uint8 = 0x25
)

// channelMsg reports whether core message type t has the channel_msg bit
// set in §8's table (false for unknown types).
func channelMsg(t uint8) bool {
	ch, _ := msgChannelBit(t)
	return ch
}

// msgChannelBit returns §8's channel_msg bit for core message type t and
// whether t is a Common or Mining protocol message.
func msgChannelBit(t uint8) (channel, known bool) {
	switch t {
	case MsgChannelEndpointChanged, MsgNewMiningJob, MsgUpdateChannel, MsgUpdateChannelError, MsgCloseChannel, MsgSetExtranoncePrefix, MsgSubmitSharesStandard, MsgSubmitSharesExtended, MsgSubmitSharesSuccess, MsgSubmitSharesError, MsgNewExtendedMiningJob, MsgSetNewPrevHash, MsgSetTarget, MsgSetCustomMiningJob, MsgSetCustomMiningJobSuccess, MsgSetCustomMiningJobError:
		return true, true
	case MsgSetupConnection, MsgSetupConnectionSuccess, MsgSetupConnectionError, MsgReconnect, MsgOpenStandardMiningChannel, MsgOpenStandardMiningChannelSuccess, MsgOpenMiningChannelError, MsgOpenExtendedMiningChannel, MsgOpenExtendedMiningChannelSuccess, MsgSetGroupChannel:
		return false, true
	}
	return false, false
}

// MsgName returns the spec's name of core message type t, or "unknown".
func MsgName(t uint8) string {
	switch t {
	case MsgSetupConnection:
		return "SetupConnection"
	case MsgSetupConnectionSuccess:
		return "SetupConnection.Success"
	case MsgSetupConnectionError:
		return "SetupConnection.Error"
	case MsgChannelEndpointChanged:
		return "ChannelEndpointChanged"
	case MsgReconnect:
		return "Reconnect"
	case MsgOpenStandardMiningChannel:
		return "OpenStandardMiningChannel"
	case MsgOpenStandardMiningChannelSuccess:
		return "OpenStandardMiningChannel.Success"
	case MsgOpenMiningChannelError:
		return "OpenMiningChannel.Error"
	case MsgOpenExtendedMiningChannel:
		return "OpenExtendedMiningChannel"
	case MsgOpenExtendedMiningChannelSuccess:
		return "OpenExtendedMiningChannel.Success"
	case MsgNewMiningJob:
		return "NewMiningJob"
	case MsgUpdateChannel:
		return "UpdateChannel"
	case MsgUpdateChannelError:
		return "UpdateChannel.Error"
	case MsgCloseChannel:
		return "CloseChannel"
	case MsgSetExtranoncePrefix:
		return "SetExtranoncePrefix"
	case MsgSubmitSharesStandard:
		return "SubmitSharesStandard"
	case MsgSubmitSharesExtended:
		return "SubmitSharesExtended"
	case MsgSubmitSharesSuccess:
		return "SubmitShares.Success"
	case MsgSubmitSharesError:
		return "SubmitShares.Error"
	case MsgNewExtendedMiningJob:
		return "NewExtendedMiningJob"
	case MsgSetNewPrevHash:
		return "SetNewPrevHash"
	case MsgSetTarget:
		return "SetTarget"
	case MsgSetCustomMiningJob:
		return "SetCustomMiningJob"
	case MsgSetCustomMiningJobSuccess:
		return "SetCustomMiningJob.Success"
	case MsgSetCustomMiningJobError:
		return "SetCustomMiningJob.Error"
	case MsgSetGroupChannel:
		return "SetGroupChannel"
	}
	return "unknown"
}

// SetupConnection (§3.6.1, client → server) is the first message on a connection.
type SetupConnection struct {
	Protocol        uint8  // U8
	MinVersion      uint16 // U16
	MaxVersion      uint16 // U16
	Flags           uint32 // U32
	EndpointHost    []byte // STR0_255
	EndpointPort    uint16 // U16
	Vendor          []byte // STR0_255
	HardwareVersion []byte // STR0_255
	Firmware        []byte // STR0_255
	DeviceID        []byte // STR0_255
}

// AppendSetupConnection appends m as a complete frame.
func AppendSetupConnection(dst []byte, m *SetupConnection) []byte {
	dst, off := beginFrame(dst, MsgSetupConnection)
	dst = AppendU8(dst, m.Protocol)
	dst = AppendU16(dst, m.MinVersion)
	dst = AppendU16(dst, m.MaxVersion)
	dst = AppendU32(dst, m.Flags)
	dst = AppendStr255(dst, m.EndpointHost)
	dst = AppendU16(dst, m.EndpointPort)
	dst = AppendStr255(dst, m.Vendor)
	dst = AppendStr255(dst, m.HardwareVersion)
	dst = AppendStr255(dst, m.Firmware)
	dst = AppendStr255(dst, m.DeviceID)
	return endFrame(dst, off)
}

// DecodeSetupConnection decodes a SetupConnection payload into m.
func DecodeSetupConnection(p []byte, m *SetupConnection) error {
	r := NewReader(p)
	m.Protocol = r.U8()
	m.MinVersion = r.U16()
	m.MaxVersion = r.U16()
	m.Flags = r.U32()
	m.EndpointHost = r.Str255()
	m.EndpointPort = r.U16()
	m.Vendor = r.Str255()
	m.HardwareVersion = r.Str255()
	m.Firmware = r.Str255()
	m.DeviceID = r.Str255()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetupConnection) Check() error {
	if len(m.EndpointHost) > MaxStr255 || len(m.Vendor) > MaxStr255 || len(m.HardwareVersion) > MaxStr255 || len(m.Firmware) > MaxStr255 || len(m.DeviceID) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

// SetupConnectionSuccess (§3.6.2, server → client) accepts a SetupConnection.
type SetupConnectionSuccess struct {
	UsedVersion uint16 // U16
	Flags       uint32 // U32
}

// AppendSetupConnectionSuccess appends m as a complete frame.
func AppendSetupConnectionSuccess(dst []byte, m *SetupConnectionSuccess) []byte {
	dst, off := beginFrame(dst, MsgSetupConnectionSuccess)
	dst = AppendU16(dst, m.UsedVersion)
	dst = AppendU32(dst, m.Flags)
	return endFrame(dst, off)
}

// DecodeSetupConnectionSuccess decodes a SetupConnection.Success payload into m.
func DecodeSetupConnectionSuccess(p []byte, m *SetupConnectionSuccess) error {
	r := NewReader(p)
	m.UsedVersion = r.U16()
	m.Flags = r.U32()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetupConnectionSuccess) Check() error {
	return nil
}

// SetupConnectionError (§3.6.3, server → client) refuses a SetupConnection; Flags lists the unsupported flags.
type SetupConnectionError struct {
	Flags     uint32 // U32
	ErrorCode []byte // STR0_255
}

// AppendSetupConnectionError appends m as a complete frame.
func AppendSetupConnectionError(dst []byte, m *SetupConnectionError) []byte {
	dst, off := beginFrame(dst, MsgSetupConnectionError)
	dst = AppendU32(dst, m.Flags)
	dst = AppendStr255(dst, m.ErrorCode)
	return endFrame(dst, off)
}

// DecodeSetupConnectionError decodes a SetupConnection.Error payload into m.
func DecodeSetupConnectionError(p []byte, m *SetupConnectionError) error {
	r := NewReader(p)
	m.Flags = r.U32()
	m.ErrorCode = r.Str255()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *SetupConnectionError) Check() error {
	if len(m.ErrorCode) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

// ChannelEndpointChanged (§3.6.4, server → client) resets a channel's extension state.
type ChannelEndpointChanged struct {
	ChannelID uint32 // U32
}

// AppendChannelEndpointChanged appends m as a complete frame.
func AppendChannelEndpointChanged(dst []byte, m *ChannelEndpointChanged) []byte {
	dst, off := beginFrame(dst, MsgChannelEndpointChanged)
	dst = AppendU32(dst, m.ChannelID)
	return endFrame(dst, off)
}

// DecodeChannelEndpointChanged decodes a ChannelEndpointChanged payload into m.
func DecodeChannelEndpointChanged(p []byte, m *ChannelEndpointChanged) error {
	r := NewReader(p)
	m.ChannelID = r.U32()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *ChannelEndpointChanged) Check() error {
	return nil
}

// Reconnect (§3.6.5, server → client) redirects the client; an empty host or zero port means the present one.
type Reconnect struct {
	NewHost []byte // STR0_255
	NewPort uint16 // U16
}

// AppendReconnect appends m as a complete frame.
func AppendReconnect(dst []byte, m *Reconnect) []byte {
	dst, off := beginFrame(dst, MsgReconnect)
	dst = AppendStr255(dst, m.NewHost)
	dst = AppendU16(dst, m.NewPort)
	return endFrame(dst, off)
}

// DecodeReconnect decodes a Reconnect payload into m.
func DecodeReconnect(p []byte, m *Reconnect) error {
	r := NewReader(p)
	m.NewHost = r.Str255()
	m.NewPort = r.U16()
	return r.Done()
}

// Check reports ErrBounds if a field of m is longer than its type allows.
func (m *Reconnect) Check() error {
	if len(m.NewHost) > MaxStr255 {
		return ErrBounds
	}
	return nil
}

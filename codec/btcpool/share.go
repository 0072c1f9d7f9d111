package btcpool

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"

	"google.golang.org/protobuf/encoding/protowire"
)

// Share record versions and sizes (spec §6.1).
const (
	// CurrentShareVersion is btcpool HEAD's share version: the LE u32 prefix of every Kafka share
	// message and the value of the protobuf version field.
	CurrentShareVersion = 0x00010004
	// ShareV2Version is the version word of the older 80-byte ShareBitcoinBytesV2 struct.
	ShareV2Version = 0x00010003
	// ShareV1Size is the size of a ShareBitcoinBytesV1 (LEGACY Share) struct.
	ShareV1Size = 48
	// ShareV2Size is the size of a ShareBitcoinBytesV2 struct.
	ShareV2Size = 80
	// ShareV1Height is the height btcpool assumes when it up-converts a V1 record, which has none.
	ShareV1Height = 570000
)

// Share is one share record: what sserver sends to the BtcShare topic and sharelogger writes to
// the share-log files. Field for field it is btcpool's sharebase.BitcoinMsg (proto2, spec §6.1).
type Share struct {
	Version      uint32     // tag 1, sint32: CurrentShareVersion
	WorkerHashID int64      // tag 2, sint64: worker id (spec §4.10)
	UserID       int32      // tag 3, sint32: puid
	Status       Status     // tag 4, sint32
	Timestamp    int64      // tag 5, sint64: unix seconds at validation
	IP           netip.Addr // tag 6, string: miner address; the zero Addr is written "0.0.0.0"
	JobID        uint64     // tag 7
	ShareDiff    uint64     // tag 8: difficulty credited
	BlkBits      uint32     // tag 9: the job's nBits
	Height       uint32     // tag 10
	Nonce        uint32     // tag 11
	SessionID    uint32     // tag 12: serverId<<24 | index
	VersionMask  uint32     // tag 13
	ExtUserID    int32      // tag 14, sint32: written only when non-zero
	BitsReached  uint32     // tag 15: compact(hash), written only when non-zero
}

// Proto field numbers of BitcoinMsg.
const (
	fieldVersion protowire.Number = iota + 1
	fieldWorkerHashID
	fieldUserID
	fieldStatus
	fieldTimestamp
	fieldIP
	fieldJobID
	fieldShareDiff
	fieldBlkBits
	fieldHeight
	fieldNonce
	fieldSessionID
	fieldVersionMask
	fieldExtUserID
	fieldBitsReached
)

// MaxShareProtoSize bounds the encoded protobuf of one share: 15 one-byte tags, 13 varints of
// at most 10 bytes, and an address of at most 64 bytes of text.
const MaxShareProtoSize = 15 + 14*10 + 1 + 64

// AppendShareProto appends the protobuf encoding of s exactly as btcpool's C++ serializer writes
// it: fields in tag order, 1–13 always, 14 and 15 only when non-zero. A zero Version is written
// as CurrentShareVersion. It does not allocate when dst has MaxShareProtoSize spare capacity.
func AppendShareProto(dst []byte, s *Share) []byte {
	version := s.Version
	if version == 0 {
		version = CurrentShareVersion
	}
	dst = appendSint32(dst, fieldVersion, int32(version))
	dst = appendSint64(dst, fieldWorkerHashID, s.WorkerHashID)
	dst = appendSint32(dst, fieldUserID, s.UserID)
	dst = appendSint32(dst, fieldStatus, int32(s.Status))
	dst = appendSint64(dst, fieldTimestamp, s.Timestamp)
	var ipText [64]byte
	dst = protowire.AppendTag(dst, fieldIP, protowire.BytesType)
	dst = protowire.AppendBytes(dst, appendIP(ipText[:0], s.IP))
	dst = appendUint(dst, fieldJobID, s.JobID)
	dst = appendUint(dst, fieldShareDiff, s.ShareDiff)
	dst = appendUint(dst, fieldBlkBits, uint64(s.BlkBits))
	dst = appendUint(dst, fieldHeight, uint64(s.Height))
	dst = appendUint(dst, fieldNonce, uint64(s.Nonce))
	dst = appendUint(dst, fieldSessionID, uint64(s.SessionID))
	dst = appendUint(dst, fieldVersionMask, uint64(s.VersionMask))
	if s.ExtUserID != 0 {
		dst = appendSint32(dst, fieldExtUserID, s.ExtUserID)
	}
	if s.BitsReached != 0 {
		dst = appendUint(dst, fieldBitsReached, uint64(s.BitsReached))
	}
	return dst
}

// AppendShareMessage appends the Kafka value of s (BtcShare topic): the share's version as LE
// u32 (CurrentShareVersion, bytes 04 00 01 00, when Version is zero or current; btcpool's
// SerializeToArrayWithVersion writes the version field there) followed by AppendShareProto.
// Zero allocations with 4+MaxShareProtoSize spare capacity.
func AppendShareMessage(dst []byte, s *Share) []byte {
	version := s.Version
	if version == 0 {
		version = CurrentShareVersion
	}
	dst = binary.LittleEndian.AppendUint32(dst, version)
	return AppendShareProto(dst, s)
}

// AppendShareV1 appends s as a 48-byte ShareBitcoinBytesV1 (LEGACY Share) struct, what btcpool
// sends with `use_share_v1`. V1 has no height, nonce, session id or version mask; its result is 1
// for accepted statuses and 0 otherwise, its IP IPv4 only (others are written as 0.0.0.0).
func AppendShareV1(dst []byte, s *Share) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, s.JobID)
	dst = le.AppendUint64(dst, uint64(s.WorkerHashID))
	ip := s.IP.Unmap()
	if ip.Is4() {
		a := ip.As4()
		dst = append(dst, a[:]...)
	} else {
		dst = append(dst, 0, 0, 0, 0)
	}
	dst = le.AppendUint32(dst, uint32(s.UserID))
	dst = le.AppendUint64(dst, s.ShareDiff)
	dst = le.AppendUint32(dst, uint32(s.Timestamp))
	dst = le.AppendUint32(dst, s.BlkBits)
	var result uint32
	if s.Status.IsAccepted() {
		result = 1
	}
	dst = le.AppendUint32(dst, result)
	return le.AppendUint32(dst, 0)
}

// varintTag is the one-byte key of a varint field numbered 1..15 (EncodeTag < 128).
func varintTag(num protowire.Number) byte {
	return byte(protowire.EncodeTag(num, protowire.VarintType))
}

func appendSint32(dst []byte, num protowire.Number, v int32) []byte {
	return protowire.AppendVarint(append(dst, varintTag(num)), protowire.EncodeZigZag(int64(v)))
}

func appendSint64(dst []byte, num protowire.Number, v int64) []byte {
	return protowire.AppendVarint(append(dst, varintTag(num)), protowire.EncodeZigZag(v))
}

func appendUint(dst []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(append(dst, varintTag(num)), v)
}

// appendIP renders a as btcpool does: dotted IPv4 (IPv4-mapped addresses unmapped), the
// zero Addr as "0.0.0.0", IPv6 in RFC 5952 text without zone.
func appendIP(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(dst, "0.0.0.0"...)
	}
	return a.Unmap().WithZone("").AppendTo(dst)
}

// Decode errors for share records.
var (
	errShareTruncated = errors.Join(ErrMalformed, errors.New("share: truncated or invalid protobuf field"))
	errShareNoVersion = errors.Join(ErrMalformed, errors.New("share: required field version (1) missing"))
	errShareIP        = errors.Join(ErrMalformed, errors.New("share: field ip (6) is not an IP address"))
	errShareFormat    = errors.Join(ErrMalformed, errors.New("share: neither a versioned protobuf, an 80-byte V2 nor a 48-byte V1 record"))
	errShareChecksum  = errors.Join(ErrMalformed, errors.New("share: V2 record checksum mismatch"))
)

// DecodeShareProto decodes a BitcoinMsg protobuf (no version prefix) into s, with proto2
// semantics: the required version field must be present, fields may come in any order and the
// last occurrence wins, unknown fields and known fields with an unexpected wire type are skipped.
// s is overwritten; on error its contents are unspecified. It does not allocate for IPv4
// addresses and does not retain b.
func DecodeShareProto(b []byte, s *Share) error {
	*s = Share{}
	haveVersion := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || !num.IsValid() { // protowire allows numbers up to MaxInt32; protobuf does not
			return errShareTruncated
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && num >= fieldVersion && num <= fieldBitsReached && num != fieldIP:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errShareTruncated
			}
			b = b[n:]
			setShareVarint(s, num, v)
			if num == fieldVersion {
				haveVersion = true
			}
		case typ == protowire.BytesType && num == fieldIP:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errShareTruncated
			}
			b = b[n:]
			ip, ok := parseIP(v)
			if !ok {
				return errShareIP
			}
			s.IP = ip
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errShareTruncated
			}
			b = b[n:]
		}
	}
	if !haveVersion {
		return errShareNoVersion
	}
	return nil
}

// sint32 fields decode like C++: the varint is truncated to 32 bits, then zigzag-decoded.
func zigzag32(v uint64) int32 { return int32(protowire.DecodeZigZag(v & math.MaxUint32)) }

func setShareVarint(s *Share, num protowire.Number, v uint64) {
	switch num {
	case fieldVersion:
		s.Version = uint32(zigzag32(v))
	case fieldWorkerHashID:
		s.WorkerHashID = protowire.DecodeZigZag(v)
	case fieldUserID:
		s.UserID = zigzag32(v)
	case fieldStatus:
		s.Status = Status(zigzag32(v))
	case fieldTimestamp:
		s.Timestamp = protowire.DecodeZigZag(v)
	case fieldJobID:
		s.JobID = v
	case fieldShareDiff:
		s.ShareDiff = v
	case fieldBlkBits:
		s.BlkBits = uint32(v)
	case fieldHeight:
		s.Height = uint32(v)
	case fieldNonce:
		s.Nonce = uint32(v)
	case fieldSessionID:
		s.SessionID = uint32(v)
	case fieldVersionMask:
		s.VersionMask = uint32(v)
	case fieldExtUserID:
		s.ExtUserID = zigzag32(v)
	case fieldBitsReached:
		s.BitsReached = uint32(v)
	}
}

// parseIP parses the ip field. Dotted IPv4 (what btcpool writes) is parsed without allocating;
// anything else goes through netip.ParseAddr. An empty field means "no address".
func parseIP(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, true
	}
	if a, ok := parseIPv4(b); ok {
		return a, true
	}
	if len(b) > 64 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(string(b))
	return a, err == nil
}

// parseIPv4 accepts exactly four decimal octets 0..255 without leading zeros, like netip.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var out [4]byte
	part, digits, val := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			out[part] = byte(val)
			part++
			digits, val = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || (digits == 1 && val == 0) {
			return netip.Addr{}, false
		}
		val = val*10 + int(c-'0')
		digits++
		if val > 255 {
			return netip.Addr{}, false
		}
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(out), true
}

// DecodeShareMessage decodes a BtcShare Kafka value of any version btcpool accepts
// (ShareBitcoin::UnserializeWithVersion), checked in this order:
//   - LE u32 CurrentShareVersion prefix + BitcoinMsg protobuf;
//   - an 80-byte ShareBitcoinBytesV2 with version ShareV2Version and a matching checksum;
//   - any 48-byte value as a ShareBitcoinBytesV1 (Height becomes ShareV1Height, Status
//     StatusAccept for result 1 and StatusRejectNoReason otherwise).
//
// Up-converted records get Version CurrentShareVersion so that Valid judges their contents.
// s is overwritten; b is not retained. Zero allocations for IPv4 shares.
func DecodeShareMessage(b []byte, s *Share) error {
	le := binary.LittleEndian
	if len(b) >= 4 && le.Uint32(b) == CurrentShareVersion {
		return DecodeShareProto(b[4:], s)
	}
	if len(b) == ShareV2Size && le.Uint32(b) == ShareV2Version {
		return decodeShareV2(b, s)
	}
	if len(b) == ShareV1Size {
		decodeShareV1(b, s)
		return nil
	}
	return errShareFormat
}

func decodeShareV1(b []byte, s *Share) {
	le := binary.LittleEndian
	status := StatusRejectNoReason
	if int32(le.Uint32(b[40:])) == 1 {
		status = StatusAccept
	}
	*s = Share{
		Version:      CurrentShareVersion,
		JobID:        le.Uint64(b[0:]),
		WorkerHashID: int64(le.Uint64(b[8:])),
		IP:           netip.AddrFrom4([4]byte(b[16:20])),
		UserID:       int32(le.Uint32(b[20:])),
		ShareDiff:    le.Uint64(b[24:]),
		Timestamp:    int64(le.Uint32(b[32:])),
		BlkBits:      le.Uint32(b[36:]),
		Status:       status,
		Height:       ShareV1Height,
	}
}

// shareV2Checksum is ShareBitcoinBytesV2::checkSum: the wrapping u64 sum of every field but the
// checksum (signed fields sign-extended, the 16-byte address as two u64 halves), folded to 32 bits.
func shareV2Checksum(b []byte) uint32 {
	le := binary.LittleEndian
	c := uint64(le.Uint32(b[0:])) + // version
		le.Uint64(b[8:]) + // workerHashId
		uint64(int64(int32(le.Uint32(b[16:])))) + // userId
		uint64(int64(int32(le.Uint32(b[20:])))) + // status
		le.Uint64(b[24:]) + // timestamp
		le.Uint64(b[32:]) + le.Uint64(b[40:]) + // ip
		le.Uint64(b[48:]) + // jobId
		le.Uint64(b[56:]) + // shareDiff
		uint64(le.Uint32(b[64:])) + // blkBits
		uint64(le.Uint32(b[68:])) + // height
		uint64(le.Uint32(b[72:])) + // nonce
		uint64(le.Uint32(b[76:])) // sessionId
	return uint32(c) + uint32(c>>32)
}

func decodeShareV2(b []byte, s *Share) error {
	le := binary.LittleEndian
	if le.Uint32(b[4:]) != shareV2Checksum(b) {
		return errShareChecksum
	}
	*s = Share{
		Version:      CurrentShareVersion,
		WorkerHashID: int64(le.Uint64(b[8:])),
		UserID:       int32(le.Uint32(b[16:])),
		Status:       Status(int32(le.Uint32(b[20:]))),
		Timestamp:    int64(le.Uint64(b[24:])),
		IP:           ipFrom16([16]byte(b[32:48])),
		JobID:        le.Uint64(b[48:]),
		ShareDiff:    le.Uint64(b[56:]),
		BlkBits:      le.Uint32(b[64:]),
		Height:       le.Uint32(b[68:]),
		Nonce:        le.Uint32(b[72:]),
		SessionID:    le.Uint32(b[76:]),
	}
	return nil
}

// ipFrom16 reads btcpool's IpAddress: IPv4 is stored IPv4-compatible (::a.b.c.d); IPv4-mapped
// (::ffff:a.b.c.d) is also IPv4; anything else is IPv6.
func ipFrom16(a [16]byte) netip.Addr {
	var zero [10]byte
	if [10]byte(a[:10]) == zero && ((a[10] == 0 && a[11] == 0) || (a[10] == 0xff && a[11] == 0xff)) {
		return netip.AddrFrom4([4]byte(a[12:]))
	}
	return netip.AddrFrom16(a)
}

// Valid reports whether sharelogger and slparser would keep s: Version is CurrentShareVersion
// and JobID, UserID, WorkerHashID, Height, BlkBits and ShareDiff are all non-zero.
func (s *Share) Valid() bool {
	return s.Version == CurrentShareVersion && s.JobID != 0 && s.UserID != 0 &&
		s.WorkerHashID != 0 && s.Height != 0 && s.BlkBits != 0 && s.ShareDiff != 0
}

// Score returns the share's block-finding score: ShareDiff / NetworkDifficulty(BlkBits),
// capped at 1, and 0 when either is zero (spec §6.1).
func (s *Share) Score() float64 {
	return Score(s.ShareDiff, s.BlkBits)
}

// Score returns shareDiff / NetworkDifficulty(bits), capped at 1, and 0 when either is zero.
func Score(shareDiff uint64, bits uint32) float64 {
	if shareDiff == 0 || bits == 0 {
		return 0
	}
	nd := NetworkDifficulty(bits)
	if nd <= 0 || math.IsInf(nd, 0) {
		return 0
	}
	sc := float64(shareDiff) / nd
	if sc > 1 {
		return 1
	}
	return sc
}

// NetworkDifficulty returns diff1 / target for a compact target, diff1 being compact
// 0x1d00ffff, as a float64 (btcpool's BitsToDifficulty). The sign bit is ignored; a zero target
// gives +Inf.
func NetworkDifficulty(bits uint32) float64 {
	mant := bits & 0x007fffff
	exp := int(bits >> 24)
	if exp <= 3 {
		mant >>= 8 * uint(3-exp)
		exp = 3
	}
	if mant == 0 {
		return math.Inf(1)
	}
	// diff1 = 0xffff << 208; target = mant << 8*(exp-3).
	return math.Ldexp(float64(0xffff)/float64(mant), 208-8*(exp-3))
}

package btcpool

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/hashpool/hashpool/internal/alloctest"
)

// goldenShare and goldenShareMsg were computed independently (a 20-line Python varint/zigzag
// encoder following spec §6.1), not with this package.
var goldenShare = Share{
	Version:      CurrentShareVersion,
	WorkerHashID: -3214321432143214321,
	UserID:       1234,
	Status:       StatusAccept,
	Timestamp:    1600000000,
	IP:           netip.MustParseAddr("203.0.113.7"),
	JobID:        6871947673600000513, // 1600000000<<32 | 0x0201
	ShareDiff:    16384,
	BlkBits:      0x1711d4f2,
	Height:       650000,
	Nonce:        0xdeadbeef,
	SessionID:    0x01000002,
	VersionMask:  0x1fffe000,
	BitsReached:  0x1900ab12,
}

const goldenShareMsg = "04000100" + "0888800810e1db91cdfe93c89b5918a413208edae4b20d2880c0f0f50b320b3230332e302e3131332e37" +
	"3881848080808084af5f4080800148f2a9c7b8015090d62758effdb6f50d60828080086880c0ffff017892d682c801"

// goldenStaleShare: negative sint fields, zero IP written as "0.0.0.0", ext user id set,
// bits reached unset.
var goldenStaleShare = Share{
	Version: CurrentShareVersion, WorkerHashID: 1, UserID: -7, Status: StatusStaleShare, Timestamp: -1,
	JobID: 1, ShareDiff: 1, BlkBits: 1, Height: 1, ExtUserID: -7,
}

const goldenStaleShareRecord = "25000000" + "088880081002180d204a28013207302e302e302e303801400148015001580060006800700d"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestShareGolden(t *testing.T) {
	msg := AppendShareMessage(nil, &goldenShare)
	if got := hex.EncodeToString(msg); got != goldenShareMsg {
		t.Fatalf("message\n got %s\nwant %s", got, goldenShareMsg)
	}
	rec := AppendShareLogRecord(nil, &goldenStaleShare)
	if got := hex.EncodeToString(rec); got != goldenStaleShareRecord {
		t.Fatalf("record\n got %s\nwant %s", got, goldenStaleShareRecord)
	}
	// A zero Version is written as the current one.
	s := goldenShare
	s.Version = 0
	if got := hex.EncodeToString(AppendShareMessage(nil, &s)); got != goldenShareMsg {
		t.Fatalf("zero version not defaulted: %s", got)
	}

	var got Share
	if err := DecodeShareMessage(mustHex(t, goldenShareMsg), &got); err != nil || got != goldenShare {
		t.Fatalf("decode message: %v\n got %+v\nwant %+v", err, got, goldenShare)
	}
	n, err := DecodeShareLogRecord(mustHex(t, goldenStaleShareRecord), &got)
	want := goldenStaleShare
	want.IP = netip.AddrFrom4([4]byte{}) // "0.0.0.0" reads back as an address
	if err != nil || n != len(goldenStaleShareRecord)/2 || got != want {
		t.Fatalf("decode record: n=%d err=%v\n got %+v\nwant %+v", n, err, got, want)
	}
}

// bitcoinMsgType builds btcpool's sharebase.BitcoinMsg (proto2) as a dynamic message type: the
// protobuf library is the reference encoder and decoder.
func bitcoinMsgType(t testing.TB) protoreflect.MessageType {
	t.Helper()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	field := func(num int32, name string, typ descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: opt, Type: typ.Enum()}
	}
	fields := []*descriptorpb.FieldDescriptorProto{
		field(1, "version", descriptorpb.FieldDescriptorProto_TYPE_SINT32),
		field(2, "workerhashid", descriptorpb.FieldDescriptorProto_TYPE_SINT64),
		field(3, "userid", descriptorpb.FieldDescriptorProto_TYPE_SINT32),
		field(4, "status", descriptorpb.FieldDescriptorProto_TYPE_SINT32),
		field(5, "timestamp", descriptorpb.FieldDescriptorProto_TYPE_SINT64),
		field(6, "ip", descriptorpb.FieldDescriptorProto_TYPE_STRING),
		field(7, "jobid", descriptorpb.FieldDescriptorProto_TYPE_UINT64),
		field(8, "sharediff", descriptorpb.FieldDescriptorProto_TYPE_UINT64),
		field(9, "blkbits", descriptorpb.FieldDescriptorProto_TYPE_UINT32),
		field(10, "height", descriptorpb.FieldDescriptorProto_TYPE_UINT32),
		field(11, "nonce", descriptorpb.FieldDescriptorProto_TYPE_UINT32),
		field(12, "sessionid", descriptorpb.FieldDescriptorProto_TYPE_UINT32),
		field(13, "versionmask", descriptorpb.FieldDescriptorProto_TYPE_UINT32),
		field(14, "extuserid", descriptorpb.FieldDescriptorProto_TYPE_SINT32),
		field(15, "bitsreached", descriptorpb.FieldDescriptorProto_TYPE_UINT32),
	}
	fields[0].Label = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:        proto.String("bitcoin.proto"),
		Package:     proto.String("sharebase"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("BitcoinMsg"), Field: fields}},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dynamicpb.NewMessageType(fd.Messages().Get(0))
}

// referenceShareProto encodes s with the protobuf library, setting fields as btcpool's C++ does.
func referenceShareProto(t testing.TB, mt protoreflect.MessageType, s *Share) []byte {
	t.Helper()
	m := mt.New()
	f := m.Descriptor().Fields()
	set := func(num protowire.Number, v protoreflect.Value) { m.Set(f.ByNumber(num), v) }
	set(1, protoreflect.ValueOfInt32(int32(s.Version)))
	set(2, protoreflect.ValueOfInt64(s.WorkerHashID))
	set(3, protoreflect.ValueOfInt32(s.UserID))
	set(4, protoreflect.ValueOfInt32(int32(s.Status)))
	set(5, protoreflect.ValueOfInt64(s.Timestamp))
	ip := "0.0.0.0"
	if s.IP.IsValid() {
		ip = s.IP.Unmap().WithZone("").String()
	}
	set(6, protoreflect.ValueOfString(ip))
	set(7, protoreflect.ValueOfUint64(s.JobID))
	set(8, protoreflect.ValueOfUint64(s.ShareDiff))
	set(9, protoreflect.ValueOfUint32(s.BlkBits))
	set(10, protoreflect.ValueOfUint32(s.Height))
	set(11, protoreflect.ValueOfUint32(s.Nonce))
	set(12, protoreflect.ValueOfUint32(s.SessionID))
	set(13, protoreflect.ValueOfUint32(s.VersionMask))
	if s.ExtUserID != 0 {
		set(14, protoreflect.ValueOfInt32(s.ExtUserID))
	}
	if s.BitsReached != 0 {
		set(15, protoreflect.ValueOfUint32(s.BitsReached))
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Interface())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomShare(r *rand.Rand) Share {
	ips := []netip.Addr{{}, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("2001:db8::1"), netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), 1, 2})}
	statuses := []Status{StatusAccept, StatusSolved, StatusStaleShare, StatusLowDifficulty, StatusUnknown, Status(r.Int32() - r.Int32())}
	pick32 := func() uint32 { return []uint32{0, 1, 127, 128, math.MaxUint32, r.Uint32()}[r.IntN(6)] }
	pick64 := func() uint64 { return []uint64{0, 1, math.MaxUint64, 1 << 63, r.Uint64()}[r.IntN(5)] }
	return Share{
		Version: CurrentShareVersion, WorkerHashID: int64(pick64()), UserID: int32(pick32()),
		Status: statuses[r.IntN(len(statuses))], Timestamp: int64(pick64()), IP: ips[r.IntN(len(ips))],
		JobID: pick64(), ShareDiff: pick64(), BlkBits: pick32(), Height: pick32(), Nonce: pick32(),
		SessionID: pick32(), VersionMask: pick32(), ExtUserID: int32(pick32()), BitsReached: pick32(),
	}
}

func TestShareProtoMatchesProtobufLibrary(t *testing.T) {
	mt := bitcoinMsgType(t)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		s := randomShare(r)
		want := referenceShareProto(t, mt, &s)
		got := AppendShareProto(nil, &s)
		if string(got) != string(want) {
			t.Fatalf("case %d %+v\n got %x\nwant %x", i, s, got, want)
		}
		if len(got) > MaxShareProtoSize {
			t.Fatalf("encoded %d bytes > MaxShareProtoSize", len(got))
		}
		var back Share
		if err := DecodeShareProto(want, &back); err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		exp := s
		if !exp.IP.IsValid() {
			exp.IP = netip.AddrFrom4([4]byte{})
		}
		if back != exp {
			t.Fatalf("case %d\n got %+v\nwant %+v", i, back, exp)
		}
	}
}

func TestDecodeShareProtoCases(t *testing.T) {
	base := AppendShareProto(nil, &goldenShare)
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	versionOnly := protowire.AppendVarint(tag(1, protowire.VarintType), protowire.EncodeZigZag(CurrentShareVersion))
	cases := []struct {
		name string
		in   []byte
		ok   bool
		chk  func(*Share) bool
	}{
		{"golden", base, true, func(s *Share) bool { return *s == goldenShare }},
		{"version only", versionOnly, true, func(s *Share) bool { return *s == Share{Version: CurrentShareVersion} }},
		{"empty", nil, false, nil},
		{"no version", AppendShareProto(nil, &goldenShare)[4:], false, nil},
		{"unknown varint, fixed32, fixed64, bytes fields skipped", cat(
			protowire.AppendVarint(tag(99, protowire.VarintType), 5),
			protowire.AppendFixed32(tag(100, protowire.Fixed32Type), 5),
			protowire.AppendFixed64(tag(101, protowire.Fixed64Type), 5),
			protowire.AppendBytes(tag(102, protowire.BytesType), []byte("xyz")),
			base), true, func(s *Share) bool { return *s == goldenShare }},
		{"wrong wire type on known field is skipped", cat(base,
			protowire.AppendFixed32(tag(10, protowire.Fixed32Type), 7)), true,
			func(s *Share) bool { return s.Height == goldenShare.Height }},
		{"last occurrence wins", cat(base, protowire.AppendVarint(tag(10, protowire.VarintType), 7)), true,
			func(s *Share) bool { return s.Height == 7 }},
		{"uint32 field truncates like C++", cat(versionOnly, protowire.AppendVarint(tag(10, protowire.VarintType), 1<<32|9)), true,
			func(s *Share) bool { return s.Height == 9 }},
		{"ipv6", cat(versionOnly, protowire.AppendString(tag(6, protowire.BytesType), "2001:db8::7")), true,
			func(s *Share) bool { return s.IP == netip.MustParseAddr("2001:db8::7") }},
		{"empty ip", cat(versionOnly, protowire.AppendString(tag(6, protowire.BytesType), "")), true,
			func(s *Share) bool { return !s.IP.IsValid() }},
		{"bad ip", cat(versionOnly, protowire.AppendString(tag(6, protowire.BytesType), "1.2.3.256")), false, nil},
		{"leading zero ip", cat(versionOnly, protowire.AppendString(tag(6, protowire.BytesType), "01.2.3.4")), false, nil},
		{"five octets", cat(versionOnly, protowire.AppendString(tag(6, protowire.BytesType), "1.2.3.4.5")), false, nil},
		{"truncated varint", base[:len(base)-1], false, nil},
		{"truncated bytes", cat(versionOnly, tag(6, protowire.BytesType), []byte{50, 'a'}), false, nil},
		{"field number zero", cat(versionOnly, []byte{0x00, 0x01}), false, nil},
		{"end group without start", cat(versionOnly, tag(5, protowire.EndGroupType)), false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Share
			err := DecodeShareProto(c.in, &s)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if c.chk != nil && !c.chk(&s) {
				t.Fatalf("decoded %+v", s)
			}
		})
	}
}

// shareV2Bytes is an independent reference of ShareBitcoinBytesV2 (spec §6.1), computing the
// checksum from the field values.
func shareV2Bytes(s *Share, ip16 [16]byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, ShareV2Size)
	le.PutUint32(b[0:], ShareV2Version)
	le.PutUint64(b[8:], uint64(s.WorkerHashID))
	le.PutUint32(b[16:], uint32(s.UserID))
	le.PutUint32(b[20:], uint32(s.Status))
	le.PutUint64(b[24:], uint64(s.Timestamp))
	copy(b[32:], ip16[:])
	le.PutUint64(b[48:], s.JobID)
	le.PutUint64(b[56:], s.ShareDiff)
	le.PutUint32(b[64:], s.BlkBits)
	le.PutUint32(b[68:], s.Height)
	le.PutUint32(b[72:], s.Nonce)
	le.PutUint32(b[76:], s.SessionID)
	var c uint64
	for _, v := range []uint64{ShareV2Version, uint64(s.WorkerHashID), uint64(int64(s.UserID)), uint64(int64(s.Status)),
		uint64(s.Timestamp), le.Uint64(ip16[:8]), le.Uint64(ip16[8:]), s.JobID, s.ShareDiff,
		uint64(s.BlkBits), uint64(s.Height), uint64(s.Nonce), uint64(s.SessionID)} {
		c += v
	}
	le.PutUint32(b[4:], uint32(c)+uint32(c>>32))
	return b
}

func TestDecodeShareMessageV2(t *testing.T) {
	s := Share{WorkerHashID: -99, UserID: -3, Status: StatusAccept, Timestamp: 1600000000,
		JobID: math.MaxUint64, ShareDiff: 1 << 40, BlkBits: 0x1711d4f2, Height: 650000, Nonce: 0xffffffff, SessionID: 0x05000001}
	cases := []struct {
		ip   [16]byte
		want netip.Addr
	}{
		{[16]byte{12: 203, 13: 0, 14: 113, 15: 7}, netip.MustParseAddr("203.0.113.7")},
		{[16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}, netip.MustParseAddr("10.0.0.1")},
		{[16]byte{}, netip.MustParseAddr("0.0.0.0")},
		{netip.MustParseAddr("2001:db8::1").As16(), netip.MustParseAddr("2001:db8::1")},
	}
	for _, c := range cases {
		b := shareV2Bytes(&s, c.ip)
		var got Share
		if err := DecodeShareMessage(b, &got); err != nil {
			t.Fatal(err)
		}
		want := s
		want.Version = CurrentShareVersion
		want.IP = c.want
		if got != want {
			t.Fatalf("\n got %+v\nwant %+v", got, want)
		}
		if !got.Valid() {
			t.Fatal("up-converted V2 share not valid")
		}
		for i := 8; i < ShareV2Size; i += 7 { // every field participates in the checksum
			bad := append([]byte(nil), b...)
			bad[i] ^= 0x01
			if err := DecodeShareMessage(bad, &got); err == nil {
				t.Fatalf("checksum accepted a flipped byte at %d", i)
			}
		}
	}
}

func TestShareV1(t *testing.T) {
	// Built by hand from the V1 layout (spec §6.1).
	le := binary.LittleEndian
	b := make([]byte, ShareV1Size)
	le.PutUint64(b[0:], 0x5f5e100000000201)
	le.PutUint64(b[8:], uint64(0xfffffffffffffff0)) // -16
	copy(b[16:20], []byte{192, 168, 1, 20})
	le.PutUint32(b[20:], 77)
	le.PutUint64(b[24:], 65536)
	le.PutUint32(b[32:], 1600000000)
	le.PutUint32(b[36:], 0x1711d4f2)
	le.PutUint32(b[40:], 1)
	want := Share{Version: CurrentShareVersion, JobID: 0x5f5e100000000201, WorkerHashID: -16,
		IP: netip.MustParseAddr("192.168.1.20"), UserID: 77, ShareDiff: 65536, Timestamp: 1600000000,
		BlkBits: 0x1711d4f2, Status: StatusAccept, Height: ShareV1Height}
	var got Share
	if err := DecodeShareMessage(b, &got); err != nil || got != want {
		t.Fatalf("err %v\n got %+v\nwant %+v", err, got, want)
	}
	if enc := AppendShareV1(nil, &want); string(enc) != string(b) {
		t.Fatalf("AppendShareV1\n got %x\nwant %x", enc, b)
	}
	le.PutUint32(b[40:], 0)
	if err := DecodeShareMessage(b, &got); err != nil || got.Status != StatusRejectNoReason {
		t.Fatalf("reject V1: %v %v", err, got.Status)
	}
}

func TestDecodeShareMessageFormats(t *testing.T) {
	proto48 := AppendShareMessage(nil, &goldenShare)
	cases := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"nil", nil, false},
		{"3 bytes", []byte{4, 0, 1}, false},
		{"prefix only (no version field)", []byte{4, 0, 1, 0}, false},
		{"wrong prefix", append([]byte{5, 0, 1, 0}, proto48[4:]...), false},
		{"80 bytes with other version", make([]byte, 80), false},
		{"any 48 bytes is V1", make([]byte, 48), true},
		{"47 bytes", make([]byte, 47), false},
	}
	for _, c := range cases {
		var s Share
		if err := DecodeShareMessage(c.in, &s); (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
}

func TestShareValid(t *testing.T) {
	if !goldenShare.Valid() {
		t.Fatal("golden share not valid")
	}
	mut := []func(*Share){
		func(s *Share) { s.Version = ShareV2Version },
		func(s *Share) { s.JobID = 0 },
		func(s *Share) { s.UserID = 0 },
		func(s *Share) { s.WorkerHashID = 0 },
		func(s *Share) { s.Height = 0 },
		func(s *Share) { s.BlkBits = 0 },
		func(s *Share) { s.ShareDiff = 0 },
	}
	for i, m := range mut {
		s := goldenShare
		m(&s)
		if s.Valid() {
			t.Errorf("mutation %d still valid", i)
		}
	}
}

// referenceDifficulty is diff1/target with math/big, the slow oracle for NetworkDifficulty.
func referenceDifficulty(bits uint32) *big.Float {
	mant := new(big.Int).SetUint64(uint64(bits & 0x007fffff))
	exp := int(bits >> 24)
	target := new(big.Int)
	if exp <= 3 {
		target.Rsh(mant, uint(8*(3-exp)))
	} else {
		target.Lsh(mant, uint(8*(exp-3)))
	}
	diff1 := new(big.Int).Lsh(big.NewInt(0xffff), 208)
	return new(big.Float).Quo(new(big.Float).SetInt(diff1), new(big.Float).SetInt(target))
}

func TestNetworkDifficultyAndScore(t *testing.T) {
	for _, bits := range []uint32{0x1d00ffff, 0x1711d4f2, 0x207fffff, 0x1b0404cb, 0x03123456, 0x02008000, 0x01003456, 0x22000001} {
		want, _ := referenceDifficulty(bits).Float64()
		got := NetworkDifficulty(bits)
		if math.Abs(got-want)/want > 1e-15 {
			t.Errorf("bits %08x: got %g want %g", bits, got, want)
		}
	}
	if NetworkDifficulty(0x1d00ffff) != 1 {
		t.Fatalf("diff1 is %v", NetworkDifficulty(0x1d00ffff))
	}
	cases := []struct {
		diff uint64
		bits uint32
		want float64
	}{
		{0, 0x1d00ffff, 0},
		{1, 0, 0},
		{1, 0x1d00ffff, 1},
		{2, 0x1d00ffff, 1}, // capped
		{1, 0x1c00ffff, 1.0 / 256},
		{1 << 20, 0x1a00ffff, 1.0 / 16}, // difficulty 2^24
		{5, 0x01000000, 0},              // zero target
	}
	for _, c := range cases {
		if got := Score(c.diff, c.bits); got != c.want {
			t.Errorf("Score(%d, %08x) = %v want %v", c.diff, c.bits, got, c.want)
		}
	}
	s := goldenShare
	want, _ := new(big.Float).Quo(new(big.Float).SetUint64(s.ShareDiff), referenceDifficulty(s.BlkBits)).Float64()
	if got := s.Score(); math.Abs(got-want)/want > 1e-15 {
		t.Fatalf("share score %g want %g", got, want)
	}
}

func TestShareZeroAlloc(t *testing.T) {
	buf := make([]byte, 0, 4+MaxShareProtoSize)
	shares := []Share{goldenShare, goldenStaleShare}
	shares = append(shares, goldenShare)
	shares[2].IP = netip.MustParseAddr("2001:db8::dead:beef")
	for _, s := range shares {
		alloctest.Zero(t, "AppendShareMessage", 100, func() { buf = AppendShareMessage(buf[:0], &s) })
		alloctest.Zero(t, "AppendShareLogRecord", 100, func() { buf = AppendShareLogRecord(buf[:0], &s) })
	}
	msg := AppendShareMessage(nil, &goldenShare)
	var out Share
	alloctest.Zero(t, "DecodeShareMessage", 100, func() { _ = DecodeShareMessage(msg, &out) })
}

func BenchmarkShareRecordEncode(b *testing.B) {
	s := goldenShare
	buf := make([]byte, 0, 4+MaxShareProtoSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendShareMessage(nil, &s))))
	for b.Loop() {
		buf = AppendShareMessage(buf[:0], &s)
	}
}

func BenchmarkShareMessageDecode(b *testing.B) {
	msg := AppendShareMessage(nil, &goldenShare)
	var s Share
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := DecodeShareMessage(msg, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// btcpool writes the share's own version field as the message prefix.
func TestShareMessagePrefixIsVersion(t *testing.T) {
	s := goldenShare
	s.Version = ShareV2Version
	b := AppendShareMessage(nil, &s)
	if binary.LittleEndian.Uint32(b) != ShareV2Version {
		t.Fatalf("prefix % x", b[:4])
	}
	var got Share
	if err := DecodeShareMessage(b, &got); err == nil {
		t.Fatal("a non-current prefix on a protobuf decoded as a share")
	}
}

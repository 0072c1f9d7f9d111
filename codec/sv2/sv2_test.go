package sv2

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"reflect"
	"testing"
)

type messageSample struct {
	name  string
	typ   uint8
	msg   any
	frame string
}

func hx(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func h32(s string) (v U256) {
	copy(v[:], hx(s))
	return v
}

// appendAny and decodeAny dispatch on the message's Go type; tests only (the
// hot path calls the typed functions).
func appendAny(dst []byte, m any) []byte {
	switch m := m.(type) {
	case *SetupConnection:
		return AppendSetupConnection(dst, m)
	case *SetupConnectionSuccess:
		return AppendSetupConnectionSuccess(dst, m)
	case *SetupConnectionError:
		return AppendSetupConnectionError(dst, m)
	case *ChannelEndpointChanged:
		return AppendChannelEndpointChanged(dst, m)
	case *Reconnect:
		return AppendReconnect(dst, m)
	case *OpenStandardMiningChannel:
		return AppendOpenStandardMiningChannel(dst, m)
	case *OpenStandardMiningChannelSuccess:
		return AppendOpenStandardMiningChannelSuccess(dst, m)
	case *OpenMiningChannelError:
		return AppendOpenMiningChannelError(dst, m)
	case *OpenExtendedMiningChannel:
		return AppendOpenExtendedMiningChannel(dst, m)
	case *OpenExtendedMiningChannelSuccess:
		return AppendOpenExtendedMiningChannelSuccess(dst, m)
	case *NewMiningJob:
		return AppendNewMiningJob(dst, m)
	case *UpdateChannel:
		return AppendUpdateChannel(dst, m)
	case *UpdateChannelError:
		return AppendUpdateChannelError(dst, m)
	case *CloseChannel:
		return AppendCloseChannel(dst, m)
	case *SetExtranoncePrefix:
		return AppendSetExtranoncePrefix(dst, m)
	case *SubmitSharesStandard:
		return AppendSubmitSharesStandard(dst, m)
	case *SubmitSharesExtended:
		return AppendSubmitSharesExtended(dst, m)
	case *SubmitSharesSuccess:
		return AppendSubmitSharesSuccess(dst, m)
	case *SubmitSharesError:
		return AppendSubmitSharesError(dst, m)
	case *NewExtendedMiningJob:
		return AppendNewExtendedMiningJob(dst, m)
	case *SetNewPrevHash:
		return AppendSetNewPrevHash(dst, m)
	case *SetTarget:
		return AppendSetTarget(dst, m)
	case *SetCustomMiningJob:
		return AppendSetCustomMiningJob(dst, m)
	case *SetCustomMiningJobSuccess:
		return AppendSetCustomMiningJobSuccess(dst, m)
	case *SetCustomMiningJobError:
		return AppendSetCustomMiningJobError(dst, m)
	case *SetGroupChannel:
		return AppendSetGroupChannel(dst, m)
	}
	panic("unknown message type")
}

// decodeAny decodes payload p of core message type t into a new struct.
func decodeAny(t uint8, p []byte) (any, error) {
	switch t {
	case MsgSetupConnection:
		m := new(SetupConnection)
		return m, DecodeSetupConnection(p, m)
	case MsgSetupConnectionSuccess:
		m := new(SetupConnectionSuccess)
		return m, DecodeSetupConnectionSuccess(p, m)
	case MsgSetupConnectionError:
		m := new(SetupConnectionError)
		return m, DecodeSetupConnectionError(p, m)
	case MsgChannelEndpointChanged:
		m := new(ChannelEndpointChanged)
		return m, DecodeChannelEndpointChanged(p, m)
	case MsgReconnect:
		m := new(Reconnect)
		return m, DecodeReconnect(p, m)
	case MsgOpenStandardMiningChannel:
		m := new(OpenStandardMiningChannel)
		return m, DecodeOpenStandardMiningChannel(p, m)
	case MsgOpenStandardMiningChannelSuccess:
		m := new(OpenStandardMiningChannelSuccess)
		return m, DecodeOpenStandardMiningChannelSuccess(p, m)
	case MsgOpenMiningChannelError:
		m := new(OpenMiningChannelError)
		return m, DecodeOpenMiningChannelError(p, m)
	case MsgOpenExtendedMiningChannel:
		m := new(OpenExtendedMiningChannel)
		return m, DecodeOpenExtendedMiningChannel(p, m)
	case MsgOpenExtendedMiningChannelSuccess:
		m := new(OpenExtendedMiningChannelSuccess)
		return m, DecodeOpenExtendedMiningChannelSuccess(p, m)
	case MsgNewMiningJob:
		m := new(NewMiningJob)
		return m, DecodeNewMiningJob(p, m)
	case MsgUpdateChannel:
		m := new(UpdateChannel)
		return m, DecodeUpdateChannel(p, m)
	case MsgUpdateChannelError:
		m := new(UpdateChannelError)
		return m, DecodeUpdateChannelError(p, m)
	case MsgCloseChannel:
		m := new(CloseChannel)
		return m, DecodeCloseChannel(p, m)
	case MsgSetExtranoncePrefix:
		m := new(SetExtranoncePrefix)
		return m, DecodeSetExtranoncePrefix(p, m)
	case MsgSubmitSharesStandard:
		m := new(SubmitSharesStandard)
		return m, DecodeSubmitSharesStandard(p, m)
	case MsgSubmitSharesExtended:
		m := new(SubmitSharesExtended)
		return m, DecodeSubmitSharesExtended(p, m)
	case MsgSubmitSharesSuccess:
		m := new(SubmitSharesSuccess)
		return m, DecodeSubmitSharesSuccess(p, m)
	case MsgSubmitSharesError:
		m := new(SubmitSharesError)
		return m, DecodeSubmitSharesError(p, m)
	case MsgNewExtendedMiningJob:
		m := new(NewExtendedMiningJob)
		return m, DecodeNewExtendedMiningJob(p, m)
	case MsgSetNewPrevHash:
		m := new(SetNewPrevHash)
		return m, DecodeSetNewPrevHash(p, m)
	case MsgSetTarget:
		m := new(SetTarget)
		return m, DecodeSetTarget(p, m)
	case MsgSetCustomMiningJob:
		m := new(SetCustomMiningJob)
		return m, DecodeSetCustomMiningJob(p, m)
	case MsgSetCustomMiningJobSuccess:
		m := new(SetCustomMiningJobSuccess)
		return m, DecodeSetCustomMiningJobSuccess(p, m)
	case MsgSetCustomMiningJobError:
		m := new(SetCustomMiningJobError)
		return m, DecodeSetCustomMiningJobError(p, m)
	case MsgSetGroupChannel:
		m := new(SetGroupChannel)
		return m, DecodeSetGroupChannel(p, m)
	}
	return nil, ErrUnknownMessage
}

// normalize turns empty byte slices and sequences into nil so that decoded
// and constructed messages compare equal with reflect.DeepEqual.
func normalize(m any) any {
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Slice && f.Len() == 0 {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return m
}

// TestGoldenFrames: every message encodes to the bytes an independent
// encoder of the spec's tables produced, and decodes back to the same value.
func TestGoldenFrames(t *testing.T) {
	seen := map[uint8]bool{}
	for _, s := range messageSamples {
		seen[s.typ] = true
		want := hx(s.frame)
		got := appendAny([]byte("prefix"), s.msg)
		if !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("%s: encoder clobbered dst", s.name)
		}
		got = got[len("prefix"):]
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encode\n got %x\nwant %x", s.name, got, want)
			continue
		}
		h, err := ParseHeader(got)
		if err != nil || h.MsgType != s.typ || int(h.Length) != len(got)-HeaderLen {
			t.Errorf("%s: header %+v, %v", s.name, h, err)
		}
		if err := CheckHeader(h); err != nil {
			t.Errorf("%s: CheckHeader: %v", s.name, err)
		}
		if err := s.msg.(interface{ Check() error }).Check(); err != nil {
			t.Errorf("%s: Check: %v", s.name, err)
		}
		dec, err := decodeAny(h.MsgType, got[HeaderLen:])
		if err != nil {
			t.Errorf("%s: decode: %v", s.name, err)
			continue
		}
		if !reflect.DeepEqual(normalize(dec), normalize(s.msg)) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", s.name, dec, s.msg)
		}
	}
	if len(seen) != 26 {
		t.Fatalf("samples cover %d message types, want 26", len(seen))
	}
}

// TestTruncatedAndTrailing: every proper prefix of a payload is ErrShort (or
// ErrBounds when a cut lands on a length byte), never a panic; one extra byte
// is ErrTrailing except after SubmitSharesExtended, whose tail is TLV.
func TestTruncatedAndTrailing(t *testing.T) {
	for _, s := range messageSamples {
		p := hx(s.frame)[HeaderLen:]
		for n := 0; n < len(p); n++ {
			if s.typ == MsgSubmitSharesExtended && n >= len(p)-16 {
				break // the sample's TLV tail; a cut there is still a valid message
			}
			_, err := decodeAny(s.typ, p[:n:n])
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrBounds) {
				t.Fatalf("%s cut at %d/%d: err %v", s.name, n, len(p), err)
			}
		}
		m, err := decodeAny(s.typ, append(p[:len(p):len(p)], 0))
		if s.typ == MsgSubmitSharesExtended {
			if err != nil || m.(*SubmitSharesExtended).TLV == nil {
				t.Fatalf("%s with a tail: %v %+v", s.name, err, m)
			}
			continue
		}
		if err != ErrTrailing {
			t.Fatalf("%s with a trailing byte: err %v", s.name, err)
		}
	}
}

func TestBounds(t *testing.T) {
	// B0_32 with a length prefix of 33.
	p := AppendU32(nil, 1)
	p = append(p, 33)
	p = append(p, make([]byte, 33)...)
	p = AppendU32(p, 2)
	var m SetExtranoncePrefix
	if err := DecodeSetExtranoncePrefix(p[:len(p)-4], &m); err != ErrBounds {
		t.Fatalf("B0_32 of 33: %v", err)
	}
	// OPTION with a length of 2.
	q := AppendU32(AppendU32(nil, 1), 2)
	q = append(q, 2, 1, 2, 3, 4, 5, 6, 7, 8)
	var nj NewMiningJob
	if err := DecodeNewMiningJob(q, &nj); err != ErrBounds {
		t.Fatalf("OPTION of 2: %v", err)
	}
	// SEQ0_255[U256] claiming more hashes than present.
	var ej NewExtendedMiningJob
	r := AppendU32(AppendU32(nil, 1), 2)
	r = append(r, 0)
	r = AppendU32(r, 0x20000000)
	r = append(r, 1, 200)
	r = append(r, make([]byte, 64)...)
	if err := DecodeNewExtendedMiningJob(r, &ej); err != ErrShort {
		t.Fatalf("SEQ0_255 of 200 hashes in 64 bytes: %v", err)
	}
	// BOOL: only the low bit counts.
	if rd := NewReader([]byte{0xfe}); rd.Bool() {
		t.Fatal("0xfe read as true")
	}
	if rd := NewReader([]byte{0x03}); !rd.Bool() {
		t.Fatal("0x03 read as false")
	}
	// Encoders cut over-long fields and Check reports them.
	long := &SetupConnectionError{ErrorCode: make([]byte, 300)}
	if long.Check() != ErrBounds {
		t.Fatal("Check passed a 300-byte STR0_255")
	}
	f := AppendSetupConnectionError(nil, long)
	var back SetupConnectionError
	if h, _ := ParseHeader(f); int(h.Length) != 4+1+255 {
		t.Fatalf("cut frame length %d", h.Length)
	}
	if err := DecodeSetupConnectionError(f[HeaderLen:], &back); err != nil || len(back.ErrorCode) != 255 {
		t.Fatalf("cut frame decode: %v, %d", err, len(back.ErrorCode))
	}
}

func TestDataTypes(t *testing.T) {
	var b []byte
	b = AppendU8(b, 0xab)
	b = AppendU16(b, 0x1234)
	b = AppendU24(b, 0x56789a)
	b = AppendU32(b, 0xdeadbeef)
	b = AppendU64(b, 0x0102030405060708)
	b = AppendF32(b, 1.5)
	b = AppendB16M(b, []byte("hello"))
	b = AppendB64K(b, []byte("hi"))
	want := hx("ab" + "3412" + "9a7856" + "efbeadde" + "0807060504030201" + "0000c03f" + "05000068656c6c6f" + "02006869")
	if !bytes.Equal(b, want) {
		t.Fatalf("got  %x\nwant %x", b, want)
	}
	r := NewReader(b)
	if r.U8() != 0xab || r.U16() != 0x1234 || r.U24() != 0x56789a || r.U32() != 0xdeadbeef ||
		r.U64() != 0x0102030405060708 || r.F32() != 1.5 || string(r.B16M()) != "hello" || string(r.B64K()) != "hi" {
		t.Fatal("read back differs")
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if got := AppendF32(nil, float32(math.Inf(1))); !bytes.Equal(got, hx("0000807f")) {
		t.Fatalf("+Inf %x", got)
	}
	// The first error sticks and later reads return zero values.
	r = NewReader([]byte{1})
	if r.U32() != 0 || r.U8() != 0 || r.Err() != ErrShort {
		t.Fatal("sticky error")
	}
}

func TestHeader(t *testing.T) {
	f := AppendSubmitSharesSuccess(nil, &SubmitSharesSuccess{ChannelID: 7})
	if !bytes.Equal(f[:HeaderLen], hx("00801c140000")) {
		t.Fatalf("header %x", f[:HeaderLen])
	}
	h, _ := ParseHeader(f)
	if !h.ChannelMsg() || h.Extension() != 0 || h.Length != 20 {
		t.Fatalf("%+v", h)
	}
	cases := []struct {
		h    Header
		want error
	}{
		{Header{ExtensionType: 0x8000, MsgType: MsgSubmitSharesStandard}, nil},
		{Header{ExtensionType: 0x0000, MsgType: MsgSubmitSharesStandard}, ErrChannelBit},
		{Header{ExtensionType: 0x8000, MsgType: MsgSetupConnection}, ErrChannelBit},
		{Header{ExtensionType: 0x0000, MsgType: MsgSetGroupChannel}, nil},
		{Header{ExtensionType: 0x0000, MsgType: 0x1e}, ErrUnknownMessage},
		{Header{ExtensionType: 0x0000, MsgType: 0x70}, ErrUnknownMessage},
		{Header{ExtensionType: 0x8002, MsgType: 0x99}, nil}, // an extension's: routed by the caller
	}
	for _, c := range cases {
		if err := CheckHeader(c.h); err != c.want {
			t.Errorf("%+v: %v, want %v", c.h, err, c.want)
		}
	}
	if MsgName(MsgSetNewPrevHash) != "SetNewPrevHash" || MsgName(0x99) != "unknown" {
		t.Fatal("MsgName")
	}
}

func allFrames() []byte {
	var all []byte
	for _, s := range messageSamples {
		all = append(all, hx(s.frame)...)
	}
	return all
}

func TestSplitAndFrameReader(t *testing.T) {
	all := allFrames()
	// Split over the whole buffer.
	var n0 int
	for buf := all; len(buf) > 0; n0++ {
		_, n, err := Split(buf, DefaultMaxPayload)
		if err != nil || n == 0 {
			t.Fatalf("split: %d %v", n, err)
		}
		buf = buf[n:]
	}
	// FrameReader over one-byte reads.
	fr := NewFrameReader(&oneByteReader{all}, 0)
	n1 := 0
	for ; ; n1++ {
		h, p, err := fr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeAny(h.MsgType, p); err != nil {
			t.Fatalf("frame %d (%s): %v", n1, MsgName(h.MsgType), err)
		}
	}
	if n0 != len(messageSamples) || n1 != n0 {
		t.Fatalf("split %d, reader %d, samples %d", n0, n1, len(messageSamples))
	}
	// Oversized: rejected from the header alone.
	big := AppendHeader(nil, Header{MsgType: MsgSetupConnection, Length: 1000})
	if _, _, err := Split(big, 999); err != ErrFrameTooLarge {
		t.Fatalf("split oversized: %v", err)
	}
	if _, _, err := NewFrameReader(bytes.NewReader(big), 999).Next(); err != ErrFrameTooLarge {
		t.Fatalf("reader oversized: %v", err)
	}
	// Cut inside a payload.
	if _, _, err := NewFrameReader(bytes.NewReader(all[:10]), 0).Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut payload: %v", err)
	}
	if _, n, _ := Split(all[:5], DefaultMaxPayload); n != 0 {
		t.Fatal("split of a partial header")
	}
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

package sv2

import (
	"bytes"
	"testing"

	"github.com/hashpool/hashpool/internal/alloctest"
)

var benchShareStd = AppendSubmitSharesStandard(nil, &SubmitSharesStandard{
	ChannelID: 1, SequenceNumber: 2, JobID: 3, Nonce: 4, NTime: 5, Version: 0x20000000})

var benchShareExt = AppendSubmitSharesExtended(nil, &SubmitSharesExtended{
	ChannelID: 1, SequenceNumber: 2, JobID: 3, Nonce: 4, NTime: 5, Version: 0x20000000,
	Extranonce: []byte{1, 2, 3, 4, 5, 6, 7, 8}})

// TestZeroAlloc proves the per-share path allocates nothing: decoding both
// submit messages and encoding every answer and per-job broadcast into a
// reused buffer.
func TestZeroAlloc(t *testing.T) {
	var std SubmitSharesStandard
	var ext SubmitSharesExtended
	buf := make([]byte, 0, 4096)
	okMsg := &SubmitSharesSuccess{ChannelID: 1, LastSequenceNumber: 2, NewSubmitsAcceptedCount: 3, NewSharesSum: 4}
	errMsg := &SubmitSharesError{ChannelID: 1, SequenceNumber: 2, ErrorCode: []byte("difficulty-too-low")}
	target := &SetTarget{ChannelID: 1}
	job := &NewExtendedMiningJob{ChannelID: 1, JobID: 2, MerklePath: make([]U256, 12),
		CoinbaseTxPrefix: make([]byte, 60), CoinbaseTxSuffix: make([]byte, 120)}
	prev := &SetNewPrevHash{ChannelID: 1, JobID: 2}
	stdJob := &NewMiningJob{ChannelID: 1, JobID: 2, MinNTime: OptionU32{Valid: true, V: 9}}
	cases := []struct {
		name string
		f    func()
	}{
		{"DecodeSubmitSharesStandard", func() {
			if DecodeSubmitSharesStandard(benchShareStd[HeaderLen:], &std) != nil {
				t.Fatal("decode")
			}
		}},
		{"DecodeSubmitSharesExtended", func() {
			if DecodeSubmitSharesExtended(benchShareExt[HeaderLen:], &ext) != nil {
				t.Fatal("decode")
			}
		}},
		{"Split", func() { Split(benchShareExt, DefaultMaxPayload) }},
		{"AppendSubmitSharesSuccess", func() { buf = AppendSubmitSharesSuccess(buf[:0], okMsg) }},
		{"AppendSubmitSharesError", func() { buf = AppendSubmitSharesError(buf[:0], errMsg) }},
		{"AppendSetTarget", func() { buf = AppendSetTarget(buf[:0], target) }},
		{"AppendNewExtendedMiningJob", func() { buf = AppendNewExtendedMiningJob(buf[:0], job) }},
		{"AppendNewMiningJob", func() { buf = AppendNewMiningJob(buf[:0], stdJob) }},
		{"AppendSetNewPrevHash", func() { buf = AppendSetNewPrevHash(buf[:0], prev) }},
	}
	for _, c := range cases {
		alloctest.Zero(t, c.name, 1000, c.f)
	}
	if ext.Version != 0x20000000 || !bytes.Equal(ext.Extranonce, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("%+v", ext)
	}
}

func TestTLV(t *testing.T) {
	// §3.4.3 / extension 0x0002's example: user_identity "Worker_001", in
	// the protocol's little-endian byte order (see the TLV doc comment).
	want := hx("020001" + "0a00" + "576f726b65725f303031")
	got := AppendTLV(nil, TLV{ExtensionType: 0x0002, FieldType: 0x01, Value: []byte("Worker_001")})
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x want %x", got, want)
	}
	f, rest, err := NextTLV(append(got, 9))
	if err != nil || f.ExtensionType != 2 || f.FieldType != 1 || string(f.Value) != "Worker_001" || !bytes.Equal(rest, []byte{9}) {
		t.Fatalf("%+v %x %v", f, rest, err)
	}
	if _, _, err := NextTLV(got[:len(got)-1]); err != ErrShort {
		t.Fatalf("cut TLV: %v", err)
	}
	// Carried on SubmitSharesExtended.
	frame := AppendSubmitSharesExtended(nil, &SubmitSharesExtended{ChannelID: 1, Extranonce: []byte{1}, TLV: got})
	var m SubmitSharesExtended
	if err := DecodeSubmitSharesExtended(frame[HeaderLen:], &m); err != nil || !bytes.Equal(m.TLV, want) {
		t.Fatalf("%v %x", err, m.TLV)
	}
}

func BenchmarkDecodeSubmitSharesStandard(b *testing.B) {
	var m SubmitSharesStandard
	p := benchShareStd[HeaderLen:]
	b.ReportAllocs()
	b.SetBytes(int64(len(benchShareStd)))
	for i := 0; i < b.N; i++ {
		if DecodeSubmitSharesStandard(p, &m) != nil {
			b.Fatal("decode")
		}
	}
}

func BenchmarkDecodeSubmitSharesExtended(b *testing.B) {
	var m SubmitSharesExtended
	p := benchShareExt[HeaderLen:]
	b.ReportAllocs()
	b.SetBytes(int64(len(benchShareExt)))
	for i := 0; i < b.N; i++ {
		if DecodeSubmitSharesExtended(p, &m) != nil {
			b.Fatal("decode")
		}
	}
}

func BenchmarkAppendSubmitSharesSuccess(b *testing.B) {
	m := &SubmitSharesSuccess{ChannelID: 1, LastSequenceNumber: 2, NewSubmitsAcceptedCount: 3, NewSharesSum: 4}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendSubmitSharesSuccess(buf[:0], m)
	}
}

func BenchmarkAppendNewExtendedMiningJob(b *testing.B) {
	m := &NewExtendedMiningJob{ChannelID: 1, JobID: 2, MerklePath: make([]U256, 12),
		CoinbaseTxPrefix: make([]byte, 60), CoinbaseTxSuffix: make([]byte, 120)}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendNewExtendedMiningJob(buf[:0], m)
	}
	b.SetBytes(int64(len(buf)))
}

package agent

import "testing"

// BenchmarkAgentSubmitDecode splits and decodes one SUBMIT_SHARE_WITH_TIME_VER
// frame, the most common submit of an ASICBoost farm.
func BenchmarkAgentSubmitDecode(b *testing.B) {
	frame := AppendSubmit(nil, &Submit{JobID: 0xa9, SessionID: 0x1122, ExtraNonce2: 0x11223344,
		Nonce: 0xaabbccdd, Time: 0x57bd2ad0, VersionMask: 0x1fffe000, HasTime: true, HasVersionMask: true})
	var s Submit
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		n, err := Split(frame)
		if err != nil || n != len(frame) {
			b.Fatal(n, err)
		}
		if err := DecodeSubmit(frame[:n], &s); err != nil {
			b.Fatal(err)
		}
	}
	if s.VersionMask != 0x1fffe000 {
		b.Fatal(s)
	}
}

// BenchmarkAppendSetDiff encodes one MINING_SET_DIFF frame for 1000 miners.
func BenchmarkAppendSetDiff(b *testing.B) {
	ids := make([]uint16, 1000)
	for i := range ids {
		ids[i] = uint16(i)
	}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendSetDiff(dst[:0], 14, ids)
	}
}

package agent

// hashpool's extensions to the agent protocol. The agent asks for them in
// agent.get_capabilities and uses one only when the pool lists it in its
// answer (only hashpool's engine does); both directions otherwise speak
// btcpool's protocol unchanged.

// CmdZstdBatch is hashpool's "zstd" extension frame (agent → pool): its body
// is one self-contained zstd frame (no dictionary, no state carried between
// batches, so it is decoded at once on the pool's event loop) whose content
// is a sequence of ordinary agent frames, handled in order as if sent
// plainly.
const CmdZstdBatch Cmd = 0x7E

// CmdCompactSubmits is hashpool's "csub" extension frame (agent → pool): a
// run of shares in a bit-packed, stateful form. Layout after the header:
// base_job u8, base_time u32 LE, count u16 LE, sid_bits u8 (1..16; every
// session id in the frame fits in that many bits), then a bitstream of count
// records, LSB first (bit i of the stream is bit i%8 of byte i/8), each
// field written low bit first, zero-padded to a whole byte:
//
//	same 1 bit: 1 = the previous record's flags (not on a frame's first record),
//	[flags 6 bits if same is 0], session_id sid_bits,
//	[job 8 if flags&CompactJob], [extra_nonce2 32 unless flags&CompactSeq],
//	nonce 32, [ntime 32 if flags&CompactTime],
//	[version_mask>>13 16 if flags&CompactVerC | version_mask 32 if flags&CompactVer alone]
//
// CompactSeq means extra_nonce2 = 1 + the last one this connection sent for
// that session id (in frame order); CompactHasTime/CompactVer say whether the share
// carries a time / version mask (as the four SUBMIT_SHARE commands do); an
// absent job or time is the base one. A typical share (sequential
// extranonce2, base job and time, version bits in 0x1fffe000) takes
// 1+sid_bits+32+16 bits. Each record is then handled exactly like the
// equivalent SUBMIT_SHARE frame (same submit index). A truncated or
// malformed record (same on the first record, CompactSeq for a session id never
// seen, records past the frame's end) ends the frame; a sid_bits outside
// 1..16 drops it.
const CmdCompactSubmits Cmd = 0x7D

// Compact record flags.
const (
	CompactSeq     = 0x01 // extra_nonce2 is the session's last one + 1 (omitted)
	CompactJob     = 0x02 // the job id differs from the frame's base job (present)
	CompactHasTime = 0x04 // the share carries a time (SUBMIT_SHARE_WITH_TIME[_VER])
	CompactTime    = 0x08 // the time differs from the frame's base time (present)
	CompactVer     = 0x10 // the share carries a version mask
	CompactVerC    = 0x20 // ... that lies in 0x1fffe000 and is sent as its 16 bits
)

// CompactFieldBits is the size of a compact record's fields after its
// session id, for flags fl.
func CompactFieldBits(fl uint8) int {
	n := 32 // nonce
	if fl&CompactJob != 0 {
		n += 8
	}
	if fl&CompactSeq == 0 {
		n += 32
	}
	if fl&CompactTime != 0 {
		n += 32
	}
	switch {
	case fl&CompactVerC != 0:
		n += 16
	case fl&CompactVer != 0:
		n += 32
	}
	return n
}

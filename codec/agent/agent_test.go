package agent

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Golden frames from spec §5.2 / AGENT.md, with the spec's corrected lengths
// where AGENT.md is wrong (register shows 0x0020 for its 20-byte frame).
func TestGoldenSubmit(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		s    Submit
	}{
		{"SUBMIT_SHARE (AGENT.md)", "7f 02 0f00 a9 2211 44332211 ddccbbaa",
			Submit{JobID: 0xa9, SessionID: 0x1122, ExtraNonce2: 0x11223344, Nonce: 0xaabbccdd}},
		{"SUBMIT_SHARE_WITH_TIME (AGENT.md)", "7f 03 1300 a9 2211 44332211 ddccbbaa d02abd57",
			Submit{JobID: 0xa9, SessionID: 0x1122, ExtraNonce2: 0x11223344, Nonce: 0xaabbccdd, Time: 0x57bd2ad0, HasTime: true}},
		// AGENT.md shows length 0x000f for 0x12; the code requires 19.
		{"SUBMIT_SHARE_WITH_VER", "7f 12 1300 a9 2211 44332211 ddccbbaa 00e0ff1f",
			Submit{JobID: 0xa9, SessionID: 0x1122, ExtraNonce2: 0x11223344, Nonce: 0xaabbccdd, VersionMask: 0x1fffe000, HasVersionMask: true}},
		// AGENT.md shows length 0x0013 for 0x13; the code requires 23.
		{"SUBMIT_SHARE_WITH_TIME_VER", "7f 13 1700 a9 2211 44332211 ddccbbaa d02abd57 00e0ff1f",
			Submit{JobID: 0xa9, SessionID: 0x1122, ExtraNonce2: 0x11223344, Nonce: 0xaabbccdd, Time: 0x57bd2ad0, VersionMask: 0x1fffe000, HasTime: true, HasVersionMask: true}},
	}
	for _, tc := range tests {
		want := unhex(t, tc.hex)
		if got := AppendSubmit(nil, &tc.s); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded % x, want % x", tc.name, got, want)
		}
		n, err := Split(want)
		if err != nil || n != len(want) {
			t.Errorf("%s: Split = %d, %v", tc.name, n, err)
		}
		var s Submit
		if err := DecodeSubmit(want, &s); err != nil || s != tc.s {
			t.Errorf("%s: decoded %+v, %v", tc.name, s, err)
		}
		if FrameCmd(want) != tc.s.Cmd() {
			t.Errorf("%s: cmd %v want %v", tc.name, FrameCmd(want), tc.s.Cmd())
		}
	}
	s := Submit{SessionID: 0x1122, ExtraNonce2: 0x11223344}
	if s.FullExtraNonce2() != 0x0000112211223344 {
		t.Errorf("full extranonce2 %#x", s.FullExtraNonce2())
	}
}

func TestGoldenOthers(t *testing.T) {
	// REGISTER_WORKER (AGENT.md bytes with the true length 0x0014).
	reg := unhex(t, "7f 01 1400 2211 63676d696e657200 733130393900")
	got, err := AppendRegisterWorker(nil, 0x1122, "cgminer", "s1099")
	if err != nil || !bytes.Equal(got, reg) {
		t.Errorf("register: % x, %v", got, err)
	}
	var r RegisterWorker
	if err := DecodeRegisterWorker(reg, &r); err != nil || r.SessionID != 0x1122 || string(r.ClientAgent) != "cgminer" || string(r.WorkerName) != "s1099" {
		t.Errorf("register decode: %+v %v", r, err)
	}
	// The frame as AGENT.md prints it declares 0x0020 = 32 bytes: Split waits
	// for 12 more bytes, and the 20 bytes alone do not decode.
	wrong := unhex(t, "7f 01 2000 2211 63676d696e657200 733130393900")
	if n, err := Split(wrong); n != 0 || err != nil {
		t.Errorf("AGENT.md register frame: Split = %d, %v", n, err)
	}
	if err := DecodeRegisterWorker(wrong, &r); err != ErrLength {
		t.Errorf("AGENT.md register frame decodes: %v", err)
	}

	// UNREGISTER_WORKER.
	unreg := unhex(t, "7f 04 0600 2211")
	if got := AppendUnregisterWorker(nil, 0x1122); !bytes.Equal(got, unreg) {
		t.Errorf("unregister % x", got)
	}
	if id, err := DecodeUnregisterWorker(unreg); err != nil || id != 0x1122 {
		t.Errorf("unregister decode %#x %v", id, err)
	}

	// MINING_SET_DIFF: diff 8192 = 2^13 for two sessions.
	sd := unhex(t, "7f 05 0b00 0d 0200 2211 4433")
	if got := AppendSetDiff(nil, 13, []uint16{0x1122, 0x3344}); !bytes.Equal(got, sd) {
		t.Errorf("set diff % x", got)
	}
	var d SetDiff
	if err := DecodeSetDiff(sd, &d); err != nil || d.DiffExp != 13 || d.Count() != 2 || d.SessionID(0) != 0x1122 || d.SessionID(1) != 0x3344 {
		t.Errorf("set diff decode %+v %v", d, err)
	}

	// SUBMIT_RESPONSE: index 0x0102, ACCEPT (1798084231 = 0x6b2c9687) and a reject (23).
	resp := unhex(t, "7f 10 0a00 0201 87962c6b")
	if got := AppendSubmitResponse(nil, 0x0102, 1798084231); !bytes.Equal(got, resp) {
		t.Errorf("submit response % x", got)
	}
	if idx, st, err := DecodeSubmitResponse(resp); err != nil || idx != 0x0102 || st != 1798084231 {
		t.Errorf("submit response decode %#x %d %v", idx, st, err)
	}
	if got := AppendSubmitResponse(nil, 0xffff, 23); !bytes.Equal(got, unhex(t, "7f 10 0a00 ffff 17000000")) {
		t.Errorf("submit response 23: % x", got)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		n    int
		err  error
	}{
		{"empty", "", 0, nil},
		{"1 byte", "7f", 0, nil},
		{"3 bytes", "7f 02 0f", 0, nil},
		{"header only of 15", "7f 02 0f00", 0, nil},
		{"14 of 15", "7f 02 0f00 a9 2211 44332211 ddccbb", 0, nil},
		{"exact", "7f 02 0f00 a9 2211 44332211 ddccbbaa", 15, nil},
		{"with next", "7f 04 0600 2211 7f 04 0600", 6, nil},
		{"len 4 (empty body)", "7f 99 0400", 4, nil},
		{"len 3", "7f 02 0300", 0, ErrBadLength},
		{"len 0", "7f 02 0000 ffff", 0, ErrBadLength},
		{"json", "7b226964", 0, ErrNotFrame},
		{"max", "7f 02 ffff", 0, nil},
	}
	for _, tc := range tests {
		n, err := Split(unhex(t, tc.hex))
		if n != tc.n || err != tc.err {
			t.Errorf("%s: Split = %d, %v; want %d, %v", tc.name, n, err, tc.n, tc.err)
		}
	}
}

func TestDecodeLengthChecks(t *testing.T) {
	base := unhex(t, "7f 02 0f00 a9 2211 44332211 ddccbbaa")
	var s Submit
	// Every submit command with every length from 4 to 30: only the exact one decodes.
	for _, cmd := range []Cmd{CmdSubmitShare, CmdSubmitShareWithTime, CmdSubmitShareWithVer, CmdSubmitShareWithTimeVer} {
		want := map[Cmd]int{CmdSubmitShare: 15, CmdSubmitShareWithTime: 19, CmdSubmitShareWithVer: 19, CmdSubmitShareWithTimeVer: 23}[cmd]
		for l := 4; l <= 30; l++ {
			f := make([]byte, l)
			copy(f, base)
			f[1], f[2], f[3] = byte(cmd), byte(l), 0
			err := DecodeSubmit(f, &s)
			if (err == nil) != (l == want) {
				t.Errorf("%v len %d: err %v", cmd, l, err)
			}
			if err != nil && s != (Submit{}) {
				t.Errorf("%v len %d: failed decode left %+v", cmd, l, s)
			}
		}
	}
	// Declared length disagreeing with the slice.
	f := bytes.Clone(base)
	f[2] = 0x10
	if err := DecodeSubmit(f, &s); err != ErrLength {
		t.Errorf("declared 16 for 15 bytes: %v", err)
	}
	if err := DecodeSubmit(unhex(t, "7f 04 0600 2211"), &s); err != ErrCmd {
		t.Errorf("unregister as submit: %v", err)
	}
	if err := DecodeSubmit(unhex(t, "7b 02 0f00"), &s); err != ErrNotFrame {
		t.Errorf("bad magic: %v", err)
	}

	// Unregister: exactly 6.
	for _, h := range []string{"7f 04 0500 22", "7f 04 0700 2211 00"} {
		if _, err := DecodeUnregisterWorker(unhex(t, h)); err != ErrLength {
			t.Errorf("unregister %s: %v", h, err)
		}
	}
	// Set diff: 7 + 2*count exactly.
	var d SetDiff
	for _, h := range []string{"7f 05 0600 0d 02", "7f 05 0900 0d 0200 2211", "7f 05 0d00 0d 0200 2211 4433 55"} {
		if err := DecodeSetDiff(unhex(t, h), &d); err != ErrLength {
			t.Errorf("set diff %s: %v", h, err)
		}
	}
	if err := DecodeSetDiff(unhex(t, "7f 05 0700 0d 0000"), &d); err != nil || d.Count() != 0 {
		t.Errorf("empty set diff: %v", err)
	}
	// Submit response: exactly 10.
	if _, _, err := DecodeSubmitResponse(unhex(t, "7f 10 0900 0201 87962c")); err != ErrLength {
		t.Errorf("short submit response: %v", err)
	}
}

func TestRegisterWorker(t *testing.T) {
	tests := []struct {
		name          string
		hex           string
		err           error
		agent, worker string
	}{
		{"minimum 8: one char agent", "7f 01 0800 0100 41 00", nil, "A", ""},
		{"minimum 8: two NULs", "7f 01 0800 0100 00 00", nil, "", ""},
		{"7 too short", "7f 01 0700 0100 00", ErrLength, "", ""},
		{"no NUL at all: last byte forced", "7f 01 0a00 0100 61626364", nil, "abc", ""},
		{"worker without NUL: last byte forced", "7f 01 0b00 0100 6100 777879", nil, "a", "wx"},
		{"extra strings ignored", "7f 01 0c00 0100 6100 7700 7800", nil, "a", "w"},
	}
	var r RegisterWorker
	for _, tc := range tests {
		err := DecodeRegisterWorker(unhex(t, tc.hex), &r)
		if err != tc.err {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if err == nil && (string(r.ClientAgent) != tc.agent || string(r.WorkerName) != tc.worker) {
			t.Errorf("%s: agent %q worker %q", tc.name, r.ClientAgent, r.WorkerName)
		}
	}
	// 100 bytes is the maximum; 101 is rejected.
	f, err := AppendRegisterWorker(nil, 7, strings.Repeat("a", 46), strings.Repeat("w", 46))
	if err != nil || len(f) != 100 {
		t.Fatalf("100-byte register: %d %v", len(f), err)
	}
	if err := DecodeRegisterWorker(f, &r); err != nil || len(r.ClientAgent) != 46 || len(r.WorkerName) != 46 {
		t.Fatalf("decode 100: %v", err)
	}
	if out, err := AppendRegisterWorker([]byte("x"), 7, strings.Repeat("a", 47), strings.Repeat("w", 46)); err != ErrTooLong || string(out) != "x" {
		t.Errorf("101-byte register: %v", err)
	}
	over := append(bytes.Clone(f), 0)
	over[2] = 101
	if err := DecodeRegisterWorker(over, &r); err != ErrLength {
		t.Errorf("decode 101: %v", err)
	}
	if _, err := AppendRegisterWorker(nil, 7, "a\x00b", "w"); err != ErrNUL {
		t.Errorf("NUL in agent: %v", err)
	}
}

func TestSetDiffBatches(t *testing.T) {
	ids := make([]uint16, 2*MaxSetDiffSessions+5)
	for i := range ids {
		ids[i] = uint16(i)
	}
	buf := AppendSetDiff(nil, 20, ids)
	var frames []int
	var all []uint16
	for len(buf) > 0 {
		n, err := Split(buf)
		if err != nil || n == 0 {
			t.Fatalf("split: %d %v", n, err)
		}
		var d SetDiff
		if err := DecodeSetDiff(buf[:n], &d); err != nil {
			t.Fatal(err)
		}
		if d.DiffExp != 20 {
			t.Fatalf("exp %d", d.DiffExp)
		}
		frames = append(frames, d.Count())
		for i := range d.Count() {
			all = append(all, d.SessionID(i))
		}
		buf = buf[n:]
	}
	if len(frames) != 3 || frames[0] != MaxSetDiffSessions || frames[1] != MaxSetDiffSessions || frames[2] != 5 {
		t.Fatalf("frames %v", frames)
	}
	if 7+2*MaxSetDiffSessions > MaxFrameLen {
		t.Fatal("a full batch does not fit a frame")
	}
	for i, id := range all {
		if id != uint16(i) {
			t.Fatalf("id %d = %d", i, id)
		}
	}
	if got := AppendSetDiff([]byte("x"), 1, nil); string(got) != "x" {
		t.Errorf("empty batch appended % x", got)
	}
}

func TestCmdString(t *testing.T) {
	if CmdSubmitShareWithTimeVer.String() != "SUBMIT_SHARE_WITH_TIME_VER" || Cmd(0x22).String() != "CMD_0x22" {
		t.Error(CmdSubmitShareWithTimeVer.String(), Cmd(0x22).String())
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sub := unhex(t, "7f 13 1700 a9 2211 44332211 ddccbbaa d02abd57 00e0ff1f")
	reg := unhex(t, "7f 01 1400 2211 63676d696e657200 733130393900")
	sd := unhex(t, "7f 05 0b00 0d 0200 2211 4433")
	dst := make([]byte, 0, 256)
	ids := []uint16{1, 2, 3}
	var s Submit
	var r RegisterWorker
	var d SetDiff
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = Split(sub)
		_ = DecodeSubmit(sub, &s)
		_ = DecodeRegisterWorker(reg, &r)
		_ = DecodeSetDiff(sd, &d)
		_, _ = DecodeUnregisterWorker(sub)
		_, _, _ = DecodeSubmitResponse(sub)
		b := AppendSubmit(dst[:0], &s)
		b, _ = AppendRegisterWorker(b, 1, "cgminer", "s1099")
		b = AppendSetDiff(b, 3, ids)
		b = AppendUnregisterWorker(b, 4)
		_ = AppendSubmitResponse(b, 5, 6)
	})
	if allocs != 0 {
		t.Errorf("%v allocs", allocs)
	}
}

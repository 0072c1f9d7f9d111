package stratum

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/hashpool/hashpool/internal/alloctest"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// internalFromDisplay turns display hex (as explorers show) into internal byte order.
func internalFromDisplay(t testing.TB, s string) (h [32]byte) {
	b := mustHex(t, s)
	for i := range 32 {
		h[i] = b[31-i]
	}
	return h
}

func TestGoldenResponses(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"true/number", AppendResultTrue(nil, NumberID(1)), `{"id":1,"result":true,"error":null}` + "\n"},
		{"true/string", AppendResultTrue(nil, StringID([]byte("auth"))), `{"id":"auth","result":true,"error":null}` + "\n"},
		{"false/null", AppendResultFalse(nil, NullID()), `{"id":null,"result":false,"error":null}` + "\n"},
		{"extranonce.subscribe", AppendExtranonceSubscribeResult(nil, NumberID(6)), `{"id":6,"result":true,"error":null}` + "\n"},
		{"error 27", AppendError(nil, NumberID(3), StatusIllegalParams), `{"id":3,"result":null,"error":[27,"Illegal params",null]}` + "\n"},
		{"error stale → 21", AppendError(nil, NumberID(4), StatusStaleShare.WireCode()), `{"id":4,"result":null,"error":[21,"Job not found (=stale)",null]}` + "\n"},
		{"error 24", AppendError(nil, StringID([]byte("s")), StatusUnauthorized), `{"id":"s","result":null,"error":[24,"Unauthorized worker",null]}` + "\n"},
		{"error unknown", AppendError(nil, NullID(), StatusUnknown), `{"id":null,"result":null,"error":[2147483647,"Unknown",null]}` + "\n"},
		{"error 400 (switcher builds only)", AppendError(nil, NullID(), StatusClientIsNotSwitcher), `{"id":null,"result":null,"error":[400,"Client is not a stratum switcher",null]}` + "\n"},
		{"error escaped", AppendErrorMessage(nil, NumberID(1), 20, "a\"b\\c\n\x01"), `{"id":1,"result":null,"error":[20,"a\"b\\c\n\u0001",null]}` + "\n"},
		{"subscribe", AppendSubscribeResult(nil, StringID([]byte("sub")), 0x01000002, 8),
			`{"id":"sub","result":[[["mining.set_difficulty","01000002"],["mining.notify","01000002"]],"01000002",8],"error":null}` + "\n"},
		{"subscribe/agent downstream", AppendSubscribeResult(nil, NumberID(1), 0x1122, 4),
			`{"id":1,"result":[[["mining.set_difficulty","00001122"],["mining.notify","00001122"]],"00001122",4],"error":null}` + "\n"},
		{"capabilities", AppendCapabilitiesResult(nil, StringID([]byte("caps")), DefaultCapabilities),
			`{"id":"caps","result":{"capabilities":["verrol","subres"]}}` + "\n"},
		{"capabilities legacy", AppendCapabilitiesResult(nil, NumberID(9), []string{"verrol"}),
			`{"id":9,"result":{"capabilities":["verrol"]}}` + "\n"},
		{"set_difficulty 16384", AppendSetDifficulty(nil, 16384), `{"id":null,"method":"mining.set_difficulty","params":[16384]}` + "\n"},
		{"set_difficulty 2^62", AppendSetDifficulty(nil, 1<<62), `{"id":null,"method":"mining.set_difficulty","params":[4611686018427387904]}` + "\n"},
		{"set_difficulty 2^-9", AppendSetDifficulty(nil, 0.001953125), `{"id":null,"method":"mining.set_difficulty","params":[0.001953125]}` + "\n"},
		{"set_difficulty 1.5", AppendSetDifficulty(nil, 1.5), `{"id":null,"method":"mining.set_difficulty","params":[1.5]}` + "\n"},
		{"set_version_mask", AppendSetVersionMask(nil, 0x1fffe000), `{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}` + "\n"},
		{"reconnect", AppendReconnect(nil), `{"id":null,"method":"client.reconnect","params":[]}` + "\n"},
	}
	for _, tc := range tests {
		if string(tc.got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, tc.got, tc.want)
		}
		if !json.Valid(tc.got) {
			t.Errorf("%s: not valid JSON", tc.name)
		}
	}
}

func TestGoldenConfigure(t *testing.T) {
	// spec §4.5: keys in std::map (bytewise) order.
	entries := []ConfigureEntry{
		{Key: []byte("version-rolling"), Result: true},
		{Key: []byte("version-rolling.mask"), IsMask: true, Mask: 0xffffffff & 0x1fffe000},
		{Key: []byte("minimum-difficulty"), Result: true},
	}
	got := AppendConfigureResult(nil, StringID([]byte("conf")), entries)
	want := `{"id":"conf","result":{"minimum-difficulty":true,"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null}` + "\n"
	if string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}

	// Unknown names sort among the known keys; repeated names collapse to the last.
	entries = []ConfigureEntry{
		{Key: []byte("version-rolling.zzz"), Result: false},
		{Key: []byte("version-rolling"), Result: true},
		{Key: []byte("version-rolling.mask"), IsMask: true, Mask: 0x00ff0000},
		{Key: []byte("a"), Result: false},
		{Key: []byte("version-rolling"), Result: true},
		{Key: []byte("Z"), Result: false},
	}
	got = AppendConfigureResult(nil, NumberID(2), entries)
	want = `{"id":2,"result":{"Z":false,"a":false,"version-rolling":true,"version-rolling.mask":"00ff0000","version-rolling.zzz":false},"error":null}` + "\n"
	if string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}

	got = AppendConfigureResult(nil, NumberID(3), nil)
	if want := `{"id":3,"result":{},"error":null}` + "\n"; string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

// testNotify is a notify with every field populated. Display prev hash words
// are "00000000 00000000 0328e9fe 0a1b2c3d 4e5f6071 8293a4b5 fb970e56 89c2f63d";
// prevHashBeStr is those words in reverse order (spec §3.6 example shape).
func testNotify(t testing.TB) *Notify {
	return &Notify{
		JobID:     7,
		PrevHash:  internalFromDisplay(t, "00000000000000000328e9fe0a1b2c3d4e5f60718293a4b5fb970e5689c2f63d"),
		Coinbase1: mustHex(t, "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20"),
		Coinbase2: mustHex(t, "ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000"),
		Branch: [][32]byte{
			[32]byte(mustHex(t, "1111111111111111111111111111111111111111111111111111111111111100")),
			[32]byte(mustHex(t, "00aabbccddeeff00112233445566778899aabbccddeeff001122334455667788")),
		},
		Version: 0x20000000,
		Bits:    0x1d00ffff,
		Time:    0x5f5e1000,
	}
}

const goldenNotify = `{"id":null,"method":"mining.notify","params":["7",` +
	`"89c2f63dfb970e568293a4b54e5f60710a1b2c3d0328e9fe0000000000000000",` +
	`"01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20",` +
	`"ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000",` +
	`["1111111111111111111111111111111111111111111111111111111111111100","00aabbccddeeff00112233445566778899aabbccddeeff001122334455667788"],` +
	`"20000000","1d00ffff","5f5e1000",`

func TestGoldenNotify(t *testing.T) {
	n := testNotify(t)
	if got, want := string(AppendNotify(nil, n, true)), goldenNotify+"true]}\n"; got != want {
		t.Errorf("clean:\n got %s\nwant %s", got, want)
	}
	if got, want := string(AppendNotify(nil, n, false)), goldenNotify+"false]}\n"; got != want {
		t.Errorf("not clean:\n got %s\nwant %s", got, want)
	}

	buf, frames := AppendNotifyFrames([]byte("prefix"), n)
	if string(frames.Clean) != goldenNotify+"true]}\n" || string(frames.Frame(true)) != string(frames.Clean) {
		t.Errorf("frames.Clean = %s", frames.Clean)
	}
	if string(frames.NotClean) != goldenNotify+"false]}\n" || string(frames.Frame(false)) != string(frames.NotClean) {
		t.Errorf("frames.NotClean = %s", frames.NotClean)
	}
	if string(buf) != "prefix"+goldenNotify+"false]}\n"+goldenNotify+"true]}\n" {
		t.Errorf("buffer = %s", buf)
	}
	// Appending to one frame must not clobber the other.
	_ = append(frames.NotClean, 'x')
	if string(frames.Clean) != goldenNotify+"true]}\n" {
		t.Error("append to NotClean overwrote Clean")
	}

	// Padding for extranonce2 size N < 8 (spec §4.3) and an empty branch.
	n.Coinbase1Pad = 4
	n.Branch = nil
	n.JobID = 255*256 + 1700000000*256
	var m Message
	line := AppendNotify(nil, n, false)
	if err := ParseRequest(line[:len(line)-1], &m); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Param(2).Str(); string(s) != hex.EncodeToString(n.Coinbase1)+"00000000" {
		t.Errorf("padded coinbase1 = %s", s)
	}
	if s, _ := m.Param(0).Str(); string(s) != strconv.FormatUint(n.JobID, 10) {
		t.Errorf("job id = %s", s)
	}
	if m.Param(4).Raw == nil || string(m.Param(4).Raw) != "[]" {
		t.Errorf("empty branch = %s", m.Param(4).Raw)
	}
}

// TestPrevHashBE checks AppendPrevHashBE against a second formulation: the
// display hex's 4-byte words in reverse order.
func TestPrevHashBE(t *testing.T) {
	display := "00000000000000000328e9fe7c0a0d6bc1a2f4f9e2c0b0a0fb970e5689c2f63d"
	h := internalFromDisplay(t, display)
	want := ""
	for w := 7; w >= 0; w-- {
		want += display[8*w : 8*w+8]
	}
	if got := string(AppendPrevHashBE(nil, &h)); got != want {
		t.Errorf("got %s want %s", got, want)
	}
	if want[:16] != "89c2f63dfb970e56" || want[48:] != "0000000000000000" {
		t.Errorf("spec §3.6 example shape not reproduced: %s", want)
	}
}

func TestAppendDifficulty(t *testing.T) {
	tests := []struct {
		diff float64
		want string
	}{
		{1, "1"}, {64, "64"}, {16384, "16384"}, {1 << 63, "9223372036854775808"},
		{0.5, "0.5"}, {0.001953125, "0.001953125"}, {1.0 / (1 << 30), "0.0000000009313225746154785"},
		{0, "0"}, {-1, "0"}, {math.NaN(), "0"}, {math.Inf(1), "0"},
		{1e20, "100000000000000000000"},
	}
	for _, tc := range tests {
		got := string(AppendDifficulty(nil, tc.diff))
		if got != tc.want {
			t.Errorf("AppendDifficulty(%v) = %s, want %s", tc.diff, got, tc.want)
		}
		// What a miner parsing a double reads back must be the exact value.
		if f, err := strconv.ParseFloat(got, 64); err != nil || (tc.diff > 0 && !math.IsInf(tc.diff, 0) && f != tc.diff) {
			t.Errorf("%s parses back as %v (%v), want %v", got, f, err, tc.diff)
		}
	}
	// Every power of two a vardiff can produce round-trips.
	for k := -40; k <= 63; k++ {
		d := math.Ldexp(1, k)
		s := string(AppendDifficulty(nil, d))
		if f, _ := strconv.ParseFloat(s, 64); f != d {
			t.Errorf("2^%d prints as %s", k, s)
		}
	}
}

func TestEncodeAllocs(t *testing.T) {
	n := testNotify(t)
	dst := make([]byte, 0, 4096)
	entries := []ConfigureEntry{{Key: []byte("version-rolling"), Result: true}, {Key: []byte("version-rolling.mask"), IsMask: true, Mask: 1}, {Key: []byte("minimum-difficulty")}}
	id := StringID([]byte("x"))
	alloctest.Zero(t, "encoders", 100, func() {
		b := AppendNotify(dst[:0], n, true)
		b, _ = AppendNotifyFrames(b, n)
		b = AppendResultTrue(b, id)
		b = AppendError(b, id, StatusDuplicateShare)
		b = AppendSubscribeResult(b, id, 1, 8)
		b = AppendConfigureResult(b, id, entries)
		b = AppendCapabilitiesResult(b, id, DefaultCapabilities)
		b = AppendSetDifficulty(b, 0.25)
		b = AppendSetDifficulty(b, 65536)
		b = AppendSetVersionMask(b, 2)
		_ = AppendReconnect(b)
	})
}

func TestClientRequests(t *testing.T) {
	got := AppendRequest(nil, StringID([]byte("auth")), MethodAuthorize, []byte(`["kevin",""]`))
	if want := `{"id":"auth","method":"mining.authorize","params":["kevin",""]}` + "\n"; string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	s := Submit{Worker: []byte("w.1"), JobID: []byte("7"), ExtraNonce2: []byte("00000001"), Time: []byte("5f5e1000"), Nonce: []byte("deadbeef")}
	got = AppendSubmitRequest(nil, NumberID(4), &s)
	if want := `{"id":4,"method":"mining.submit","params":["w.1","7","00000001","5f5e1000","deadbeef"]}` + "\n"; string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	s.VersionMask = []byte("1fffe000")
	got = AppendSubmitRequest(nil, NumberID(5), &s)
	// Round trip through the server-side parser.
	var m Message
	var back Submit
	if err := ParseRequest(got, &m); err != nil || m.Submit(&back) != nil || string(back.VersionMask) != "1fffe000" || string(back.Worker) != "w.1" {
		t.Errorf("round trip of %s: %v %q", got, err, back)
	}
}

func TestSubmitRequestAllocs(t *testing.T) {
	s := Submit{Worker: []byte("w.1"), JobID: []byte("7"), ExtraNonce2: []byte("00000001"), Time: []byte("5f5e1000"), Nonce: []byte("deadbeef"), VersionMask: []byte("1fffe000")}
	dst := make([]byte, 0, 256)
	alloctest.Zero(t, "AppendSubmitRequest", 100, func() { _ = AppendSubmitRequest(dst[:0], NumberID(5), &s) })
}

package sha

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
)

func TestDoubleSHA256MatchesChainhash(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1000)
	for n := 0; n <= len(buf); n += 1 + n/200*37 {
		b := buf[:n]
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		got := DoubleSHA256(b)
		want := chainhash.DoubleHashB(b)
		if !bytes.Equal(got[:], want) {
			t.Fatalf("len %d: got %x want %x", n, got, want)
		}
	}
}

func TestDisplayHex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		var h [32]byte
		for j := range h {
			h[j] = byte(rng.Uint32())
		}
		s := DisplayHex(h)
		if want := chainhash.Hash(h).String(); s != want {
			t.Fatalf("DisplayHex = %s, chainhash = %s", s, want)
		}
		back, err := ParseDisplayHex(s)
		if err != nil || back != h {
			t.Fatalf("ParseDisplayHex(%s) = %x, %v", s, back, err)
		}
		upper := bytes.ToUpper([]byte(s))
		if back, err := ParseDisplayHex(string(upper)); err != nil || back != h {
			t.Fatalf("upper case: %x, %v", back, err)
		}
	}
}

func TestParseDisplayHexRejects(t *testing.T) {
	good := "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
	for _, s := range []string{
		"",
		good[:63],
		good + "0",
		"0x" + good[2:],
		good[:63] + "g",
		" " + good[1:],
		good[:62] + "\x00\x00",
	} {
		if h, err := ParseDisplayHex(s); err != ErrDisplayHex || h != [32]byte{} {
			t.Errorf("ParseDisplayHex(%q) = %x, %v; want zero, ErrDisplayHex", s, h, err)
		}
	}
	h, err := ParseDisplayHex(good)
	if err != nil || h[31] != 0 || h[0] != 0x6f {
		t.Fatalf("ParseDisplayHex(genesis) = %x, %v", h, err)
	}
}

func FuzzParseDisplayHex(f *testing.F) {
	f.Add("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
	f.Add("")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseDisplayHex(s)
		ref, refErr := chainhash.NewHashFromStrStrict(s)
		if (err == nil) != (refErr == nil && len(s) == 64) {
			t.Fatalf("%q: err %v, chainhash err %v", s, err, refErr)
		}
		if err != nil {
			return
		}
		if h != [32]byte(*ref) {
			t.Fatalf("%q: %x, chainhash %x", s, h, ref[:])
		}
		if got := DisplayHex(h); !bytes.EqualFold([]byte(got), []byte(s)) {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	})
}

func TestAppendHeaderLayout(t *testing.T) {
	var prev, root [32]byte
	for i := range prev {
		prev[i], root[i] = byte(i), byte(0x80+i)
	}
	dst := []byte{0xaa}
	got := AppendHeader(dst, 0x20000004, &prev, &root, 0x5f5e1000, 0x1d00ffff, 0x01020304)
	if len(got) != 81 || got[0] != 0xaa {
		t.Fatalf("length %d, prefix %x", len(got), got[:1])
	}
	h := got[1:]
	want := append([]byte{0x04, 0x00, 0x00, 0x20}, prev[:]...)
	want = append(want, root[:]...)
	want = append(want, 0x00, 0x10, 0x5e, 0x5f, 0xff, 0xff, 0x00, 0x1d, 0x04, 0x03, 0x02, 0x01)
	if !bytes.Equal(h, want) {
		t.Fatalf("header\n got %x\nwant %x", h, want)
	}
}

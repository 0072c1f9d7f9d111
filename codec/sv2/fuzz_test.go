package sv2

import (
	"bytes"
	"io"
	"testing"
)

// FuzzDecode feeds arbitrary payloads to every decoder (the first input byte
// picks the message type, so one target covers all 26) and checks that a
// payload that decodes re-encodes to a frame that decodes and re-encodes to
// the same bytes.
// Encoding is canonical except for BOOL's padding bits, so the payload is
// not compared byte for byte.
func FuzzDecode(f *testing.F) {
	for _, s := range messageSamples {
		fr := hx(s.frame)
		f.Add(append([]byte{s.typ}, fr[HeaderLen:]...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		checkDecode(t, in[0], in[1:])
	})
}

// checkDecode decodes p as message type typ; if it decodes, it must pass
// Check, re-encode to a frame with a valid header, and re-decode and
// re-encode to the same bytes.
func checkDecode(t *testing.T, typ uint8, p []byte) {
	m, err := decodeAny(typ, p)
	if err != nil {
		return
	}
	if c, ok := m.(interface{ Check() error }); ok && c.Check() != nil {
		t.Fatalf("decoded message fails Check: %+v", m)
	}
	fr := appendAny(nil, m)
	h, err := ParseHeader(fr)
	if err != nil || h.MsgType != typ || CheckHeader(h) != nil || int(h.Length) != len(fr)-HeaderLen {
		t.Fatalf("re-encoded header %+v %v", h, err)
	}
	m2, err := decodeAny(typ, fr[HeaderLen:])
	if err != nil {
		t.Fatalf("re-encoded %s does not decode: %v", MsgName(typ), err)
	}
	// Compared as bytes: a NaN hash rate is not DeepEqual to itself.
	if fr2 := appendAny(nil, m2); !bytes.Equal(fr, fr2) {
		t.Fatalf("round trip differs\n%x\n%x", fr, fr2)
	}
	if len(fr)-HeaderLen > len(p) {
		t.Fatalf("re-encoding grew: %d > %d", len(fr)-HeaderLen, len(p))
	}
}

// twoReads returns its input in two Read calls split at cut.
type twoReads struct {
	parts [2][]byte
}

func (r *twoReads) Read(p []byte) (int, error) {
	for i := range r.parts {
		if len(r.parts[i]) > 0 {
			n := copy(p, r.parts[i])
			r.parts[i] = r.parts[i][n:]
			return n, nil
		}
	}
	return 0, io.EOF
}

// FuzzFrameReader reads a stream of frames delivered in two reads split at
// an arbitrary point and checks that FrameReader and Split agree frame by
// frame, whatever the bytes.
func FuzzFrameReader(f *testing.F) {
	all := allFrames()
	f.Add(all, uint16(7))
	f.Add(all[:40], uint16(3))
	f.Add(hx(messageSamples[0].frame), uint16(0))
	f.Add(hx("000000ffffff00"), uint16(2))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		const max = 4096
		c := int(cut) % (len(in) + 1)
		fr := NewFrameReader(&twoReads{parts: [2][]byte{in[:c], in[c:]}}, max)
		buf := in
		for i := 0; i < 1<<16; i++ {
			h, p, err := fr.Next()
			sh, n, serr := Split(buf, max)
			switch {
			case err == io.EOF:
				if len(buf) != 0 {
					t.Fatalf("reader EOF with %d bytes left", len(buf))
				}
				return
			case err == ErrFrameTooLarge:
				if serr != ErrFrameTooLarge {
					t.Fatalf("reader too large, split %v", serr)
				}
				return
			case err != nil: // cut short
				if n != 0 || serr != nil {
					t.Fatalf("reader %v, split n=%d err=%v", err, n, serr)
				}
				return
			}
			if serr != nil || n == 0 || sh != h || !bytes.Equal(buf[HeaderLen:n], p) {
				t.Fatalf("frame %d differs: %+v/%+v n=%d %v", i, h, sh, n, serr)
			}
			if CheckHeader(h) == nil && h.Extension() == 0 {
				decodeAny(h.MsgType, p) // must not panic
			}
			buf = buf[n:]
		}
	})
}

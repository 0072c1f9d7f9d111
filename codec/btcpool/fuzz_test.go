package btcpool

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func FuzzDecodeShareMessage(f *testing.F) {
	f.Add(mustHex(f, goldenShareMsg))
	f.Add(AppendShareMessage(nil, &goldenStaleShare))
	f.Add(AppendShareV1(nil, &goldenShare))
	f.Add(shareV2Bytes(&goldenShare, [16]byte{12: 1, 15: 2}))
	f.Add([]byte{4, 0, 1, 0, 0x08})
	f.Add([]byte{4, 0, 1, 0, 0x08, 0x88, 0x80, 0x08, 0x32, 0xff, 0xff, 0xff, 0xff, 0x0f})
	mt := bitcoinMsgType(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Share
		err := DecodeShareMessage(b, &s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Re-encoding and decoding is stable. (The protobuf alone: a message whose inner version
		// field is not current gets that version as its prefix and no longer decodes as a share.)
		var back Share
		if err := DecodeShareProto(AppendShareProto(nil, &s), &back); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		want := s
		if want.Version == 0 {
			want.Version = CurrentShareVersion
		}
		if !want.IP.IsValid() {
			want.IP = netip.AddrFrom4([4]byte{})
		}
		want.IP = want.IP.Unmap().WithZone("")
		if back != want {
			t.Fatalf("round trip\n got %+v\nwant %+v", back, want)
		}
		// Differential: what we accept as protobuf, the protobuf library accepts with the same values.
		if len(b) >= 4 && b[0] == 4 && b[1] == 0 && b[2] == 1 && b[3] == 0 {
			m := mt.New()
			if err := (proto.UnmarshalOptions{}).Unmarshal(b[4:], m.Interface()); err != nil {
				t.Fatalf("we accepted what protobuf rejects: %v", err)
			}
			fd := m.Descriptor().Fields()
			get := func(n protoreflect.FieldNumber) protoreflect.Value { return m.Get(fd.ByNumber(n)) }
			if uint32(get(1).Int()) != s.Version || get(2).Int() != s.WorkerHashID || int32(get(3).Int()) != s.UserID ||
				Status(get(4).Int()) != s.Status || get(5).Int() != s.Timestamp || get(7).Uint() != s.JobID ||
				get(8).Uint() != s.ShareDiff || uint32(get(9).Uint()) != s.BlkBits || uint32(get(10).Uint()) != s.Height ||
				uint32(get(11).Uint()) != s.Nonce || uint32(get(12).Uint()) != s.SessionID ||
				uint32(get(13).Uint()) != s.VersionMask || int32(get(14).Int()) != s.ExtUserID ||
				uint32(get(15).Uint()) != s.BitsReached {
				t.Fatalf("differs from protobuf library: ours %+v, theirs %v", s, m)
			}
			if ip := get(6).String(); ip != "" && netip.MustParseAddr(ip) != s.IP {
				t.Fatalf("ip %q vs %v", ip, s.IP)
			}
		}
	})
}

func FuzzShareLogReader(f *testing.F) {
	two := shareLogStream(f, []Share{goldenShare, goldenStaleShare})
	f.Add(two, uint16(7))
	f.Add(two[:len(two)-3], uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 1, 2}, uint16(1))
	f.Add([]byte{2, 0, 0, 0, 0x08, 0x02, 3}, uint16(5))
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		// Reading the stream in one piece, split in two reads, and byte by byte gives the same records.
		cut := int(split) % (len(b) + 1)
		var results [3][]string
		for i, src := range []io.Reader{
			bytes.NewReader(b),
			io.MultiReader(bytes.NewReader(b[:cut]), bytes.NewReader(b[cut:])),
			iotest.OneByteReader(bytes.NewReader(b)),
		} {
			r := NewShareLogReader(src)
			var s Share
			for n := 0; n <= len(b)/4+1; n++ {
				err := r.Next(&s)
				if err == io.EOF || err == io.ErrUnexpectedEOF || errors.Is(err, ErrRecordTooLarge) {
					results[i] = append(results[i], "end")
					break
				}
				if err != nil {
					results[i] = append(results[i], "bad")
					continue
				}
				results[i] = append(results[i], string(AppendShareProto(nil, &s)))
			}
		}
		if !reflect.DeepEqual(results[0], results[1]) || !reflect.DeepEqual(results[0], results[2]) {
			t.Fatalf("reads differ by split:\n%q\n%q\n%q", results[0], results[1], results[2])
		}
		// The slice decoder agrees with the reader on the first record.
		var s Share
		n, err := DecodeShareLogRecord(b, &s)
		if err == nil && (len(results[0]) == 0 || results[0][0] != string(AppendShareProto(nil, &s))) {
			t.Fatalf("DecodeShareLogRecord (%d bytes) disagrees with reader", n)
		}
	})
}

func FuzzDecodeStratumJob(f *testing.F) {
	f.Add([]byte(goldenJob))
	f.Add([]byte(`{"jobId":1,"gbtHash":"","prevHash":"","prevHashBeStr":"","height":1,"coinbase1":"","coinbase2":"","merkleBranch":"","nVersion":1,"nBits":1,"nTime":1,"minTime":1,"coinbaseValue":1}`))
	f.Add([]byte(`{"subPool":{"a":{"coinbase1":"\u0000","coinbase2":"x"}}}`))
	mm := goldenMergedMiningStruct()
	f.Add(jobWithMergedMining(&mm))
	f.Add([]byte(`{"mergedMining":{"size":2,"nonce":0,"chains":[{"name":"x","chainid":1,"hash":"` + strings.Repeat("11", 32) +
		`","target":"` + strings.Repeat("0f", 32) + `","slot":1,"branch":"` + strings.Repeat("ab", 32) + `"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzMergedMining(t, b)
		var j StratumJob
		if err := DecodeStratumJob(b, &j); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if _, err := j.Branch(); err != nil {
			t.Fatalf("decoded job has unusable branch: %v", err)
		}
		if _, err := j.PrevHashBytes(); err != nil {
			t.Fatalf("decoded job has unusable prevHash: %v", err)
		}
		enc := AppendStratumJob(nil, &j)
		var j2 StratumJob
		if err := DecodeStratumJob(enc, &j2); err != nil {
			t.Fatalf("re-decode: %v\n%s", err, enc)
		}
		if enc2 := AppendStratumJob(nil, &j2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// fuzzMergedMining: a "mergedMining" key that decodes is within its bounds and re-encodes to
// a value that decodes to the same tree (strings as the encoder escapes them: invalid UTF-8
// becomes U+FFFD once, then the encoding is stable).
func fuzzMergedMining(t *testing.T, b []byte) {
	var m MergedMining
	ok, err := DecodeMergedMining(b, &m)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("mergedMining error %v does not wrap ErrMalformed", err)
		}
		return
	}
	if !ok {
		return
	}
	if len(m.Chains) == 0 || len(m.Chains) > MaxMergedMiningChains || m.Size == 0 || m.Size&(m.Size-1) != 0 {
		t.Fatalf("accepted tree %+v", m)
	}
	for _, c := range m.Chains {
		if c.Slot >= m.Size || 1<<len(c.Branch) > m.Size || c.Target == ([32]byte{}) || len(c.Hash) != 64 || c.Name == "" {
			t.Fatalf("accepted chain %+v in a tree of %d", c, m.Size)
		}
	}
	enc := append(AppendMergedMining([]byte(`{"jobId":1`), &m), '}')
	var m2 MergedMining
	if ok, err := DecodeMergedMining(enc, &m2); !ok || err != nil || len(m2.Chains) != len(m.Chains) ||
		m2.Size != m.Size || m2.Nonce != m.Nonce || !reflect.DeepEqual(m2.Chains[0].Branch, m.Chains[0].Branch) {
		t.Fatalf("mergedMining round trip: %v %v\n%s", ok, err, enc)
	}
	if enc2 := append(AppendMergedMining([]byte(`{"jobId":1`), &m2), '}'); !bytes.Equal(enc, enc2) {
		t.Fatalf("mergedMining encoding not stable:\n%s\n%s", enc, enc2)
	}
}

func FuzzDecodeRawGbt(f *testing.F) {
	m := NewRawGbt([]byte(goldenGbtResp), 1600000000)
	f.Add(AppendRawGbt(nil, &m))
	f.Add([]byte(`{"created_at_ts":1,"block_template_base64":"\"","gbthash":"00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m RawGbt
		if err := DecodeRawGbt(b, &m); err != nil {
			return
		}
		enc := AppendRawGbt(nil, &m)
		var m2 RawGbt
		if err := DecodeRawGbt(enc, &m2); err != nil {
			t.Fatalf("re-decode: %v\n%s", err, enc)
		}
		// Equal unless the input held invalid UTF-8, which is written as U+FFFD; stable after that.
		if enc2 := AppendRawGbt(nil, &m2); !bytes.Equal(enc, enc2) || (utf8.ValidString(m.BlockTemplateBase64) && m2 != m) {
			t.Fatalf("round trip:\n%+v\n%+v", m, m2)
		}
		_, _ = m.Template()
	})
}

func FuzzDecodeCommonEvent(f *testing.F) {
	f.Add([]byte(`{"created_at":"2020-09-14 08:00:01","type":"worker_update","action":"miner_connect","content":{"user_id":1234,"user_name":"alice","worker_id":-3214321432143214321,"worker_name":"rig01","miner_agent":"cgminer/4.10.0","ip":"203.0.113.7","session_id":"01000002","desc":"new_conn","ext_user_id":5}}`))
	f.Add([]byte(`{"type":"t","action":"a","content":{"user_id":1,"worker_id":2,"ip":"fe80::1%eth0","worker_name":"\ud800"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e CommonEvent
		if err := DecodeCommonEvent(b, &e); err != nil {
			return
		}
		enc := AppendCommonEvent(nil, &e)
		var e2 CommonEvent
		if err := DecodeCommonEvent(enc, &e2); err != nil {
			t.Fatalf("re-decode: %v\n%s", err, enc)
		}
		if enc2 := AppendCommonEvent(nil, &e2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}

func FuzzDecodeSolvedShare(f *testing.F) {
	f.Add(AppendSolvedShare(nil, &SolvedShare{JobID: 1, WorkerFullName: "a.b", Coinbase: []byte{1, 2}}))
	f.Add(make([]byte, 145))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m SolvedShare
		if err := DecodeSolvedShare(b, &m); err != nil {
			if len(b) > FoundBlockSize {
				t.Fatalf("rejected %d bytes: %v", len(b), err)
			}
			return
		}
		enc := AppendSolvedShare(nil, &m)
		if !bytes.Equal(enc[:104], b[:104]) || !bytes.Equal(enc[FoundBlockSize:], b[FoundBlockSize:]) {
			t.Fatal("fixed fields or coinbase changed in round trip")
		}
		if len(m.WorkerFullName) == workerFullNameSize { // a 40-byte name is written as 39 + NUL
			m.WorkerFullName = m.WorkerFullName[:workerFullNameSize-1]
		}
		var m2 SolvedShare
		if err := DecodeSolvedShare(enc, &m2); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

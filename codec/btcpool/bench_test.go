package btcpool

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func BenchmarkShareLogReader(b *testing.B) {
	stream := shareLogStream(b, someShares(1000))
	r := NewShareLogReader(bytes.NewReader(stream))
	var s Share
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)) / 1000)
	n := 0
	for b.Loop() {
		if n == 1000 {
			r.Reset(bytes.NewReader(stream))
			n = 0
		}
		if err := r.Next(&s); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

func BenchmarkStratumJob(b *testing.B) {
	for _, branches := range []int{0, 12} {
		j := goldenJobStruct()
		j.MerkleBranch = ""
		for range branches {
			j.MerkleBranch += "7dc96f776c8423e57a2785489a3f9c43fb6e756876d6ad9a9cac4aa4e72ec193"
		}
		msg := AppendStratumJob(nil, &j)
		b.Run(fmt.Sprintf("encode/branch=%d", branches), func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				buf = AppendStratumJob(buf[:0], &j)
			}
		})
		b.Run(fmt.Sprintf("decode/branch=%d", branches), func(b *testing.B) {
			var d StratumJob
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if err := DecodeStratumJob(msg, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCommonEventEncode(b *testing.B) {
	e := CommonEvent{CreatedAt: time.Unix(1600000000, 0), Type: EventTypeWorkerUpdate, Action: ActionMinerConnect,
		UserID: 1234, UserName: "alice", WorkerID: 42, WorkerName: "rig01", MinerAgent: "cgminer/4.10.0",
		IP: netip.MustParseAddr("203.0.113.7"), SessionID: 0x01000002, Desc: DescNewConn}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCommonEvent(buf[:0], &e)
	}
}

func BenchmarkSolvedShare(b *testing.B) {
	m := SolvedShare{JobID: 1, WorkerFullName: "alice.rig01", Coinbase: make([]byte, 200)}
	msg := AppendSolvedShare(nil, &m)
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendSolvedShare(buf[:0], &m)
		}
	})
	b.Run("decode", func(b *testing.B) {
		var d SolvedShare
		b.ReportAllocs()
		for b.Loop() {
			if err := DecodeSolvedShare(msg, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

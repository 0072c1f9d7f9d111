package btcpool_test

import (
	"fmt"
	"net/netip"

	"github.com/hashpool/hashpool/codec/btcpool"
)

func ExampleAppendShareMessage() {
	s := btcpool.Share{
		Version: btcpool.CurrentShareVersion, WorkerHashID: 1, UserID: 2, Status: btcpool.StatusAccept,
		Timestamp: 1600000000, IP: netip.MustParseAddr("10.0.0.1"), JobID: 3, ShareDiff: 16384,
		BlkBits: 0x1711d4f2, Height: 650000,
	}
	buf := make([]byte, 0, 4+btcpool.MaxShareProtoSize) // reuse per batch: no allocation
	buf = btcpool.AppendShareMessage(buf, &s)
	fmt.Printf("% x\n", buf[:4])

	var back btcpool.Share
	if err := btcpool.DecodeShareMessage(buf, &back); err != nil {
		panic(err)
	}
	fmt.Println(back.Valid(), back.IP, back.Status)
	// Output:
	// 04 00 01 00
	// true 10.0.0.1 Share accepted
}

func ExampleStatus_WireCode() {
	s := btcpool.StatusStaleShare
	fmt.Println(int32(s), s, "->", int32(s.WireCode()), s.WireCode())
	// Output: 37 Stale share -> 21 Job not found (=stale)
}

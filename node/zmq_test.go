package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// zmqPub is a real zmq4 PUB socket on 127.0.0.1, standing in for bitcoind's publisher.
type zmqPub struct {
	t    *testing.T
	sock zmq4.Socket
	addr string
}

func newPub(t *testing.T, ctx context.Context, addr string) *zmqPub {
	t.Helper()
	pub := zmq4.NewPub(ctx)
	if err := pub.Listen(addr); err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { pub.Close() })
	return &zmqPub{t: t, sock: pub, addr: "tcp://" + pub.Addr().(*net.TCPAddr).String()}
}

func (p *zmqPub) send(hash byte, seq uint32) {
	p.t.Helper()
	var s [4]byte
	binary.LittleEndian.PutUint32(s[:], seq)
	if err := p.sock.SendMulti(zmq4.NewMsgFrom([]byte(HashBlockTopic), bytes.Repeat([]byte{hash}, 32), s[:])); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func recvEvent(t *testing.T, ch <-chan HashBlockEvent, within time.Duration) (HashBlockEvent, bool) {
	t.Helper()
	select {
	case ev := <-ch:
		return ev, true
	case <-time.After(within):
		return HashBlockEvent{}, false
	}
}

// startSub runs a subscriber to addr and returns its events.
func startSub(t *testing.T, ctx context.Context, o ZMQOptions) <-chan HashBlockEvent {
	t.Helper()
	s, err := NewHashBlockSubscriber(o)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan HashBlockEvent, 64)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(ev HashBlockEvent) { ch <- ev }) }()
	t.Cleanup(func() {
		if err := <-done; err != context.Canceled {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	return ch
}

// warmUp sends hashblock messages with rising sequence numbers until the subscriber gets one
// (PUB drops messages until the subscription has arrived) and returns the last sequence sent.
func warmUp(t *testing.T, p *zmqPub, ch <-chan HashBlockEvent, first uint32) uint32 {
	t.Helper()
	for seq := first; seq < first+400; seq++ {
		p.send(0xaa, seq)
		if ev, ok := recvEvent(t, ch, 50*time.Millisecond); ok {
			if ev.Reconnected {
				ev, ok = recvEvent(t, ch, 50*time.Millisecond)
				if !ok {
					continue
				}
			}
			if ev.Seq != seq || ev.Missed != 0 || ev.Hash != strings.Repeat("aa", 32) {
				t.Fatalf("first event %+v after sending seq %d", ev, seq)
			}
			return seq
		}
	}
	t.Fatal("subscriber received nothing for 20 s")
	return 0
}

func TestHashBlockSequenceAndGaps(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newPub(t, ctx, "tcp://127.0.0.1:0")
	ch := startSub(t, ctx, ZMQOptions{Addr: p.addr, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	seq := warmUp(t, p, ch, 7)

	p.send(0x01, seq+1)
	p.send(0x02, seq+2)
	p.send(0x04, seq+4) // seq+3 lost
	// A malformed message is ignored.
	if err := p.sock.SendMulti(zmq4.NewMsgFrom([]byte(HashBlockTopic), []byte{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	p.send(0x05, seq+5)
	p.send(0x06, 0) // publisher restarted
	want := []HashBlockEvent{
		{Hash: strings.Repeat("01", 32), Seq: seq + 1},
		{Hash: strings.Repeat("02", 32), Seq: seq + 2},
		{Hash: strings.Repeat("04", 32), Seq: seq + 4, Missed: 1},
		{Hash: strings.Repeat("05", 32), Seq: seq + 5},
		{Hash: strings.Repeat("06", 32), Seq: 0},
	}
	for i, w := range want {
		ev, ok := recvEvent(t, ch, 10*time.Second)
		if !ok {
			t.Fatalf("event %d: nothing received", i)
		}
		if ev != w {
			t.Fatalf("event %d = %+v, want %+v", i, ev, w)
		}
	}
}

func TestHashBlockReconnects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pctx, pcancel := context.WithCancel(ctx)
	p := newPub(t, pctx, "tcp://127.0.0.1:0")
	ch := startSub(t, ctx, ZMQOptions{Addr: p.addr, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	warmUp(t, p, ch, 1)

	// The node goes away and comes back on the same address.
	p.sock.Close()
	pcancel()
	var p2 *zmqPub
	for i := 0; ; i++ {
		pub := zmq4.NewPub(ctx)
		if err := pub.Listen(p.addr); err == nil {
			t.Cleanup(func() { pub.Close() })
			p2 = &zmqPub{t: t, sock: pub, addr: p.addr}
			break
		}
		pub.Close()
		if i == 100 {
			t.Fatal("cannot listen again on", p.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ev, ok := recvEvent(t, ch, 20*time.Second)
	if !ok || !ev.Reconnected || ev.Hash != "" {
		t.Fatalf("after the publisher restarted: event %+v (received %v), want Reconnected", ev, ok)
	}
	warmUp(t, p2, ch, 0)
}

func TestHashBlockSilenceReconnects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newPub(t, ctx, "tcp://127.0.0.1:0")
	ch := startSub(t, ctx, ZMQOptions{Addr: p.addr, Timeout: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	// Nothing is published: the watchdog closes the socket and Run dials again.
	ev, ok := recvEvent(t, ch, 20*time.Second)
	if !ok || !ev.Reconnected {
		t.Fatalf("event %+v (received %v), want Reconnected after silence", ev, ok)
	}
}

func TestHashBlockNoPublisher(t *testing.T) {
	// Nothing listens: Run keeps retrying with backoff and returns only when ctx ends.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	s, err := NewHashBlockSubscriber(ZMQOptions{Addr: addr, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	if err := s.Run(ctx, func(HashBlockEvent) { calls++ }); err != context.DeadlineExceeded {
		t.Fatalf("Run = %v", err)
	}
	if calls != 0 {
		t.Fatalf("%d events without a publisher", calls)
	}
}

func TestParseHashBlock(t *testing.T) {
	h := bytes.Repeat([]byte{0xab}, 32)
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   HashBlockEvent
		err    string
	}{
		{"ok", [][]byte{[]byte("hashblock"), h, {1, 0, 0, 0}}, HashBlockEvent{Hash: strings.Repeat("ab", 32), Seq: 1}, ""},
		{"seq le", [][]byte{[]byte("hashblock"), h, {0, 1, 0, 0x80}}, HashBlockEvent{Hash: strings.Repeat("ab", 32), Seq: 0x80000100}, ""},
		{"two frames", [][]byte{[]byte("hashblock"), h}, HashBlockEvent{}, "2 frames"},
		{"other topic", [][]byte{[]byte("hashtx"), h, {1, 0, 0, 0}}, HashBlockEvent{}, "topic"},
		{"short hash", [][]byte{[]byte("hashblock"), h[:31], {1, 0, 0, 0}}, HashBlockEvent{}, "31 bytes"},
		{"long seq", [][]byte{[]byte("hashblock"), h, {1, 0, 0, 0, 0}}, HashBlockEvent{}, "sequence"},
	} {
		ev, err := parseHashBlock(tc.frames)
		if tc.err == "" && (err != nil || ev != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: parseHashBlock = %+v, %v", tc.name, ev, err)
		}
	}
}

func TestZMQOptionsValidate(t *testing.T) {
	o := ZMQOptions{Addr: "tcp://127.0.0.1:28332"}
	if err := o.Validate(); err != nil || o.Timeout != DefaultZMQTimeout || o.MinBackoff != DefaultZMQMinBackoff {
		t.Fatalf("Validate = %v, %+v", err, o)
	}
	bad := ZMQOptions{Addr: "127.0.0.1:1", Timeout: -1, MinBackoff: 2 * time.Second, MaxBackoff: time.Second}
	err := bad.Validate()
	for _, want := range []string{"tcp://", "negative", "backoff"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %v does not mention %q", err, want)
		}
	}
}

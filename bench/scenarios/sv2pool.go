package scenarios

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/loadgen"
	"github.com/hashpool/hashpool/sv2pool"
)

// poolSide is one server the sv1-vs-sv2 scenario loads: where its miners
// connect, the authority key its SV2 certificate is signed with ("" for
// Stratum V1), how to make it announce a new block, and its process's
// counters. It is the swappable piece: today Stratum V1 is an enginesrv
// process and Stratum V2 is sv2pool in this process (startSV2Side); when
// the engine serves SV2 on its own port, an SV2 side is that process's
// SV2 address and key with the same enginesrv for publish and stats.
type poolSide interface {
	label() string
	addr() string
	authorityKey() string
	// publish makes the server send a job on a new block to every miner.
	publish(ctx context.Context) error
	// stats reads the process's RSS (after a GC when gc), CPU seconds,
	// sessions and shares accepted so far.
	stats(ctx context.Context, gc bool) (ServerStats, error)
	// pid is the server process (this one for an in-process server).
	pid() int
	stop()
}

// sv1Side is an enginesrv process.
type sv1Side struct {
	p      *serverProc
	listen string
}

func (s *sv1Side) label() string        { return s.p.label }
func (s *sv1Side) addr() string         { return s.listen }
func (s *sv1Side) authorityKey() string { return "" }
func (s *sv1Side) pid() int             { return s.p.pid }
func (s *sv1Side) stop()                { s.p.stop() }
func (s *sv1Side) publish(ctx context.Context) error {
	_, err := s.p.publish(ctx)
	return err
}
func (s *sv1Side) stats(ctx context.Context, gc bool) (ServerStats, error) { return s.p.stats(ctx, gc) }

// sv2Side is sv2pool, the plain-net SV2 pool role, in this process (the
// loadgen miners run in child processes, so this process's RSS and CPU are
// the pool's and the scenario runner's small share).
type sv2Side struct {
	srv       *sv2pool.Server
	ln        net.Listener
	authority string
	accepted  atomic.Int64
	mu        sync.Mutex // serialises jobs
	height    int32
}

// startSV2Side starts the SV2 server of the scenario at share difficulty
// diff, with its own authority key and a certificate valid for a day.
func startSV2Side(diff float64) (poolSide, error) {
	auth, err := noise.GenerateKey()
	if err != nil {
		return nil, err
	}
	static, err := noise.GenerateKey()
	if err != nil {
		return nil, err
	}
	now := uint32(time.Now().Unix())
	cert, err := noise.SignCertificate(auth, static, 0, now-3600, now+86400)
	if err != nil {
		return nil, err
	}
	resp, err := noise.NewResponder(static, cert, nil)
	if err != nil {
		return nil, err
	}
	s := &sv2Side{authority: noise.FormatAuthorityKey(noise.XOnly(auth)), height: 800_000}
	s.srv, err = sv2pool.NewServer(sv2pool.Options{Responder: resp, InitialDifficulty: diff,
		OnShare: func(sv2pool.Share) { s.accepted.Add(1) }})
	if err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	go s.srv.Serve(s.ln)
	if err := s.publish(context.Background()); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *sv2Side) label() string        { return "sv2pool" }
func (s *sv2Side) addr() string         { return s.ln.Addr().String() }
func (s *sv2Side) authorityKey() string { return s.authority }
func (s *sv2Side) pid() int             { return os.Getpid() }
func (s *sv2Side) stop()                { s.srv.Close() }

func (s *sv2Side) publish(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.height++
	t, err := benchJobTemplate(s.height)
	if err != nil {
		return err
	}
	_, err = s.srv.SetJob(t)
	return err
}

func (s *sv2Side) stats(_ context.Context, gc bool) (ServerStats, error) {
	if gc {
		runtime.GC()
		debug.FreeOSMemory()
	}
	st := ServerStats{PID: os.Getpid(), Impl: "sv2pool", Sessions: int64(s.srv.Sessions()), Accepted: s.accepted.Load(), GC: gc, Goroutines: runtime.NumGoroutine()}
	p, err := loadgen.ReadProc(st.PID)
	if err != nil {
		return st, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.RSSKB, st.CPUSeconds, st.HeapInuse, st.StackInuse = p.RSSKB, p.CPUTime.Seconds(), ms.HeapInuse, ms.StackInuse
	return st, nil
}

// benchJobTemplate is a job shaped like enginesrv's (the same coinbase
// and branch sizes, so both protocols carry the same job): a coinbase whose
// scriptSig is the BIP34 height, the 12-byte extranonce slot and a pool
// tag, paying 3.125 BTC to a P2WPKH output plus a witness commitment; a
// random previous hash and a 12-step branch; mainnet bits, so no share is
// a block.
func benchJobTemplate(height int32) (sv2pool.JobTemplate, error) {
	const extranonce = 12
	tag := []byte("/hashpool-bench/")
	script := append([]byte{3, byte(height), byte(height >> 8), byte(height >> 16)}, make([]byte, extranonce)...)
	script = append(script, tag...)
	pkh, commit := make([]byte, 20), make([]byte, 32)
	rand.Read(pkh)
	rand.Read(commit)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 0xffffffff}, SignatureScript: script, Sequence: 0xffffffff})
	tx.AddTxOut(wire.NewTxOut(312_500_000, append([]byte{0x00, 0x14}, pkh...)))
	tx.AddTxOut(wire.NewTxOut(0, append([]byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}, commit...)))
	var b bytes.Buffer
	if err := tx.SerializeNoWitness(&b); err != nil {
		return sv2pool.JobTemplate{}, err
	}
	raw := b.Bytes()
	// The extranonce slot follows the height push inside the scriptSig.
	at := bytes.Index(raw, script[:4+extranonce])
	if at < 0 {
		return sv2pool.JobTemplate{}, errors.New("bench job: extranonce slot not found in the coinbase")
	}
	at += 4
	t := sv2pool.JobTemplate{Coinbase1: append([]byte(nil), raw[:at]...), Coinbase2: append([]byte(nil), raw[at+extranonce:]...),
		MerkleBranch: make([][32]byte, 12), Version: 0x20000000, NBits: 0x17034219, NTime: uint32(time.Now().Unix())}
	rand.Read(t.PrevHash[:])
	for i := range t.MerkleBranch {
		rand.Read(t.MerkleBranch[i][:])
	}
	if len(t.Coinbase1) != 46 || len(t.Coinbase2) != 103 {
		return t, fmt.Errorf("bench job: coinbase parts %d+%d bytes, want enginesrv's 46+103", len(t.Coinbase1), len(t.Coinbase2))
	}
	return t, nil
}

package loadgen

import (
	"context"
	"crypto/rand"
	"math"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/sv2pool"
)

// sv2TestPool is an sv2pool.Server on 127.0.0.1 with a generated authority
// key and certificate.
type sv2TestPool struct {
	srv       *sv2pool.Server
	addr      string
	authority string // base58, as a pool publishes it
	shares    atomic.Int64
}

// startSV2Pool starts a pool whose certificate is valid from validFrom to
// notAfter (relative to now) at share difficulty diff, with one job.
func startSV2Pool(t *testing.T, diff float64, validFrom, notAfter time.Duration) *sv2TestPool {
	t.Helper()
	auth, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	static, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := noise.SignCertificate(auth, static, 0, uint32(now.Add(validFrom).Unix()), uint32(now.Add(notAfter).Unix()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := noise.NewResponder(static, cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &sv2TestPool{authority: noise.FormatAuthorityKey(noise.XOnly(auth))}
	p.srv, err = sv2pool.NewServer(sv2pool.Options{Responder: r, InitialDifficulty: diff,
		OnShare: func(sv2pool.Share) { p.shares.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	p.newBlock(t)
	return p
}

// newBlock gives the pool a job on a new previous block: random coinbase
// halves around the 12-byte extranonce, a 3-step branch, mainnet bits (no
// share is a block).
func (p *sv2TestPool) newBlock(t testing.TB) {
	tmpl := sv2pool.JobTemplate{Coinbase1: make([]byte, 42), Coinbase2: make([]byte, 103),
		MerkleBranch: make([][32]byte, 3), Version: 0x20000000, NBits: 0x17034219, NTime: uint32(time.Now().Unix())}
	rand.Read(tmpl.PrevHash[:])
	rand.Read(tmpl.Coinbase1)
	rand.Read(tmpl.Coinbase2)
	for i := range tmpl.MerkleBranch {
		rand.Read(tmpl.MerkleBranch[i][:])
	}
	if _, err := p.srv.SetJob(tmpl); err != nil {
		t.Error(err)
	}
}

func sv2Scenario(p *sv2TestPool, kind string) Scenario {
	s := DefaultScenario()
	s.URL, s.SV2, s.AuthorityKey = p.addr, kind, p.authority
	s.Duration = 3 * time.Second
	s.ResponseTimeout = 10 * time.Second
	s.MaxGrindHashes = 1 << 24
	return s
}

// TestSV2MinersGetSharesAccepted runs standard and extended channels
// against sv2pool with real grinding, new blocks and a SetTarget that
// raises the difficulty mid-run: every share must be accepted (or stale
// across a new block), the pool's count must match loadgen's, and the
// report must carry latency, fan-out and the steady-state bytes.
func TestSV2MinersGetSharesAccepted(t *testing.T) {
	for _, kind := range []string{SV2Standard, SV2Extended} {
		t.Run(kind, func(t *testing.T) {
			const miners = 8
			p := startSV2Pool(t, math.Ldexp(1, -24), -time.Hour, time.Hour)
			s := sv2Scenario(p, kind)
			s.Miners, s.Rate, s.VersionRolling = miners, 4, true
			s.SourceIPs = []string{"127.0.0.2-127.0.0.3"}
			s.PID = os.Getpid() // the pool runs in this process
			harder := sha.DiffToTarget(math.Ldexp(1, -20))
			s.Publish = func(ctx context.Context, n int) error {
				if n == 1 {
					// 16 times the difficulty: a miner that ignored SetTarget
					// would see most shares rejected as difficulty-too-low.
					for id := uint32(1); id <= miners; id++ {
						if !p.srv.SetTarget(id, harder) {
							t.Errorf("SetTarget: no channel %d", id)
						}
					}
					return nil
				}
				p.newBlock(t)
				return nil
			}
			s.PublishEvery = 400 * time.Millisecond
			rep := run(t, s)

			if rep.Protocol != "sv2-"+kind || rep.Mode != "grind" {
				t.Errorf("protocol %q mode %q", rep.Protocol, rep.Mode)
			}
			if rep.Sessions.Ever != miners || rep.Sessions.Up != miners || rep.Sessions.HandshakeFails != 0 || rep.ErrorCount != 0 {
				t.Errorf("sessions %+v, errors %v: want %d up without failures", rep.Sessions, rep.Errors, miners)
			}
			if rep.Shares.Accepted < miners {
				t.Errorf("accepted %d shares, want at least %d", rep.Shares.Accepted, miners)
			}
			// Stale shares cross a new block. A share already on its way
			// when the pool raised the difficulty may miss the new target
			// (at most about one per miner); a miner that ignored SetTarget
			// would lose fifteen in sixteen after it.
			for k, n := range rep.Shares.Rejected {
				if k != "stale-share" && !(k == "difficulty-too-low" && n <= miners) {
					t.Errorf("rejected %d shares as %s", n, k)
				}
			}
			if got := p.shares.Load(); got != rep.Shares.Accepted {
				t.Errorf("pool accepted %d shares, loadgen counted %d", got, rep.Shares.Accepted)
			}
			if got := rep.Shares.Accepted + totalRejects(rep) + rep.Shares.Unanswered; got != rep.Shares.Submitted {
				t.Errorf("accepted+rejected+unanswered = %d, submitted %d", got, rep.Shares.Submitted)
			}
			if rep.Shares.Latency.Count != uint64(rep.Shares.Accepted+totalRejects(rep)) {
				t.Errorf("latency samples %d, answers %d", rep.Shares.Latency.Count, rep.Shares.Accepted+totalRejects(rep))
			}
			if rep.Shares.SetDiffs < miners {
				t.Errorf("%d SetTarget received, want ≥ %d", rep.Shares.SetDiffs, miners)
			}
			if rep.Fanout.Published == 0 || rep.Fanout.MaxReceipts != miners {
				t.Errorf("fan-out %+v: want published blocks received by all %d miners", rep.Fanout, miners)
			}
			n := rep.Net
			if n.Conns != miners || n.SteadyConns != miners || n.SteadyTxBytes <= 0 || n.SteadyRxBytes <= 0 || n.SteadyTxBytes >= n.TxBytes {
				t.Errorf("net %+v: want TCP_INFO with a setup mark on all %d connections", n, miners)
			}
			if rep.Server == nil || rep.Server.Samples == 0 {
				t.Errorf("server stats %+v", rep.Server)
			}
		})
	}
}

// TestSV2BadCertificate: a wrong authority key and an expired certificate
// each fail the Noise handshake with the noise package's error in the
// report, and no session comes up.
func TestSV2BadCertificate(t *testing.T) {
	other, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		notAfter  time.Duration
		authority string // "" = the pool's own
		want      error
	}{
		{"wrong authority key", time.Hour, noise.FormatAuthorityKey(noise.XOnly(other)), noise.ErrCertSignature},
		{"expired certificate", -time.Hour, "", noise.ErrCertExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startSV2Pool(t, 1, -2*time.Hour, tc.notAfter)
			s := sv2Scenario(p, SV2Extended)
			if tc.authority != "" {
				s.AuthorityKey = tc.authority
			}
			s.Miners, s.Rate, s.Duration = 2, 1, time.Second
			rep := run(t, s)
			if rep.Sessions.Ever != 0 || rep.Sessions.HandshakeFails == 0 {
				t.Errorf("sessions %+v: want none up and handshake failures", rep.Sessions)
			}
			if len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0], "sv2 noise handshake") || !strings.Contains(rep.Errors[0], tc.want.Error()) {
				t.Errorf("errors %q: want the handshake's %q", rep.Errors, tc.want)
			}
			// The pool's side of the handshake completed; it must see the
			// miner hang up.
			for i := 0; i < 1000 && p.srv.Sessions() != 0; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if n := p.srv.Sessions(); n != 0 {
				t.Errorf("pool still holds %d sessions 10 s after the run", n)
			}
		})
	}
}

// TestSV2TwoProcesses runs SV2 miners in two child processes: the SV2
// fields travel to the children and the reports merge.
func TestSV2TwoProcesses(t *testing.T) {
	p := startSV2Pool(t, math.Ldexp(1, -24), -time.Hour, time.Hour)
	s := sv2Scenario(p, SV2Standard)
	s.Miners, s.Rate, s.Procs = 4, 4, 2
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s.Executable = exe
	rep := run(t, s)
	if rep.Procs != 2 || rep.Sessions.Ever != 4 || rep.Shares.Accepted == 0 || rep.Protocol != "sv2-standard" {
		t.Errorf("procs %d, sessions %+v, accepted %d, protocol %q", rep.Procs, rep.Sessions, rep.Shares.Accepted, rep.Protocol)
	}
	if rep.Net.SteadyConns != 4 {
		t.Errorf("steady conns %d, want 4 (merged)", rep.Net.SteadyConns)
	}
	if got := p.shares.Load(); got != rep.Shares.Accepted {
		t.Errorf("pool accepted %d, loadgen %d", got, rep.Shares.Accepted)
	}
}

func TestSV2ScenarioValidate(t *testing.T) {
	good := DefaultScenario()
	good.SV2, good.AuthorityKey = SV2Standard, "x"
	for name, tc := range map[string]struct {
		edit func(*Scenario)
		want string
	}{
		"bad key":       {func(s *Scenario) {}, "authority key"},
		"unknown kind":  {func(s *Scenario) { s.SV2 = "group" }, `sv2 "group"`},
		"agents on sv2": {func(s *Scenario) { s.Agents = 1 }, "agents and bad clients"},
		"key on sv1":    {func(s *Scenario) { s.SV2 = "" }, "without SV2"},
	} {
		s := good
		tc.edit(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", name, err, tc.want)
		}
	}
}

// FuzzSV2MinerHandle feeds a miner's message handler server frames of any
// type and content, as a hostile pool could send them (after decryption):
// it must never panic, and a job it accepts must be one it can grind.
func FuzzSV2MinerHandle(f *testing.F) {
	var prev [32]byte
	prev[0] = 1
	f.Add(true, sv2.MsgOpenExtendedMiningChannelSuccess, sv2.AppendOpenExtendedMiningChannelSuccess(nil, &sv2.OpenExtendedMiningChannelSuccess{
		RequestID: sv2RequestID, ChannelID: 7, Target: sv2.U256{0: 0xff, 31: 0x0f}, ExtranonceSize: 8, ExtranoncePrefix: []byte{0, 0, 0, 1}})[sv2.HeaderLen:],
		sv2.MsgNewExtendedMiningJob, sv2.AppendNewExtendedMiningJob(nil, &sv2.NewExtendedMiningJob{ChannelID: 7, JobID: 3, Version: 0x20000000,
			VersionRollingAllowed: true, MerklePath: []sv2.U256{{1}}, CoinbaseTxPrefix: []byte{1, 2}, CoinbaseTxSuffix: []byte{3}})[sv2.HeaderLen:],
		sv2.MsgSetNewPrevHash, sv2.AppendSetNewPrevHash(nil, &sv2.SetNewPrevHash{ChannelID: 7, JobID: 3, PrevHash: prev, MinNTime: 1, NBits: 0x207fffff})[sv2.HeaderLen:])
	f.Add(false, sv2.MsgOpenStandardMiningChannelSuccess, sv2.AppendOpenStandardMiningChannelSuccess(nil, &sv2.OpenStandardMiningChannelSuccess{
		RequestID: sv2RequestID, ChannelID: 1, Target: sv2.U256{31: 1}, ExtranoncePrefix: make([]byte, 12)})[sv2.HeaderLen:],
		sv2.MsgNewMiningJob, sv2.AppendNewMiningJob(nil, &sv2.NewMiningJob{ChannelID: 1, JobID: 1, MinNTime: sv2.OptionU32{Valid: true, V: 5}, Version: 2})[sv2.HeaderLen:],
		sv2.MsgSubmitSharesError, sv2.AppendSubmitSharesError(nil, &sv2.SubmitSharesError{ChannelID: 1, SequenceNumber: 0, ErrorCode: []byte("stale-share")})[sv2.HeaderLen:])
	f.Fuzz(func(t *testing.T, extended bool, t1 uint8, p1 []byte, t2 uint8, p2 []byte, t3 uint8, p3 []byte) {
		s := DefaultScenario()
		e := newEnv(&s, newRecorder(), nil, context.Background())
		m := &sv2Miner{e: e, worker: "w", extended: extended, hs: make(chan sv2Reply, 4), jobs: map[uint32]*sv2Job{}, first: make(chan struct{})}
		m.pending = []sv2Pending{{seq: 0}, {seq: 1}}
		for _, fr := range []struct {
			t uint8
			p []byte
		}{{t1, p1}, {t2, p2}, {t3, p3}} {
			if m.handle(fr.t, fr.p) != nil {
				break
			}
		}
		if w := m.work.Load(); w != nil {
			if w.job == nil && extended {
				t.Fatal("an extended miner holds a header-only job")
			}
			if len(w.prefix)+m.enSize > sv2.MaxB32 {
				t.Fatalf("extranonce %d+%d bytes", len(w.prefix), m.enSize)
			}
		}
	})
}

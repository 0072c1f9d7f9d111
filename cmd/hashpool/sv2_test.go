package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// TestRunSV2MinesBlocks: `hashpool run -sv2` with an authority key the test generated serves
// Stratum V2 over Noise next to stratum; a miner on a standard channel (header-only: the pool's
// merkle root) and one on an extended channel (its own coinbase from the pool's extranonce
// prefix) each mine regtest blocks that reach the node and get found_blocks rows. A client
// that pins another authority key is refused.
func TestRunSV2MinesBlocks(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	authority, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "authority.key")
	if err := os.WriteFile(keyFile, []byte(fmt.Sprintf("%x\n", authority.Serialize())), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "pool.toml")
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
network = "regtest"
data_dir = %q
[statshttpd]
port = 0
[slparserhttpd]
port = 0
[prometheus]
enabled = false
`, data)), 0o600); err != nil {
		t.Fatal(err)
	}
	plain, sv2Addr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := n.ClientOptions()
	// Difficulty 2^-30: a share every few hashes; regtest's target makes about every other one a block.
	startRun(t, sv2Addr, "-c", conf, "-node", o.URL, "-node-auth", o.User+":"+o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", plain, "-sv2", sv2Addr, "-sv2-authority-key", keyFile,
		"-min-difficulty", "0.000000001", "-default-difficulty", "0.000000001")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	other, _ := noise.GenerateKey()
	if c, err := sv2Dial(t, sv2Addr, other); err == nil {
		c.c.Close()
		t.Fatal("a client pinning another authority key completed the handshake")
	}

	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	std, err := sv2Dial(t, sv2Addr, authority)
	if err != nil {
		t.Fatal(err)
	}
	std.setup(1) // REQUIRES_STANDARD_JOBS: NewMiningJob with the pool's merkle root
	std.open(false, "alice.sv2std")
	ext, err := sv2Dial(t, sv2Addr, authority)
	if err != nil {
		t.Fatal(err)
	}
	ext.setup(0)
	ext.open(true, "alice.sv2ext")

	blocks := 0
	for _, m := range []*sv2TestMiner{std, ext, std, ext} {
		tip, err := n.Client().GetBestBlockHash(ctx)
		if err != nil {
			t.Fatal(err)
		}
		prev, err := sha.ParseDisplayHex(tip)
		if err != nil {
			t.Fatal(err)
		}
		m.mineBlock(t, prev)
		blocks++
		want := startHeight + int64(blocks)
		eventually(t, fmt.Sprintf("block %d on the node", want), func() bool {
			h, err := n.Client().GetBlockCount(ctx)
			return err == nil && h >= want
		})
	}
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(data, "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually(t, "found_blocks rows", func() bool { return len(foundBlockRows(ctx, t, db)) >= blocks })
}

// sv2TestMiner is a minimal SV2 miner over Noise for one channel.
type sv2TestMiner struct {
	t        *testing.T
	c        *noise.Conn
	extended bool
	chID     uint32
	group    uint32
	prefix   []byte
	enSize   int
	target   sv2.U256
	ext      map[uint32]sv2.NewExtendedMiningJob
	std      map[uint32]sv2.NewMiningJob
	prev     [32]byte
	nbits    uint32
	active   uint32
	ready    bool
	minNTime uint32
	seq      uint32
	frames   chan sv2TestFrame
}

type sv2TestFrame struct {
	h   sv2.Header
	p   []byte
	err error
}

func sv2Dial(t *testing.T, addr string, authority *btcec.PrivateKey) (*sv2TestMiner, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := noise.Client(nc, noise.XOnly(authority), noise.ConnOptions{})
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	m := &sv2TestMiner{t: t, c: c, ext: map[uint32]sv2.NewExtendedMiningJob{}, std: map[uint32]sv2.NewMiningJob{},
		frames: make(chan sv2TestFrame, 4096)}
	go func() {
		for {
			h, p, err := c.ReadFrame()
			m.frames <- sv2TestFrame{h, append([]byte(nil), p...), err}
			if err != nil {
				return
			}
		}
	}()
	return m, nil
}

func (m *sv2TestMiner) send(f []byte) {
	m.t.Helper()
	if err := m.c.WriteFrame(f); err != nil {
		m.t.Fatal(err)
	}
}

// next reads one frame, applying jobs and targets, and returns it.
func (m *sv2TestMiner) next() (sv2.Header, []byte) {
	m.t.Helper()
	var f sv2TestFrame
	select {
	case f = <-m.frames:
	case <-time.After(60 * time.Second):
		m.t.Fatal("no frame from the pool in 60 s")
	}
	if f.err != nil {
		m.t.Fatal(f.err)
	}
	h, p := f.h, f.p
	switch h.MsgType {
	case sv2.MsgNewExtendedMiningJob:
		var j sv2.NewExtendedMiningJob
		if err := sv2.DecodeNewExtendedMiningJob(p, &j); err != nil {
			m.t.Fatal(err)
		}
		j.MerklePath = append([]sv2.U256(nil), j.MerklePath...)
		j.CoinbaseTxPrefix = append([]byte(nil), j.CoinbaseTxPrefix...)
		j.CoinbaseTxSuffix = append([]byte(nil), j.CoinbaseTxSuffix...)
		m.ext[j.JobID] = j
		if j.MinNTime.Valid {
			m.active, m.minNTime = j.JobID, j.MinNTime.V
		}
	case sv2.MsgNewMiningJob:
		var j sv2.NewMiningJob
		if err := sv2.DecodeNewMiningJob(p, &j); err != nil {
			m.t.Fatal(err)
		}
		m.std[j.JobID] = j
		if j.MinNTime.Valid {
			m.active, m.minNTime = j.JobID, j.MinNTime.V
		}
	case sv2.MsgSetNewPrevHash:
		var np sv2.SetNewPrevHash
		if err := sv2.DecodeSetNewPrevHash(p, &np); err != nil {
			m.t.Fatal(err)
		}
		m.prev, m.nbits, m.active, m.ready, m.minNTime = np.PrevHash, np.NBits, np.JobID, true, np.MinNTime
	case sv2.MsgSetTarget:
		var st sv2.SetTarget
		if err := sv2.DecodeSetTarget(p, &st); err != nil {
			m.t.Fatal(err)
		}
		m.target = st.MaximumTarget
	}
	return h, p
}

func (m *sv2TestMiner) expect(typ uint8) []byte {
	m.t.Helper()
	for i := 0; i < 1000; i++ {
		h, p := m.next()
		if h.MsgType == typ {
			return p
		}
		switch h.MsgType {
		case sv2.MsgSetupConnectionError, sv2.MsgOpenMiningChannelError, sv2.MsgSubmitSharesError:
			m.t.Fatalf("got %s (%q) waiting for %s", sv2.MsgName(h.MsgType), p, sv2.MsgName(typ))
		}
	}
	m.t.Fatalf("no %s", sv2.MsgName(typ))
	return nil
}

func (m *sv2TestMiner) setup(flags uint32) {
	m.t.Helper()
	m.send(sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Flags: flags,
		EndpointHost: []byte("127.0.0.1"), Vendor: []byte("hashpool-e2e")}))
	m.expect(sv2.MsgSetupConnectionSuccess)
}

func (m *sv2TestMiner) open(extended bool, user string) {
	m.t.Helper()
	var max sv2.U256
	for i := range max {
		max[i] = 0xff
	}
	m.extended = extended
	if extended {
		m.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 1, UserIdentity: []byte(user), MaxTarget: max}))
		var ok sv2.OpenExtendedMiningChannelSuccess
		if err := sv2.DecodeOpenExtendedMiningChannelSuccess(m.expect(sv2.MsgOpenExtendedMiningChannelSuccess), &ok); err != nil {
			m.t.Fatal(err)
		}
		m.chID, m.group, m.target, m.enSize, m.prefix = ok.ChannelID, ok.GroupChannelID, ok.Target, int(ok.ExtranonceSize), append([]byte(nil), ok.ExtranoncePrefix...)
		return
	}
	m.send(sv2.AppendOpenStandardMiningChannel(nil, &sv2.OpenStandardMiningChannel{RequestID: 1, UserIdentity: []byte(user), MaxTarget: max}))
	var ok sv2.OpenStandardMiningChannelSuccess
	if err := sv2.DecodeOpenStandardMiningChannelSuccess(m.expect(sv2.MsgOpenStandardMiningChannelSuccess), &ok); err != nil {
		m.t.Fatal(err)
	}
	m.chID, m.group, m.target, m.prefix = ok.ChannelID, ok.GroupChannelID, ok.Target, append([]byte(nil), ok.ExtranoncePrefix...)
}

// mineBlock waits for a job on prev (the node's tip), grinds a share that also meets the
// network target and submits it; it returns once the pool accepted it.
func (m *sv2TestMiner) mineBlock(t *testing.T, prev [32]byte) {
	t.Helper()
	for !m.ready || !m.has(m.active) || m.prev != prev {
		m.next()
	}
	job := m.active
	var en []byte
	if m.extended {
		en = make([]byte, m.enSize)
		binary.BigEndian.PutUint32(en[len(en)-4:], m.seq+1)
	}
	var root [32]byte
	var version uint32
	if j, ok := m.std[job]; ok && !m.extended {
		root, version = j.MerkleRoot, j.Version
	} else {
		j := m.ext[job]
		cb := append(append(append(append([]byte(nil), j.CoinbaseTxPrefix...), m.prefix...), en...), j.CoinbaseTxSuffix...)
		root, version = sha.DoubleSHA256(cb), j.Version
		for _, leaf := range j.MerklePath {
			root = sha.DoubleSHA256(append(root[:], leaf[:]...))
		}
	}
	share := sha.HashToTarget(&m.target)
	network := sha.CompactToTarget(m.nbits)
	ntime := max(uint32(time.Now().Unix()), m.minNTime)
	for nonce := uint32(0); nonce < 1<<24; nonce++ {
		var hdr []byte
		hdr = binary.LittleEndian.AppendUint32(hdr, version)
		hdr = append(hdr, m.prev[:]...)
		hdr = append(hdr, root[:]...)
		hdr = binary.LittleEndian.AppendUint32(hdr, ntime)
		hdr = binary.LittleEndian.AppendUint32(hdr, m.nbits)
		hdr = binary.LittleEndian.AppendUint32(hdr, nonce)
		h := sha.DoubleSHA256(hdr)
		if !sha.HashMeetsTarget(&h, &share) || !sha.HashMeetsTarget(&h, &network) {
			continue
		}
		m.seq++
		if m.extended {
			m.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: m.chID, SequenceNumber: m.seq, JobID: job,
				Nonce: nonce, NTime: ntime, Version: version, Extranonce: en}))
		} else {
			m.send(sv2.AppendSubmitSharesStandard(nil, &sv2.SubmitSharesStandard{ChannelID: m.chID, SequenceNumber: m.seq, JobID: job,
				Nonce: nonce, NTime: ntime, Version: version}))
		}
		var ok sv2.SubmitSharesSuccess
		if err := sv2.DecodeSubmitSharesSuccess(m.expect(sv2.MsgSubmitSharesSuccess), &ok); err != nil || ok.LastSequenceNumber != m.seq {
			t.Fatalf("%+v %v", ok, err)
		}
		return
	}
	t.Fatal("no block-solving nonce in 2^24 tries")
}

func (m *sv2TestMiner) has(id uint32) bool {
	if m.extended {
		_, ok := m.ext[id]
		return ok
	}
	_, ok := m.std[id]
	return ok
}

// TestSV2RenewalKeepsTheAuthority: the certificate hashpool signs again before the current one
// ends (the engine's SV2Renewal, wired in addSServer) uses the same authority key, read from
// the file the first start generated, so miners that pinned it accept the new one.
func TestSV2RenewalKeepsTheAuthority(t *testing.T) {
	cfg := defaultConfig()
	dir := t.TempDir()
	now := time.Now()
	r1, pub1, err := cfg.sv2Responder(dir, now)
	if err != nil || r1 == nil {
		t.Fatalf("first certificate: %v", err)
	}
	key, err := os.ReadFile(cfg.sv2AuthorityFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Duration(cfg.SServer.SV2CertValidityDays) * 24 * time.Hour * 3 / 4)
	r2, pub2, err := cfg.sv2Responder(dir, later)
	if err != nil || r2 == nil {
		t.Fatalf("renewed certificate: %v", err)
	}
	if pub1 != pub2 {
		t.Fatalf("renewal changed the authority key: %s, then %s", pub1, pub2)
	}
	if again, _ := os.ReadFile(cfg.sv2AuthorityFile(dir)); string(again) != string(key) {
		t.Fatal("renewal rewrote the authority key file")
	}
}

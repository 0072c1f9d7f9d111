package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/internal/gnetlog"
)

// Agent is the farm proxy: a gnet stratum server for miners and one
// upstream agent-protocol connection per MinersPerUpstream miners.
type Agent struct {
	gnet.BuiltinEventEngine

	cfg   Config
	log   *slog.Logger
	stats Stats

	dialer *dialer

	mu     sync.Mutex
	slots  []*slot
	miners map[*Miner]struct{}
	// multi_user_mode: session ids are shared by every account's slot
	// (they are given at subscribe, before the account is known), and each
	// account has one slot.
	sids      map[uint16]*Miner
	sidCursor uint16
	accounts  map[string]*slot
	nextIdx   int
	oldWire   Wire // counters of retired account slots
	ctx       context.Context
	wg        sync.WaitGroup

	eng         gnet.Engine
	ready       chan struct{}
	addr        atomic.Value // *net.TCPAddr
	versionMask atomic.Uint32
	now         atomic.Int64
	scratch     sync.Pool
	naps        map[gnet.EventLoop]*loopNap // under mu
}

// loopNap coalesces an event loop's polls (miner_poll_coalesce_ms): the
// first miner traffic after a round queues a task, which gnet runs after
// the round's events; it sleeps until the interval since the previous
// round has passed, so the next poll collects every miner that sent
// meanwhile. Without it a farm's steady ~1,000 shares/s cost ~1,000 poll
// rounds/s, each with two epoll_wait calls and a scheduler hand-off. Lines
// for many miners (jobs, difficulties) kick the nap short, so coalescing
// delays only share answers and the reading of the miners' requests.
type loopNap struct {
	every  time.Duration
	kick   chan struct{} // buffered 1
	queued bool          // loop goroutine only
	woke   time.Time     // loop goroutine only: when the last nap ended
	timer  *time.Timer   // loop goroutine only
	task   gnet.Runnable
}

func newLoopNap(every time.Duration) *loopNap {
	n := &loopNap{every: every, kick: make(chan struct{}, 1)}
	n.task = gnet.RunnableFunc(func(context.Context) error {
		if d := n.every - time.Since(n.woke); d > 0 {
			if n.timer == nil {
				n.timer = time.NewTimer(d)
			} else {
				n.timer.Reset(d)
			}
			select {
			case <-n.timer.C:
			case <-n.kick:
				n.timer.Stop()
			}
		}
		n.woke, n.queued = time.Now(), false
		return nil
	})
	return n
}

// after is called on the loop after miner traffic.
func (n *loopNap) after(el gnet.EventLoop) {
	if n == nil || n.queued {
		return
	}
	n.queued = el.Execute(context.Background(), n.task) == nil
}

// wakeLoops ends every loop's nap early (from any goroutine).
func (a *Agent) wakeLoops() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.naps {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// napFor returns el's loopNap (nil when coalescing is off).
func (a *Agent) napFor(el gnet.EventLoop) *loopNap {
	if a.cfg.MinerPollCoalesceMs <= 0 || el == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.naps[el]
	if n == nil {
		if a.naps == nil {
			a.naps = make(map[gnet.EventLoop]*loopNap)
		}
		n = newLoopNap(time.Duration(a.cfg.MinerPollCoalesceMs) * time.Millisecond)
		a.naps[el] = n
	}
	return n
}

// scratch is per-OnTraffic working space (pooled, so parsing and replies
// do not allocate).
type scratch struct {
	msg stratum.Message
	sub stratum.Submit
	cfg []stratum.ConfigureEntry
	out []byte
}

// New checks cfg and builds an Agent; Serve runs it. log may be nil (silent).
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := newDialer(&cfg)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log, dialer: d, miners: make(map[*Miner]struct{}), ready: make(chan struct{}),
		sids: make(map[uint16]*Miner), accounts: make(map[string]*slot)}
	a.versionMask.Store(0x1fffe000)
	a.scratch.New = func() any { return &scratch{out: make([]byte, 0, 2048)} }
	a.now.Store(time.Now().Unix())
	return a, nil
}

// Ready is closed once the miner listener is up.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Addr returns the miner listener's address once Ready (nil before).
func (a *Agent) Addr() net.Addr {
	ad, _ := a.addr.Load().(net.Addr)
	return ad
}

// Stats returns a snapshot of the counters, with the kernel's view of the
// upstream sockets where the OS provides it.
func (a *Agent) Stats() Snapshot {
	sn := a.stats.snapshot()
	a.mu.Lock()
	slots := append([]*slot(nil), a.slots...)
	sn.Wire.add(a.oldWire)
	a.mu.Unlock()
	for _, s := range slots {
		s.mu.Lock()
		sn.Wire.add(s.wire)
		u := s.up
		s.mu.Unlock()
		if u != nil {
			if w, ok := u.wire(); ok {
				sn.Wire.add(w)
			}
		}
	}
	return sn
}

// Serve runs the agent until ctx ends.
func (a *Agent) Serve(ctx context.Context) error {
	listen := a.cfg.Listen()
	if a.cfg.ListenPort == 0 {
		// gnet cannot report an ephemeral port portably: pick one first.
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("agent: listen %s: %w", listen, err)
		}
		listen = l.Addr().String()
		l.Close()
	}
	ta, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return fmt.Errorf("agent: listen %s: %w", listen, err)
	}
	a.addr.Store(ta)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.mu.Lock()
	a.ctx = ctx
	if !a.cfg.MultiUserMode {
		a.newSlotLocked("")
	}
	a.mu.Unlock()
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.tick(ctx) }()
	runErr := make(chan error, 1)
	go func() {
		runErr <- gnet.Run(a, "tcp://"+listen, gnet.WithNumEventLoop(a.cfg.EventLoops),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithTCPKeepAlive(5*time.Minute),
			gnet.WithLogLevel(logging.ErrorLevel), gnet.WithLogger(gnetlog.Logger(a.log)))
	}()
	select {
	case err := <-runErr:
		cancel()
		a.wg.Wait()
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("agent: listen %s: %w", listen, err)
	case <-a.ready:
	}
	a.log.Info("btcagent listening", "addr", listen, "pools", len(a.cfg.Pools))
	<-ctx.Done()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = a.eng.Stop(stopCtx)
	stopCancel()
	<-runErr
	a.wg.Wait()
	return err
}

// newSlotLocked adds an upstream slot for account ("": the pools' own
// sub-accounts) and starts its connection; caller holds a.mu. An account
// slot ends when its last miner leaves (its stop), and is then retired.
func (a *Agent) newSlotLocked(account string) *slot {
	s := newSlot(a, a.nextIdx)
	a.nextIdx++
	s.user = account
	ctx, stop := context.WithCancel(a.ctx)
	s.stop = stop
	if account != "" {
		s.lostAt = time.Now() // no_pool_grace_seconds applies from the start
	}
	a.slots = append(a.slots, s)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		s.run(ctx)
		stop()
		if account != "" {
			a.retire(s)
		}
	}()
	return s
}

// retire drops an account slot whose run has ended, keeping its counters.
func (a *Agent) retire(s *slot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s.mu.Lock()
	a.oldWire.add(s.wire)
	s.wire = Wire{}
	s.mu.Unlock()
	for i, o := range a.slots {
		if o == s {
			a.slots = append(a.slots[:i], a.slots[i+1:]...)
			break
		}
	}
}

// assign gives m an agent session id and, unless in multi_user_mode
// (where the slot follows the account at authorize), a slot, opening a
// new upstream connection when every slot is full.
func (a *Agent) assign(m *Miner) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx == nil || a.ctx.Err() != nil {
		return false
	}
	if a.cfg.MultiUserMode {
		for i := 0; i <= agent.MaxSessionID; i++ {
			id := a.sidCursor
			a.sidCursor++
			if a.sidCursor > agent.MaxSessionID {
				a.sidCursor = 0
			}
			if _, used := a.sids[id]; !used {
				a.sids[id] = m
				m.sid = id
				return true
			}
		}
		return false
	}
	for _, s := range a.slots {
		if id, ok := s.allocID(m); ok {
			m.slot, m.sid = s, id
			return true
		}
	}
	s := a.newSlotLocked("")
	id, ok := s.allocID(m)
	if ok {
		m.slot, m.sid = s, id
	}
	return ok
}

// tick closes miners past their read deadline and, unless
// always_keep_downconn, the miners of slots without a pool for too long.
func (a *Agent) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sec := now.Unix()
			a.now.Store(sec)
			a.mu.Lock()
			slots := append([]*slot(nil), a.slots...)
			var expired []*Miner
			if n%5 == 0 {
				for m := range a.miners {
					if sec > m.deadline.Load() {
						expired = append(expired, m)
					}
				}
			}
			a.mu.Unlock()
			for _, m := range expired {
				m.conn.Close()
			}
			if a.cfg.AlwaysKeepDownconn {
				continue
			}
			grace := time.Duration(a.cfg.NoPoolGraceSec) * time.Second
			for _, s := range slots {
				s.mu.Lock()
				lost := s.up == nil && !s.lostAt.IsZero() && now.Sub(s.lostAt) > grace
				s.mu.Unlock()
				if lost {
					s.closeMiners(a.log)
				}
			}
		}
	}
}

// OnBoot implements gnet.EventHandler.
func (a *Agent) OnBoot(eng gnet.Engine) gnet.Action {
	a.eng = eng
	close(a.ready)
	return gnet.None
}

// OnOpen implements gnet.EventHandler.
func (a *Agent) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	m := &Miner{a: a, conn: c, diffExp: noDiff, nap: a.napFor(c.EventLoop())}
	m.framer.Max = stratum.DefaultMaxLine
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		m.ip, _ = netip.AddrFromSlice(ta.IP)
		m.ip = m.ip.Unmap()
	}
	m.deadline.Store(a.now.Load() + int64(a.cfg.AuthorizeTimeout))
	a.mu.Lock()
	full := len(a.miners) >= a.cfg.MaxMiners
	if !full {
		a.miners[m] = struct{}{}
	}
	a.mu.Unlock()
	if full {
		return nil, gnet.Close
	}
	c.SetContext(m)
	a.stats.Miners.Add(1)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (a *Agent) OnClose(c gnet.Conn, _ error) gnet.Action {
	m, _ := c.Context().(*Miner)
	if m == nil {
		return gnet.None
	}
	c.SetContext(nil)
	if m.slot != nil {
		m.slot.leave(m)
	}
	a.mu.Lock()
	delete(a.miners, m)
	if a.cfg.MultiUserMode {
		if a.sids[m.sid] == m {
			delete(a.sids, m.sid)
		}
		if s := m.slot; s != nil && a.accounts[s.user] == s {
			s.mu.Lock()
			empty := len(s.miners) == 0
			s.mu.Unlock()
			if empty { // BtcAgent closes an account's pool connections with its last miner
				delete(a.accounts, s.user)
				s.stop()
			}
		}
	}
	a.mu.Unlock()
	a.stats.Miners.Add(-1)
	return gnet.None
}

// OnTraffic implements gnet.EventHandler. The peeked bytes are valid only
// during the call; the miner parses them in place.
func (a *Agent) OnTraffic(c gnet.Conn) gnet.Action {
	m, _ := c.Context().(*Miner)
	if m == nil {
		return gnet.Close
	}
	buf, _ := c.Peek(-1)
	sc := a.scratch.Get().(*scratch)
	sc.out = sc.out[:0]
	n, closeNow := m.feed(buf, sc)
	if n > 0 {
		_, _ = c.Discard(n)
		a.stats.DownBytesIn.Add(int64(n))
	}
	if len(sc.out) > 0 {
		_, _ = c.Write(sc.out)
		a.stats.DownBytesOut.Add(int64(len(sc.out)))
	}
	if cap(sc.out) <= 64<<10 {
		a.scratch.Put(sc)
	}
	if closeNow || c.OutboundBuffered() > a.cfg.MaxOutbound {
		return gnet.Close
	}
	m.nap.after(c.EventLoop())
	return gnet.None
}

// joinAccount puts m (subscribed, multi_user_mode) in account's slot,
// starting one for a new account. It reports false when shutting down.
func (a *Agent) joinAccount(m *Miner, account string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx == nil || a.ctx.Err() != nil {
		return false
	}
	s := a.accounts[account]
	if s == nil {
		s = a.newSlotLocked(account)
		a.accounts[account] = s
	}
	s.mu.Lock()
	s.miners[m.sid] = m
	s.mu.Unlock()
	m.slot = s
	return true
}

// accountOf is BtcAgent's multi_user_mode sub-account of a login: the
// part before the first '.', or the whole login without one (filtered
// like any name; "" when nothing is left).
func accountOf(login string) string {
	acc, _, _ := strings.Cut(login, ".")
	return filterName(acc, maxAccountLen)
}

// workerName is the worker a miner is registered as: the part after the
// first '.' of its login (john.a001 → a001; the pool sees <pool user>.a001),
// the whole login when it has no '.', or BtcAgent's fixed/IP names.
func (a *Agent) workerName(login string, ip netip.Addr) string {
	w := login
	switch {
	case a.cfg.FixedWorkerName != "":
		w = a.cfg.FixedWorkerName
	case a.cfg.UseIPAsWorkerName && ip.Is4():
		o := ip.As4()
		w = ""
		f := a.cfg.IPWorkerNameFormat
		for i := 0; i < len(f); i++ {
			if i+2 < len(f) && f[i] == '{' && f[i+1] >= '1' && f[i+1] <= '4' && f[i+2] == '}' {
				w += strconv.Itoa(int(o[f[i+1]-'1']))
				i += 2
				continue
			}
			w += string(f[i])
		}
	default:
		for i := 0; i < len(login); i++ {
			if login[i] == '.' {
				w = login[i+1:]
				break
			}
		}
	}
	return filterName(w, maxWorkerLen)
}

// Name limits: REGISTER_WORKER frames are at most 100 bytes, so agent
// string + worker name ≤ 92.
const (
	maxAgentLen   = 30
	maxWorkerLen  = 60
	maxAccountLen = 64 // a pool user, as Validate bounds them
)

// filterName keeps the characters btcpool keeps in names and agent strings
// ([A-Za-z0-9-._:|^/]) and at most max bytes.
func filterName(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == ':' || c == '|' || c == '^' || c == '/' {
			b = append(b, c)
		}
	}
	return string(b)
}

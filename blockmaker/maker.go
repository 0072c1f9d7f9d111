package blockmaker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// Defaults. The tails and the group are btcpool's blkmaker's.
const (
	DefaultRawGbtTail     = 100
	DefaultJobTail        = 120
	DefaultGroup          = "blkmaker_btc"
	DefaultSubmitAttempts = 3
	DefaultUnknownJobWait = 10 * time.Second
	DefaultRetryDelay     = time.Second
	DefaultMaxRetryDelay  = 10 * time.Second
	DefaultAlarmInterval  = time.Minute
	DefaultDrainIdle      = 500 * time.Millisecond
	DefaultCommitLimit    = 30 * time.Second
)

// Options configures a [Maker].
type Options struct {
	// Nodes are every node a block is submitted to; at least one.
	Nodes []node.Options
	// Topics names the bus topics (btcpool's defaults when zero).
	Topics bus.Topics
	// Group is the consumer group of the solved-share consumer; its committed offset is how a
	// restart resumes without losing a share.
	Group string
	// RawGbtTail and JobTail are how many templates and jobs are read back at start and kept.
	RawGbtTail int
	JobTail    int
	// SubmitAttempts bounds the submitblock calls to a node that gives no answer once another
	// node has answered (default 3).
	SubmitAttempts int
	// RetryDelay is the first pause between attempts (submit, database, unbuildable file);
	// submit pauses double up to MaxRetryDelay.
	RetryDelay time.Duration
	// MaxRetryDelay caps the pause between submitblock calls while no node has answered
	// (default 10 s). There is no deadline: a block no node has answered is retried until one
	// answers or Run's ctx ends, and its share is not committed before (a block is worth
	// submitting until the chain moves past it, and only a node can tell).
	MaxRetryDelay time.Duration
	// AlarmInterval is how often a block no node has answered yet is logged at ERROR
	// ("BLOCK NOT YET SUBMITTED"), per node (default 1 min).
	AlarmInterval time.Duration
	// UnknownJobWait is how long a solved share waits for its job and template to arrive on
	// their topics before it is declared unbuildable (the topics are read concurrently, so a
	// share can overtake its job, and after a restart the tails are read back first).
	UnknownJobWait time.Duration
	// UnbuildableFile, when set, is a JSON-lines file to which every solved share that cannot
	// become a block (undecodable, unknown job or template, bad coinbase) is appended and
	// fsync'd before the share is committed; see [UnbuildableShare]. Empty: such shares are
	// only logged.
	UnbuildableFile string
	// DrainIdle is how long a poll of the solved-share topic must stay empty, after [Maker.Drain],
	// before Run returns (default 500 ms).
	DrainIdle time.Duration
	// CommitLimit bounds the retries of one offset commit (default 30 s). A commit that fails is
	// logged and not fatal: the share may be delivered again, which is harmless.
	CommitLimit time.Duration
	// Logger receives the block log; nil keeps the maker silent.
	Logger *slog.Logger
	// OnBlock, if set, is called after each solved share has been handled, before its commit.
	OnBlock func(Result)

	// AuxNodes are the aux chains' nodes by chain name (the AuxSolvedShare's chain_name,
	// found_nmc_blocks.chain_name). When set (and Topics.AuxSolvedShare), aux solved shares
	// are consumed with group AuxGroup, their auxpow submitted (submitauxblock, or getauxblock
	// for nodes without it) and recorded in found_nmc_blocks when the Recorder is also an
	// AuxRecorder. A share for a chain not listed goes to the rpc_addr it carries (btcpool).
	AuxNodes map[string]node.Options
	// AuxGroup is the AuxSolvedShare consumer group (default DefaultAuxGroup).
	AuxGroup string
	// AuxChainName names a share without chain_name (a btcpool sserver's; btcpool's
	// aux_chain_name, default "aux").
	AuxChainName string
	// OnAuxBlock, if set, is called after each aux solved share has been handled, before its
	// commit.
	OnAuxBlock func(AuxResult)

	// RSK turns on RSK merged mining (with Topics.RskSolvedShare): RskSolvedShares are consumed
	// with group RSKGroup, submitted with mnr_submitBitcoinBlockPartialMerkle to RSKNode (when
	// its URL is set; else to the rpc address the share carries, as btcpool) and recorded in
	// found_rsk_blocks when the Recorder is also an RSKRecorder.
	RSK     bool
	RSKNode node.Options
	// RSKGroup is the RskSolvedShare consumer group (default DefaultRSKGroup).
	RSKGroup string
	// OnRSKBlock, if set, is called after each RSK solved share has been handled, before its
	// commit.
	OnRSKBlock func(RSKResult)
}

// Validate fills defaults and reports every problem at once.
func (o *Options) Validate() error {
	if o.Topics == (bus.Topics{}) {
		o.Topics = bus.DefaultTopics()
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.RawGbtTail == 0 {
		o.RawGbtTail = DefaultRawGbtTail
	}
	if o.JobTail == 0 {
		o.JobTail = DefaultJobTail
	}
	if o.SubmitAttempts == 0 {
		o.SubmitAttempts = DefaultSubmitAttempts
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.MaxRetryDelay == 0 {
		o.MaxRetryDelay = max(DefaultMaxRetryDelay, o.RetryDelay)
	}
	if o.AlarmInterval == 0 {
		o.AlarmInterval = DefaultAlarmInterval
	}
	if o.UnknownJobWait == 0 {
		o.UnknownJobWait = DefaultUnknownJobWait
	}
	if o.DrainIdle == 0 {
		o.DrainIdle = DefaultDrainIdle
	}
	if o.CommitLimit == 0 {
		o.CommitLimit = DefaultCommitLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AuxGroup == "" {
		o.AuxGroup = DefaultAuxGroup
	}
	if o.AuxChainName == "" {
		o.AuxChainName = "aux"
	}
	if o.RSKGroup == "" {
		o.RSKGroup = DefaultRSKGroup
	}
	var errs []error
	for name := range o.AuxNodes {
		no := o.AuxNodes[name]
		if err := no.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("blockmaker: aux node %q: %w", name, err))
		}
		o.AuxNodes[name] = no
	}
	if len(o.AuxNodes) > 0 && o.Topics.AuxSolvedShare == "" {
		errs = append(errs, errors.New("blockmaker: aux nodes configured but no AuxSolvedShare topic"))
	}
	if o.RSK && o.Topics.RskSolvedShare == "" {
		errs = append(errs, errors.New("blockmaker: RSK on but no RskSolvedShare topic"))
	}
	if o.RSK && o.RSKNode.URL != "" {
		if err := o.RSKNode.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("blockmaker: RSK node: %w", err))
		}
	}
	if len(o.Nodes) == 0 {
		errs = append(errs, errors.New("blockmaker: no nodes configured"))
	}
	for i := range o.Nodes {
		if err := o.Nodes[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("blockmaker: node %d: %w", i, err))
		}
	}
	if err := o.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.RawGbtTail < 0 || o.JobTail < 0 || o.SubmitAttempts < 0 {
		errs = append(errs, errors.New("blockmaker: negative tail or attempts"))
	}
	if o.RetryDelay < 0 || o.MaxRetryDelay < 0 || o.AlarmInterval < 0 || o.UnknownJobWait < 0 || o.DrainIdle < 0 || o.CommitLimit < 0 {
		errs = append(errs, errors.New("blockmaker: negative duration"))
	}
	if o.MaxRetryDelay < o.RetryDelay {
		errs = append(errs, fmt.Errorf("blockmaker: MaxRetryDelay %v is below RetryDelay %v", o.MaxRetryDelay, o.RetryDelay))
	}
	return errors.Join(errs...)
}

// Recorder stores found blocks; *store.Store implements it. Inserting a block whose hash is
// already stored must succeed without a second row: re-processing a share after a restart is
// normal.
type Recorder interface {
	InsertFoundBlock(ctx context.Context, b store.FoundBlock) error
}

// NodeResult is what one node made of a submitted block.
type NodeResult struct {
	URL      string
	Submit   node.SubmitResult
	Err      error  // no answer after every attempt
	BestHash string // the node's best block after the submit ("" if it could not be asked)
}

// Result is the outcome of one solved share.
type Result struct {
	Share  btcpool.SolvedShare
	Block  store.FoundBlock
	Nodes  []NodeResult
	Err    error // the share could not become a block (unknown job, bad coinbase, ...)
	OnTip  bool  // at least one node reports the block as its best block
	Stored bool
}

// Maker is the block maker. Create it with [New] and run it with [Maker.Run].
type Maker struct {
	opts  Options
	bus   bus.Bus
	db    Recorder
	nodes []*node.Client

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced whenever a template or job arrives
	templates map[string]*Template
	tmplOrder []string
	jobs      map[uint64]jobInfo
	jobOrder  []uint64

	rawC, jobC, solvedC bus.Consumer
	auxC                bus.Consumer // nil without aux nodes
	auxNodes            map[string]*auxNode
	rskC                bus.Consumer // nil without RSK
	rskNode             *node.Client // nil: the share's rpc address

	drainCtx context.Context // cancelled by Drain
	drain    context.CancelFunc
	unbuild  unbuildableFile

	submitted atomic.Int64
	accepted  atomic.Int64
}

type jobInfo struct {
	gbtHash string
	height  int64
}

// New checks the options and subscribes to the topics at once, so that a solved share published
// after New returns is never missed, even before Run starts (a new consumer group begins at the
// end of the topic). db may be nil (blocks are then only logged). Run releases the consumers.
func New(opts Options, b bus.Bus, db Recorder) (*Maker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := &Maker{
		opts:      opts,
		bus:       b,
		db:        db,
		changed:   make(chan struct{}),
		templates: make(map[string]*Template),
		jobs:      make(map[uint64]jobInfo),
		unbuild:   unbuildableFile{path: opts.UnbuildableFile},
	}
	m.drainCtx, m.drain = context.WithCancel(context.Background())
	for _, no := range opts.Nodes {
		c, err := node.NewClient(no)
		if err != nil {
			return nil, err
		}
		m.nodes = append(m.nodes, c)
	}
	var err error
	if m.rawC, err = b.NewConsumer(opts.Topics.RawGbt, bus.Start{Tail: int64(opts.RawGbtTail)}); err != nil {
		return nil, fmt.Errorf("blockmaker: %w", err)
	}
	if m.jobC, err = b.NewConsumer(opts.Topics.Job, bus.Start{Tail: int64(opts.JobTail)}); err != nil {
		m.rawC.Close()
		return nil, fmt.Errorf("blockmaker: %w", err)
	}
	if m.solvedC, err = b.NewConsumer(opts.Topics.SolvedShare, bus.Start{Group: opts.Group}); err != nil {
		m.rawC.Close()
		m.jobC.Close()
		return nil, fmt.Errorf("blockmaker: %w", err)
	}
	if len(opts.AuxNodes) > 0 {
		if m.auxNodes, err = newAuxNodes(opts.AuxNodes); err == nil {
			m.auxC, err = b.NewConsumer(opts.Topics.AuxSolvedShare, bus.Start{Group: opts.AuxGroup})
		}
		if err != nil {
			m.rawC.Close()
			m.jobC.Close()
			m.solvedC.Close()
			return nil, fmt.Errorf("blockmaker: %w", err)
		}
		opts.Logger.Info("blockmaker: subscribed", "aux_solved_share_topic", opts.Topics.AuxSolvedShare, "group", opts.AuxGroup, "aux_chains", len(m.auxNodes))
	}
	if opts.RSK {
		if opts.RSKNode.URL != "" {
			m.rskNode, err = node.NewClient(opts.RSKNode)
		}
		if err == nil {
			m.rskC, err = b.NewConsumer(opts.Topics.RskSolvedShare, bus.Start{Group: opts.RSKGroup})
		}
		if err != nil {
			m.rawC.Close()
			m.jobC.Close()
			m.solvedC.Close()
			if m.auxC != nil {
				m.auxC.Close()
			}
			return nil, fmt.Errorf("blockmaker: %w", err)
		}
		opts.Logger.Info("blockmaker: subscribed", "rsk_solved_share_topic", opts.Topics.RskSolvedShare, "group", opts.RSKGroup, "rsk_node", opts.RSKNode.URL)
	}
	opts.Logger.Info("blockmaker: subscribed", "solved_share_topic", opts.Topics.SolvedShare, "group", opts.Group, "nodes", len(m.nodes))
	return m, nil
}

// Submitted is the number of solved shares handled; Accepted those that some node accepted.
func (m *Maker) Submitted() int64 { return m.submitted.Load() }

// Accepted is the number of blocks at least one node accepted (or already had).
func (m *Maker) Accepted() int64 { return m.accepted.Load() }

// Drain asks Run to finish what was published and return: once every solved share polled so
// far is submitted, recorded and committed and a poll of the solved-share topic has stayed empty
// for Options.DrainIdle, Run returns nil. Run's ctx still bounds the wait (a block no node has
// answered keeps being retried until then, and is then not committed). Drain may be called
// from any goroutine, before or during Run, and more than once.
//
// This is the blkmaker half of an ordered shutdown: stop the sserver (so nothing new is
// published), call Drain, and wait for Run to return, with a deadline on Run's ctx.
func (m *Maker) Drain() { m.drain() }

// Run consumes templates, jobs and solved shares until ctx ends (it then returns nil) or,
// after [Maker.Drain], until the solved shares on the topic are handled. Transient bus errors
// are ridden out (one log line per incident); only permanent ones (bus.IsPermanent) end Run
// with an error. It may be called once.
func (m *Maker) Run(ctx context.Context) error {
	rawC, jobC, solvedC := m.rawC, m.jobC, m.solvedC
	defer rawC.Close()
	defer jobC.Close()
	defer solvedC.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 5)
	n := 3
	go func() { errc <- m.consume(ctx, rawC, m.opts.Topics.RawGbt, m.addRawGbt) }()
	go func() { errc <- m.consume(ctx, jobC, m.opts.Topics.Job, m.addJob) }()
	go func() { errc <- m.consumeSolved(ctx, solvedC) }()
	if m.auxC != nil {
		defer m.auxC.Close()
		n++
		go func() { errc <- m.consumeAux(ctx, m.auxC) }()
	}
	if m.rskC != nil {
		defer m.rskC.Close()
		n++
		go func() { errc <- m.consumeRSK(ctx, m.rskC) }()
	}
	// The solved-share loops (parent, and aux) return nil once drained; Run returns when every
	// one of them has, or at the first error.
	drainers := n - 2
	var err error
	for i, drained, stopped := 0, 0, false; i < n; i++ {
		e := <-errc
		if stopped {
			continue
		}
		if e == nil {
			if drained++; drained < drainers {
				continue
			}
		}
		err, stopped = e, true
		cancel()
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, bus.ErrClosed)) {
		return nil
	}
	return err
}

func (m *Maker) consume(ctx context.Context, c bus.Consumer, topic string, add func([]byte)) error {
	inc := &bus.Incident{Log: m.opts.Logger, What: "blockmaker: polling " + topic}
	for {
		msgs, err := bus.Poll(ctx, c, inc)
		if err != nil {
			return err
		}
		for _, msg := range msgs {
			add(msg.Value)
		}
	}
}

func (m *Maker) addRawGbt(b []byte) {
	var raw btcpool.RawGbt
	if err := btcpool.DecodeRawGbt(b, &raw); err != nil {
		m.opts.Logger.Warn("blockmaker: dropped a bad RawGbt", "err", err)
		return
	}
	text, err := base64.StdEncoding.DecodeString(raw.BlockTemplateBase64)
	if err != nil {
		m.opts.Logger.Warn("blockmaker: dropped a RawGbt with bad base64", "gbthash", raw.GbtHash, "err", err)
		return
	}
	// Jobs name their template by the dSHA of its text, as jobmaker computes it (lower-case
	// display hex); key by that, not by the message's own gbthash, which may be spelled
	// differently (upper case) or be wrong, and would then leave every block of the template
	// unbuildable.
	gbtHash := sha.DisplayHex(sha.DoubleSHA256(text))
	if !strings.EqualFold(gbtHash, raw.GbtHash) {
		m.opts.Logger.Warn("blockmaker: RawGbt gbthash is not the hash of its template; using the hash", "gbthash", raw.GbtHash, "hash", gbtHash)
	}
	t, err := ParseTemplate(gbtHash, text)
	if err != nil {
		m.opts.Logger.Warn("blockmaker: dropped a bad template", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.templates[t.GbtHash]; ok {
		return
	}
	m.templates[t.GbtHash] = t
	m.tmplOrder = append(m.tmplOrder, t.GbtHash)
	for len(m.tmplOrder) > m.opts.RawGbtTail {
		delete(m.templates, m.tmplOrder[0])
		m.tmplOrder = m.tmplOrder[1:]
	}
	m.notifyLocked()
}

func (m *Maker) addJob(b []byte) {
	var j btcpool.StratumJob
	if err := btcpool.DecodeStratumJob(b, &j); err != nil {
		m.opts.Logger.Warn("blockmaker: dropped a bad job", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[j.JobID]; ok {
		return
	}
	m.jobs[j.JobID] = jobInfo{gbtHash: strings.ToLower(j.GbtHash), height: int64(j.Height)}
	m.jobOrder = append(m.jobOrder, j.JobID)
	for len(m.jobOrder) > m.opts.JobTail {
		delete(m.jobs, m.jobOrder[0])
		m.jobOrder = m.jobOrder[1:]
	}
	m.notifyLocked()
}

func (m *Maker) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// lookup returns the template of a job, waiting up to UnknownJobWait for it to arrive.
func (m *Maker) lookup(ctx context.Context, jobID uint64) (*Template, jobInfo, error) {
	deadline := time.NewTimer(m.opts.UnknownJobWait)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		job, okJob := m.jobs[jobID]
		t := m.templates[job.gbtHash]
		changed := m.changed
		m.mu.Unlock()
		if okJob && t != nil {
			return t, job, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			if !okJob {
				return nil, job, fmt.Errorf("blockmaker: job %d is unknown (not among the last %d jobs)", jobID, m.opts.JobTail)
			}
			return nil, job, fmt.Errorf("blockmaker: template %s of job %d is unknown (not among the last %d templates)", job.gbtHash, jobID, m.opts.RawGbtTail)
		case <-ctx.Done():
			return nil, job, ctx.Err()
		}
	}
}

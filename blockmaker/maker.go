package blockmaker

import (
	"context"
	"encoding/base64"
	"encoding/hex"
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

// Defaults, as btcpool's blkmaker.
const (
	DefaultRawGbtTail     = 100
	DefaultJobTail        = 120
	DefaultGroup          = "blkmaker_btc"
	DefaultSubmitAttempts = 3
	DefaultUnknownJobWait = 10 * time.Second
	DefaultRetryDelay     = time.Second
	DefaultSubmitWindow   = 10 * time.Minute
	maxSubmitRetryDelay   = 10 * time.Second
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
	// SubmitAttempts bounds the submitblock calls per node when a call gets no answer and
	// another node has answered.
	SubmitAttempts int
	// SubmitWindow is how long a block keeps being submitted while no node at all has
	// answered (every node restarting or unreachable); the delay between calls doubles from
	// RetryDelay up to 10 s. A block stays worth submitting until the chain moves on, about
	// 10 minutes on average (default 10 min).
	SubmitWindow time.Duration
	// RetryDelay is the pause between attempts (submit and database).
	RetryDelay time.Duration
	// UnknownJobWait is how long a solved share waits for its job and template to arrive on
	// their topics before it is declared unrecoverable (the topics are read concurrently, so a
	// share can overtake its job).
	UnknownJobWait time.Duration
	// Logger receives the block log; nil keeps the maker silent.
	Logger *slog.Logger
	// OnBlock, if set, is called after each solved share has been handled.
	OnBlock func(Result)
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
	if o.UnknownJobWait == 0 {
		o.UnknownJobWait = DefaultUnknownJobWait
	}
	if o.SubmitWindow == 0 {
		o.SubmitWindow = DefaultSubmitWindow
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
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
	if o.RawGbtTail < 0 || o.JobTail < 0 || o.SubmitAttempts < 0 || o.RetryDelay < 0 || o.UnknownJobWait < 0 || o.SubmitWindow < 0 {
		errs = append(errs, errors.New("blockmaker: negative tail, attempts or duration"))
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
	}
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
	opts.Logger.Info("blockmaker: subscribed", "solved_share_topic", opts.Topics.SolvedShare, "group", opts.Group, "nodes", len(m.nodes))
	return m, nil
}

// Submitted is the number of solved shares handled; Accepted those that some node accepted.
func (m *Maker) Submitted() int64 { return m.submitted.Load() }

// Accepted is the number of blocks at least one node accepted (or already had).
func (m *Maker) Accepted() int64 { return m.accepted.Load() }

// Run consumes templates, jobs and solved shares until ctx ends; it may be called once.
func (m *Maker) Run(ctx context.Context) error {
	rawC, jobC, solvedC := m.rawC, m.jobC, m.solvedC
	defer rawC.Close()
	defer jobC.Close()
	defer solvedC.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- m.consume(ctx, rawC, m.addRawGbt) }()
	go func() { errc <- m.consume(ctx, jobC, m.addJob) }()
	go func() { errc <- m.consumeSolved(ctx, solvedC) }()
	err := <-errc
	cancel()
	<-errc
	<-errc
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, bus.ErrClosed)) {
		return nil
	}
	return err
}

func (m *Maker) consume(ctx context.Context, c bus.Consumer, add func([]byte)) error {
	for {
		msgs, err := c.Poll(ctx)
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

// solvedBacklog bounds the solved shares already submitted but not yet recorded and committed
// (while the database is unreachable).
const solvedBacklog = 1024

// handled is a solved share whose block has been submitted, waiting to be recorded and committed.
type handled struct {
	res    Result
	record bool // a block was built: it goes into found_blocks
	msg    bus.Message
}

// consumeSolved submits every solved share as it arrives and hands it to a recorder goroutine,
// which inserts the found_blocks row and then commits the share's offset, in order. A database
// outage thus delays only the bookkeeping, never the submission of a later block (btcpool also
// inserts in a thread of its own); a share is committed only once it is recorded.
func (m *Maker) consumeSolved(ctx context.Context, c bus.Consumer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan handled, solvedBacklog)
	var recErr error
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		recErr = m.recordLoop(ctx, c, queue)
		cancel()
	}()
	err := m.submitLoop(ctx, c, queue)
	cancel()
	close(queue)
	<-recDone
	if recErr != nil && !errors.Is(recErr, context.Canceled) {
		return recErr
	}
	return err
}

func (m *Maker) submitLoop(ctx context.Context, c bus.Consumer, queue chan<- handled) error {
	for {
		msgs, err := c.Poll(ctx)
		if err != nil {
			return err
		}
		for _, msg := range msgs {
			h, err := m.handle(ctx, msg.Value)
			if err != nil {
				return err // not committed: a restart handles this share again
			}
			msg.Key, msg.Value = nil, nil // valid only until the next Poll; Commit needs the offset
			h.msg = msg
			select {
			case queue <- h:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func (m *Maker) recordLoop(ctx context.Context, c bus.Consumer, queue <-chan handled) error {
	for h := range queue {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if h.record && m.db != nil {
			if err := m.record(ctx, h.res.Block); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			h.res.Stored = true
		}
		if m.opts.OnBlock != nil {
			m.opts.OnBlock(h.res)
		}
		if err := c.Commit(ctx, h.msg); err != nil {
			return fmt.Errorf("blockmaker: commit solved share: %w", err)
		}
	}
	return nil
}

// handle turns one solved share into a block on every node; the found_blocks row is left to
// recordLoop. It returns an error only when the share must be handled again (ctx ended); a share
// that cannot become a block is reported in the Result and logged with what recovery needs.
func (m *Maker) handle(ctx context.Context, value []byte) (handled, error) {
	var res Result
	if err := btcpool.DecodeSolvedShare(value, &res.Share); err != nil {
		res.Err = err
		m.opts.Logger.Error("blockmaker: undecodable solved share", "err", err, "value_hex", hex.EncodeToString(value))
		return handled{res: res}, nil
	}
	s := &res.Share
	m.submitted.Add(1)
	hash := sha.DoubleSHA256(s.Header[:])
	log := m.opts.Logger.With("job_id", s.JobID, "height", s.Height, "hash", sha.DisplayHex(hash), "worker", s.WorkerFullName)

	t, job, err := m.lookup(ctx, s.JobID)
	if err != nil {
		if ctx.Err() != nil {
			return handled{}, ctx.Err()
		}
		res.Err = err
		log.Error("blockmaker: SOLVED SHARE CANNOT BE REBUILT: recover it by hand from the header, the coinbase and the template of this job",
			"err", err, "header_hex", hex.EncodeToString(s.Header[:]), "coinbase_hex", hex.EncodeToString(s.Coinbase),
			"user_id", s.UserID, "worker_id", s.WorkerID, "gbthash", job.gbtHash)
		return handled{res: res}, nil
	}
	blk, err := Assemble(s.Header, s.Coinbase, t)
	if err != nil {
		res.Err = err
		log.Error("blockmaker: SOLVED SHARE CANNOT BE ASSEMBLED", "err", err, "header_hex", hex.EncodeToString(s.Header[:]),
			"coinbase_hex", hex.EncodeToString(s.Coinbase), "gbthash", t.GbtHash)
		return handled{res: res}, nil
	}
	res.Nodes = m.submitAll(ctx, blk, log)
	if ctx.Err() != nil {
		return handled{}, ctx.Err() // shutting down mid-submit: not committed, handled again after a restart
	}
	for _, n := range res.Nodes {
		if n.Err == nil && n.Submit.Status != node.SubmitRejected {
			res.OnTip = res.OnTip || n.BestHash == sha.DisplayHex(blk.Hash)
		}
	}
	accepted, answered := false, false
	for _, n := range res.Nodes {
		answered = answered || n.Err == nil
		if n.Err == nil && (n.Submit.Status == node.SubmitAccepted || n.Submit.Status == node.SubmitDuplicate || n.Submit.Status == node.SubmitInconclusive) {
			accepted = true
		}
	}
	if !answered {
		log.Error("blockmaker: BLOCK NOT SUBMITTED: no node answered within the submit window; submit it by hand",
			"window", m.opts.SubmitWindow, "header_hex", hex.EncodeToString(s.Header[:]),
			"coinbase_hex", hex.EncodeToString(s.Coinbase), "gbthash", t.GbtHash)
	}
	if accepted {
		m.accepted.Add(1)
	}

	res.Block = store.FoundBlock{
		PUID:           s.UserID,
		WorkerID:       s.WorkerID,
		WorkerFullName: s.WorkerFullName,
		JobID:          s.JobID,
		Height:         int32(job.height),
		Hash:           sha.DisplayHex(blk.Hash),
		Rewards:        blk.Rewards,
		Size:           int32(len(blk.Bytes)),
		PrevHash:       prevHashDisplay(&s.Header),
		Bits:           leUint32(s.Header[72:76]),
		Version:        int32(leUint32(s.Header[0:4])),
		CreatedAt:      time.Now().UTC().Truncate(time.Second),
	}
	log.Info("blockmaker: block submitted", "accepted", accepted, "on_tip", res.OnTip, "size", res.Block.Size, "rewards", blk.Rewards)
	return handled{res: res, record: true}, nil
}

// submitAll submits blk to every node at once and confirms each answer with the node's best block.
// A node that does not answer is tried SubmitAttempts times; while no node at all has answered,
// every node keeps being tried until SubmitWindow has passed.
func (m *Maker) submitAll(ctx context.Context, blk *Block, log *slog.Logger) []NodeResult {
	blockHex := hex.EncodeToString(blk.Bytes)
	out := make([]NodeResult, len(m.nodes))
	var answered atomic.Bool
	giveUp := time.Now().Add(m.opts.SubmitWindow)
	var wg sync.WaitGroup
	for i, c := range m.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := NodeResult{URL: c.URL()}
			delay := m.opts.RetryDelay
			for attempt := 1; ; attempt++ {
				r.Submit, r.Err = c.SubmitBlock(ctx, blockHex)
				if r.Err == nil {
					answered.Store(true)
					break
				}
				log.Warn("blockmaker: submitblock got no answer", "node", r.URL, "attempt", attempt, "err", r.Err)
				if attempt >= m.opts.SubmitAttempts && (answered.Load() || !time.Now().Add(delay).Before(giveUp)) {
					break
				}
				if !sleep(ctx, delay) {
					break
				}
				if attempt >= m.opts.SubmitAttempts {
					delay = min(2*delay, max(maxSubmitRetryDelay, m.opts.RetryDelay))
				}
			}
			if r.Err == nil {
				if best, err := c.GetBestBlockHash(ctx); err == nil {
					r.BestHash = best
				}
				log.Info("blockmaker: node answered", "node", r.URL, "status", r.Submit.Status.String(), "reason", r.Submit.Reason, "best", r.BestHash)
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// store inserts the found block, retrying until it succeeds or ctx ends.
func (m *Maker) record(ctx context.Context, b store.FoundBlock) error {
	for attempt := 1; ; attempt++ {
		err := m.db.InsertFoundBlock(ctx, b)
		if err == nil {
			return nil
		}
		m.opts.Logger.Error("blockmaker: cannot record found block; retrying", "hash", b.Hash, "attempt", attempt, "err", err)
		if !sleep(ctx, m.opts.RetryDelay) {
			return fmt.Errorf("blockmaker: record block %s: %w", b.Hash, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func prevHashDisplay(h *[80]byte) string {
	var p [32]byte
	copy(p[:], h[4:36])
	return sha.DisplayHex(p)
}

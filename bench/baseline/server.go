package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/sha"
)

// Options configure a Server. Zero fields take the defaults New documents.
type Options struct {
	// Difficulty is every miner's share difficulty (default 1; fractional
	// values work for test networks). There is no vardiff.
	Difficulty float64
	// VersionMask is the server's BIP310 version-rolling mask
	// (default 0x1fffe000; set NoVersionRolling to allow none).
	VersionMask      uint32
	NoVersionRolling bool
	// AuthorizeTimeout is the read timeout until authorize (default 15 s),
	// ReadTimeout the one after it (default 600 s), WriteTimeout bounds
	// each write (default 120 s): btcpool's values.
	AuthorizeTimeout time.Duration
	ReadTimeout      time.Duration
	WriteTimeout     time.Duration
	// KeepJobs is how many recent jobs shares may name (default 16).
	KeepJobs int
	// Log receives connection errors at Debug; nil is silent.
	Log *slog.Logger
}

func (o *Options) fill() {
	if !(o.Difficulty > 0) {
		o.Difficulty = 1
	}
	if o.VersionMask == 0 && !o.NoVersionRolling {
		o.VersionMask = 0x1fffe000
	}
	if o.NoVersionRolling {
		o.VersionMask = 0
	}
	if o.AuthorizeTimeout <= 0 {
		o.AuthorizeTimeout = 15 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 600 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 120 * time.Second
	}
	if o.KeepJobs <= 0 {
		o.KeepJobs = 16
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// extraNonce2Size is the advertised extranonce2 size (btcpool's default;
// the job's 12-byte slot is extranonce1 (4) + extranonce2 (8)).
const extraNonce2Size = 8

// Metrics are the server's counters.
type Metrics struct {
	Sessions           atomic.Int64 // open connections
	Accepted           atomic.Int64 // accepted shares
	Solved             atomic.Int64 // accepted shares that met the network target
	Rejected           atomic.Int64 // rejected shares, any reason
	Broadcasts         atomic.Int64
	LastBroadcastNanos atomic.Int64 // time Broadcast took to write to every session
}

// Server is a goroutine-per-connection stratum server.
type Server struct {
	opts    Options
	target  sha.Target // share target of opts.Difficulty
	metrics Metrics
	nextEN1 atomic.Uint32

	mu       sync.Mutex
	ln       net.Listener
	sessions map[*session]struct{}
	jobs     map[string]*liveJob // by notify job id
	order    []string            // job ids, oldest first
	latest   *liveJob
	height   int32
	nextJob  uint64
	closing  bool

	wg sync.WaitGroup
}

// New returns a Server; Serve runs it.
func New(opts Options) *Server {
	opts.fill()
	s := &Server{opts: opts, sessions: make(map[*session]struct{}), jobs: make(map[string]*liveJob)}
	s.target = sha.DiffToTarget(opts.Difficulty)
	return s
}

// Metrics returns the server's counters.
func (s *Server) Metrics() *Metrics { return &s.metrics }

// Addr returns the listening address once Serve has started (nil before).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// connection and waits for their goroutines. It returns nil after ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.closing = true
		for sess := range s.sessions {
			sess.conn.Close()
		}
		s.mu.Unlock()
		ln.Close()
	})
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond) // e.g. out of descriptors
				continue
			}
			break
		}
		s.wg.Add(1)
		go s.handle(c)
	}
	ln.Close()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Broadcast publishes a job: it becomes the job sent after authorize, and
// it is written to every authorized session (preceded by set_difficulty
// when that session has not been told the difficulty yet). A job on a new
// height is sent with clean_jobs=true and drops the older jobs, so shares on
// them are answered 21 "Job not found (=stale)".
func (s *Server) Broadcast(j *Job) {
	start := time.Now()
	s.mu.Lock()
	clean := j.Height > s.height || s.latest == nil
	if j.Height > s.height {
		s.height = j.Height
	}
	id := strconv.FormatUint(s.nextJob, 10)
	s.nextJob++
	lj := newLiveJob(j, id)
	if clean {
		clear(s.jobs)
		s.order = s.order[:0]
	}
	s.jobs[id] = lj
	s.order = append(s.order, id)
	if len(s.order) > s.opts.KeepJobs {
		delete(s.jobs, s.order[0])
		s.order = append(s.order[:0], s.order[1:]...)
	}
	s.latest = lj
	targets := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		targets = append(targets, sess)
	}
	s.mu.Unlock()

	line, _ := json.Marshal(notification{Method: "mining.notify", Params: lj.notifyParams(clean)})
	line = append(line, '\n')
	// Write to the sessions from one goroutine per CPU; each write takes
	// that session's write lock.
	workers := min(runtime.GOMAXPROCS(0), max(1, len(targets)))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(part []*session) {
			defer wg.Done()
			for _, sess := range part {
				sess.sendJob(line)
			}
		}(targets[w*len(targets)/workers : (w+1)*len(targets)/workers])
	}
	wg.Wait()
	s.metrics.Broadcasts.Add(1)
	s.metrics.LastBroadcastNanos.Store(time.Since(start).Nanoseconds())
}

// job returns the live job with the given notify id.
func (s *Server) job(id string) *liveJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id]
}

func (s *Server) latestJob() *liveJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

func (s *Server) add(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = struct{}{}
	s.metrics.Sessions.Add(1)
	return true
}

func (s *Server) remove(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.metrics.Sessions.Add(-1)
}

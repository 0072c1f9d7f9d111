package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashpool/hashpool/internal/childproc"
)

// ServerStats is an enginesrv process's GET /stats answer (enginesrv
// encodes this very type).
type ServerStats struct {
	PID             int     `json:"pid"`
	Impl            string  `json:"impl"`
	ServerID        int     `json:"server_id"`
	Height          int32   `json:"height"`
	Sessions        int64   `json:"sessions"`   // open connections
	Authorized      int64   `json:"authorized"` // cumulative (engine)
	Accepted        int64   `json:"accepted"`
	Rejected        int64   `json:"rejected"`
	Solved          int64   `json:"solved"`
	Broadcasts      int64   `json:"broadcasts"`
	LastBroadcastUs int64   `json:"last_broadcast_us"`
	RecordsConsumed int64   `json:"records_consumed"` // share records drained from the bus (engine)
	SolvedConsumed  int64   `json:"solved_consumed"`
	EventsConsumed  int64   `json:"events_consumed"`
	RefusedConns    int64   `json:"refused_conns"`
	SlowClosed      int64   `json:"slow_closed"`
	TimedOut        int64   `json:"timed_out"`
	RSSKB           int64   `json:"rss_kb"`
	CPUSeconds      float64 `json:"cpu_seconds"`
	HeapInuse       uint64  `json:"heap_inuse"`
	StackInuse      uint64  `json:"stack_inuse"`
	Goroutines      int     `json:"goroutines"`
	GC              bool    `json:"gc"` // collected before reading RSS
	Error           string  `json:"error,omitempty"`
}

// JobEvent is one enginesrv job publication: its POST /job answer and its
// stdout line (Event "job"; POST /job, SIGUSR1 or the interval).
type JobEvent struct {
	Event       string `json:"event,omitempty"`
	Height      int32  `json:"height"`
	Reason      string `json:"reason"`
	BroadcastUs int64  `json:"broadcast_us"` // the server's own measure: start → last session written
	WaitedUs    int64  `json:"waited_us"`    // publish call → return here
	Sessions    int64  `json:"sessions"`
	RSSKB       int64  `json:"rss_kb"`
	Error       string `json:"error,omitempty"`
}

// serverProc is a running enginesrv.
type serverProc struct {
	label   string
	args    []string
	proc    *childproc.Process
	pid     int
	control string // http://127.0.0.1:port
	client  *http.Client
	stderr  *stderrBuffer
}

// stderrBuffer keeps the head of a child's stderr (the first error is the useful one).
type stderrBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *stderrBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 64<<10 {
		return len(p), nil
	}
	return w.b.Write(p)
}

// String is what was kept, without surrounding white space.
func (w *stderrBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(w.b.String())
}

// startChild starts bin with args, stdout to stdout (nil: discarded) and stderr to a buffer
// it returns, and stops it (SIGTERM, then SIGKILL after 20 s) when ctx ends.
func startChild(ctx context.Context, stdout io.Writer, bin string, args ...string) (*childproc.Process, *stderrBuffer, error) {
	stderr := new(stderrBuffer)
	p, err := childproc.Start(childproc.Options{Path: bin, Args: args, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return nil, nil, err
	}
	go func() {
		select {
		case <-ctx.Done():
			p.Stop(syscall.SIGTERM, 20*time.Second)
		case <-p.Exited():
		}
	}()
	return p, stderr, nil
}

// startServer starts bin with args and waits (at most 30 s) for its ready
// line. The process is stopped when ctx ends.
func startServer(ctx context.Context, label, bin string, args ...string) (*serverProc, error) {
	p := &serverProc{label: label, args: args, client: &http.Client{Timeout: 60 * time.Second}}
	out, outW := io.Pipe()
	var err error
	p.proc, p.stderr, err = startChild(ctx, outW, bin, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: start: %w", label, err)
	}
	go func() {
		<-p.proc.Exited() // os/exec has copied all of stdout by then
		outW.Close()
	}()
	ready := make(chan map[string]any, 1)
	go func() {
		// stdout: gnet's start banner, then JSON lines; read them all so
		// the process never blocks on a full pipe.
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4096), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			if sent || !bytes.HasPrefix(line, []byte("{")) {
				continue
			}
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["event"] == "ready" {
				ready <- m
				sent = true
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case m := <-ready:
		c, _ := m["control"].(string)
		pid, _ := m["pid"].(float64)
		if !strings.HasPrefix(c, "http://127.") || pid <= 0 {
			p.stop()
			return nil, fmt.Errorf("%s: bad ready line %v", label, m)
		}
		p.control, p.pid = c, int(pid)
		return p, nil
	case <-p.proc.Exited():
		return nil, fmt.Errorf("%s exited at start: %s", label, p.stderrText())
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s: no ready line within 30 s", label)
	}
}

func (p *serverProc) stderrText() string { return p.stderr.String() }

// stop sends SIGTERM and waits for the exit (the engine closes sessions
// over its grace period); after 20 s the process is killed.
func (p *serverProc) stop() { p.proc.Stop(syscall.SIGTERM, 20*time.Second) }

// stats fetches GET /stats (gc: collect first, so RSS is live memory).
func (p *serverProc) stats(ctx context.Context, gc bool) (ServerStats, error) {
	var st ServerStats
	u := p.control + "/stats"
	if gc {
		u += "?gc=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return st, err
	}
	err = p.do(req, &st)
	return st, err
}

// publish asks for a new-block job and returns once every session has it.
func (p *serverProc) publish(ctx context.Context) (JobEvent, error) {
	var ev JobEvent
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.control+"/job", nil)
	if err != nil {
		return ev, err
	}
	if err := p.do(req, &ev); err != nil {
		return ev, err
	}
	if ev.Error != "" {
		return ev, errors.New(ev.Error)
	}
	return ev, nil
}

func (p *serverProc) do(req *http.Request, v any) error {
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", p.label, err)
	}
	defer resp.Body.Close()
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// fdCount is the number of open descriptors of pid (-1 if unreadable).
func fdCount(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

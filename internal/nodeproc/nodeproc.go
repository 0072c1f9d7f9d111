package nodeproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/childproc"
	"github.com/hashpool/hashpool/node"
)

// Spec says how to run one kind of node.
type Spec struct {
	// Name is the program's name ("btcd"): the data dir's prefix, the log DataDir/<Name>.out
	// and error messages.
	Name string
	// Binary is the program to run.
	Binary string
	// Dir is where the data dir is made.
	Dir string
	// ExtraPorts is how many free ports besides the RPC port Args needs (P2P, ZMQ, ...).
	ExtraPorts int
	// Args returns the node's command line for one start.
	Args func(l Layout) []string
	// StartTimeout bounds waiting for RPC to answer.
	StartTimeout time.Duration
	// CallTimeout bounds one getblockcount while waiting; Poll is the pause between them.
	CallTimeout, Poll time.Duration
	// StopSignal asks the node to shut down; StopGrace is how long it has before SIGKILL.
	StopSignal syscall.Signal
	StopGrace  time.Duration
}

// Layout is what one start of a node was given.
type Layout struct {
	// RPCPort is the port RPC must listen on (127.0.0.1).
	RPCPort int
	// Ports are the Spec.ExtraPorts further free ports.
	Ports []int
	// User and Pass are the RPC credentials the node must require.
	User, Pass string
	// DataDir is the node's fresh data dir (the log is in it too).
	DataDir string
}

// Node is a running node.
type Node struct {
	// RPCURL is the node's JSON-RPC endpoint, "http://127.0.0.1:<port>".
	RPCURL string
	// RPCUser and RPCPass are the node's basic-auth credentials.
	RPCUser, RPCPass string
	// DataDir holds the chain and the node's log (DataDir/<name>.out has its stdout and
	// stderr); Stop removes it.
	DataDir string
	// Pid is the node's process id.
	Pid int
	// Ports are the Spec.ExtraPorts ports the node was given (Layout.Ports).
	Ports []int

	spec     Spec
	proc     *childproc.Process
	client   *node.Client
	stopOnce sync.Once
}

// Start is a harness's Start around its Launch: it runs launch (bounded by timeout when it is
// positive), fails t with the error, prefixed by harness, when the node does not come up, and
// stops the node when t ends.
func Start[N interface{ Stop() }](t testing.TB, harness string, timeout time.Duration, launch func(context.Context) (N, error)) N {
	t.Helper()
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	n, err := launch(ctx)
	if err != nil {
		t.Fatalf("%s: %v", harness, err)
	}
	t.Cleanup(n.Stop)
	return n
}

// Launch starts the node and waits until RPC answers, trying again (up to 3 starts) when one
// fails, e.g. because a picked port was taken. The caller must call [Node.Stop]. An error for
// a node that did not come up carries the end of its log.
func Launch(ctx context.Context, s Spec) (*Node, error) {
	if s.Name == "" || s.Binary == "" || s.Args == nil {
		return nil, errors.New("nodeproc: Spec needs Name, Binary and Args")
	}
	n, err := childproc.Retry(ctx, 3, func() (*Node, error) { return launch(ctx, s) })
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	return n, nil
}

func launch(ctx context.Context, s Spec) (*Node, error) {
	ports := make([]int, 1+s.ExtraPorts)
	for i := range ports {
		p, err := childproc.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	dir, err := os.MkdirTemp(s.Dir, s.Name+"-")
	if err != nil {
		return nil, err
	}
	l := Layout{
		RPCPort: ports[0],
		Ports:   ports[1:],
		User:    "hashpool",
		Pass:    "regtest-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		DataDir: dir,
	}
	n := &Node{RPCURL: "http://127.0.0.1:" + strconv.Itoa(l.RPCPort), RPCUser: l.User, RPCPass: l.Pass, DataDir: dir, Ports: l.Ports, spec: s}
	// The kernel kills the node if this process dies without stopping it (a test that did
	// not run its cleanups).
	n.proc, err = childproc.Start(childproc.Options{Path: s.Binary, Args: s.Args(l), Log: filepath.Join(dir, s.Name+".out")})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	n.Pid = n.proc.Pid
	n.client, err = node.NewClient(n.ClientOptions())
	if err != nil {
		n.Stop()
		return nil, err
	}
	err = n.proc.Await(ctx, s.StartTimeout, s.Poll, s.Name+" RPC", func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, s.CallTimeout)
		defer cancel()
		_, err := n.client.GetBlockCount(cctx)
		return err
	})
	if err != nil {
		n.halt()
		err = fmt.Errorf("%w\n--- %s output ---\n%s", err, s.Name, n.LogTail())
		n.Stop()
		return nil, err
	}
	return n, nil
}

// Client returns a client for the node's RPC (owned by the node; do not Close it).
func (n *Node) Client() *node.Client { return n.client }

// ClientOptions returns options that reach the node, for code under test that builds its own
// client (calls time out after 30 s).
func (n *Node) ClientOptions() node.Options {
	return node.Options{URL: n.RPCURL, User: n.RPCUser, Password: n.RPCPass, Timeout: 30 * time.Second}
}

// Stop stops the node (Spec.StopSignal, then SIGKILL after Spec.StopGrace), waits for the
// process to exit and removes DataDir. It is safe to call more than once.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.halt()
		_ = os.RemoveAll(n.DataDir)
	})
}

// halt closes the client and stops the process, leaving DataDir (and the log) in place.
func (n *Node) halt() {
	if n.client != nil {
		n.client.Close()
	}
	n.proc.Stop(n.spec.StopSignal, n.spec.StopGrace)
}

// Kill sends SIGKILL to the node and waits for it to exit, as a crash would end it, leaving
// DataDir in place; Stop still removes it.
func (n *Node) Kill() { n.proc.Kill() }

// Alive reports whether the node's process is still running.
func (n *Node) Alive() bool { return n.proc.Running() }

// LogTail returns the end of the node's output, for failure messages.
func (n *Node) LogTail() string { return n.proc.LogTail(4000) }

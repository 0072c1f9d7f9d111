package namecoindtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/node"

	"github.com/hashpool/hashpool/internal/ci"
)

// DefaultAddress is a valid regtest witness v0 address (bech32 prefix ncrt) that the node
// has no key for: blocks mined by [Node.MineBlocks] and aux blocks from createauxblock pay it.
// The node is built without a wallet, so tests pay to addresses they encode themselves.
const DefaultAddress = "ncrt1qqypqxpq9qcrsszg2pvxq6rs0zqg3yyc5t0jk87"

// Facts of Namecoin Core's regtest chain (shared/bin/README.md).
const (
	// ChainID is namecoind's aux chain id (createauxblock's "chainid").
	ChainID = 1
	// RegtestBits is the compact target of every regtest block.
	RegtestBits = 0x207fffff
)

// Options configures [Start] and [Launch]. The zero value starts a lone regtest node with
// ZMQ hashblock and one block mined.
type Options struct {
	// Binary is the namecoind to run (default: [Binary]).
	Binary string
	// Dir is where the node's data dir is made, a fresh directory that Stop removes
	// (default t.TempDir() for Start, os.TempDir() for Launch).
	Dir string
	// NoFirstBlock leaves the chain at height 0, in initial block download. Then
	// createauxblock never answers and wedges the node's RPC: only for tests of that.
	NoFirstBlock bool
	// ExtraArgs are appended to namecoind's command line.
	ExtraArgs []string
	// StartTimeout bounds waiting for RPC to answer (default 60 s: about 3 s on an idle
	// machine, much more on a loaded one).
	StartTimeout time.Duration
}

// Node is a running namecoind regtest node owned by one test (or one program).
type Node struct {
	// RPCURL is the JSON-RPC endpoint, "http://127.0.0.1:<port>".
	RPCURL string
	// RPCUser and RPCPass are the basic-auth credentials (-rpcuser, -rpcpassword).
	RPCUser, RPCPass string
	// ZMQAddr is the hashblock publisher, "tcp://127.0.0.1:<port>".
	ZMQAddr string
	// Address is the address the first block paid, for createauxblock ([DefaultAddress]).
	Address string
	// DataDir holds the chain and DataDir/namecoind.out (the node's log); Stop removes it.
	DataDir string
	// Pid is the namecoind process id.
	Pid int

	client   *node.Client
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

var binOnce struct {
	sync.Once
	path string
	err  error
}

// ErrNotAvailable is wrapped by Binary's error when no runnable namecoind was found.
var ErrNotAvailable = errors.New("namecoindtest: namecoind not available")

// Binary returns the path of a namecoind that runs on this machine, or an error wrapping
// ErrNotAvailable that says what was tried. The answer is computed once per process.
func Binary() (string, error) {
	binOnce.Do(func() { binOnce.path, binOnce.err = findBinary() })
	return binOnce.path, binOnce.err
}

func findBinary() (string, error) {
	var candidates []string
	if p := os.Getenv("NAMECOIND"); p != "" {
		candidates = append(candidates, p)
	} else {
		if wd, err := os.Getwd(); err == nil {
			for d := wd; ; d = filepath.Dir(d) {
				candidates = append(candidates, filepath.Join(d, "shared", "bin", "namecoind"))
				if filepath.Dir(d) == d {
					break
				}
			}
		}
		candidates = append(candidates, "/work/shared/bin/namecoind")
		if p, err := exec.LookPath("namecoind"); err == nil {
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, p, "-version").CombinedOutput()
		cancel()
		if err != nil {
			return "", fmt.Errorf("%w: %s -version failed (%v): %s (Namecoin Core needs libzmq5: apt-get install -y libzmq5)",
				ErrNotAvailable, p, err, bytes.TrimSpace(out))
		}
		return p, nil
	}
	if p := os.Getenv("NAMECOIND"); p != "" {
		return "", fmt.Errorf("%w: $NAMECOIND=%s does not exist", ErrNotAvailable, p)
	}
	return "", fmt.Errorf("%w: set $NAMECOIND, or put it in shared/bin/ or on PATH", ErrNotAvailable)
}

// Require returns the binary, or skips t (outside CI) or fails it (CI set) when there is none.
func Require(t testing.TB) string {
	t.Helper()
	p, err := Binary()
	if err != nil {
		ci.Need(t, "%v", err)
	}
	return p
}

// Start starts a node for t (see [Launch]) and stops it when t ends. A missing binary skips
// or fails t as [Require] says; a node that does not come up fails t with its log.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = Require(t)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n, err := Launch(ctx, opts)
	if err != nil {
		t.Fatalf("namecoindtest: %v", err)
	}
	t.Cleanup(n.Stop)
	return n
}

// Launch starts namecoind in regtest on free loopback ports (RPC, ZMQ; P2P off), waits until
// RPC answers and, unless opts.NoFirstBlock, mines one block to [DefaultAddress] so that the
// chain leaves initial block download. The caller must call [Node.Stop].
func Launch(ctx context.Context, opts Options) (*Node, error) {
	if opts.Binary == "" {
		p, err := Binary()
		if err != nil {
			return nil, err
		}
		opts.Binary = p
	}
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	var lastErr error
	// A free port found by binding port 0 can be taken before namecoind binds it: retry.
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		n, err := launch(ctx, opts)
		if err == nil {
			return n, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, fmt.Errorf("start namecoind: %w", lastErr)
}

func launch(ctx context.Context, opts Options) (*Node, error) {
	rpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	zmqPort, err := freePort()
	if err != nil {
		return nil, err
	}
	p2pPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.Dir, "namecoind-")
	if err != nil {
		return nil, err
	}
	n := &Node{
		RPCURL:  "http://127.0.0.1:" + strconv.Itoa(rpcPort),
		RPCUser: "hashpool",
		RPCPass: "regtest-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		ZMQAddr: "tcp://127.0.0.1:" + strconv.Itoa(zmqPort),
		Address: DefaultAddress,
		DataDir: dir,
		exited:  make(chan struct{}),
	}
	args := []string{
		"-regtest", "-datadir=" + dir, "-server", "-listen=0",
		"-rpcuser=" + n.RPCUser, "-rpcpassword=" + n.RPCPass,
		"-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-rpcport=" + strconv.Itoa(rpcPort),
		"-port=" + strconv.Itoa(p2pPort), "-dnsseed=0", "-fixedseeds=0",
		"-zmqpubhashblock=" + n.ZMQAddr,
	}
	args = append(args, opts.ExtraArgs...)
	logf, err := os.Create(filepath.Join(dir, "namecoind.out"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	n.cmd = exec.Command(opts.Binary, args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	n.Pid = n.cmd.Process.Pid
	go func() {
		_ = n.cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	n.client, err = node.NewClient(node.Options{URL: n.RPCURL, User: n.RPCUser, Password: n.RPCPass, Timeout: 30 * time.Second})
	if err != nil {
		n.Stop()
		return nil, err
	}
	if err := n.waitReady(ctx, opts.StartTimeout); err != nil {
		n.halt()
		err = fmt.Errorf("%w\n--- namecoind output ---\n%s", err, n.LogTail())
		n.Stop()
		return nil, err
	}
	if !opts.NoFirstBlock {
		mctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := n.client.GenerateToAddress(mctx, 1, n.Address)
		cancel()
		if err != nil {
			err = fmt.Errorf("mine the first block: %w\n--- namecoind output ---\n%s", err, n.LogTail())
			n.Stop()
			return nil, err
		}
	}
	return n, nil
}

func (n *Node) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("namecoind exited before answering RPC: %v", n.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := n.client.GetBlockCount(cctx)
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-n.exited:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
		}
	}
	return fmt.Errorf("namecoind RPC did not answer within %v: %v", timeout, lastErr)
}

// Client returns a client for the node's RPC (owned by the node; do not Close it).
func (n *Node) Client() *node.Client { return n.client }

// ClientOptions returns options that reach the node, for code under test that builds its
// own client.
func (n *Node) ClientOptions() node.Options {
	return node.Options{URL: n.RPCURL, User: n.RPCUser, Password: n.RPCPass}
}

// MineBlocks mines count blocks paying n.Address (generatetoaddress) and returns their hashes.
func (n *Node) MineBlocks(t testing.TB, count int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, err := n.client.GenerateToAddress(ctx, count, n.Address)
	if err != nil {
		t.Fatalf("namecoindtest: generatetoaddress %d: %v", count, err)
	}
	return h
}

// Stop stops the node by its pid (SIGTERM, then SIGKILL after 20 s), waits for the process
// and removes DataDir. It is safe to call more than once; Start registers it with t.Cleanup.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.halt()
		_ = os.RemoveAll(n.DataDir)
	})
}

// Kill sends SIGKILL to the node and waits for it to exit, leaving DataDir for a restart
// test to inspect; Stop still removes it.
func (n *Node) Kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = syscall.Kill(n.Pid, syscall.SIGKILL)
	<-n.exited
}

func (n *Node) halt() {
	if n.client != nil {
		n.client.Close()
	}
	select {
	case <-n.exited:
		return
	default:
	}
	_ = syscall.Kill(n.Pid, syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(n.Pid, syscall.SIGKILL)
		<-n.exited
	}
}

// LogTail returns the end of the node's output, for failure messages.
func (n *Node) LogTail() string {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "namecoind.out"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("namecoindtest: listener has no TCP address")
	}
	return a.Port, nil
}

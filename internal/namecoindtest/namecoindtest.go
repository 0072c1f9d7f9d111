package namecoindtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/ci"
	"github.com/hashpool/hashpool/internal/nodeproc"
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

// Node is a running namecoind regtest node owned by one test (or one program). Its RPCURL,
// RPCUser, RPCPass (-rpcuser, -rpcpassword), DataDir (DataDir/namecoind.out is the node's log),
// Pid, and Stop, Kill, Client, ClientOptions and LogTail are those of the embedded
// [nodeproc.Node].
type Node struct {
	*nodeproc.Node
	// ZMQAddr is the hashblock publisher, "tcp://127.0.0.1:<port>".
	ZMQAddr string
	// Address is the address the first block paid, for createauxblock ([DefaultAddress]).
	Address string
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
	return nodeproc.Start(t, "namecoindtest", 3*time.Minute, func(ctx context.Context) (*Node, error) { return Launch(ctx, opts) })
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
	np, err := nodeproc.Launch(ctx, nodeproc.Spec{
		Name:         "namecoind",
		Binary:       opts.Binary,
		Dir:          opts.Dir,
		ExtraPorts:   2, // ZMQ, P2P
		Args:         func(l nodeproc.Layout) []string { return args(opts, l) },
		StartTimeout: opts.StartTimeout,
		CallTimeout:  2 * time.Second,
		Poll:         100 * time.Millisecond,
		StopSignal:   syscall.SIGTERM,
		StopGrace:    20 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	n := &Node{Node: np, ZMQAddr: zmqAddr(np.Ports[0]), Address: DefaultAddress}
	if !opts.NoFirstBlock {
		mctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := n.Client().GenerateToAddress(mctx, 1, n.Address)
		cancel()
		if err != nil {
			err = fmt.Errorf("mine the first block: %w\n--- namecoind output ---\n%s", err, n.LogTail())
			n.Stop()
			return nil, err
		}
	}
	return n, nil
}

func zmqAddr(port int) string { return "tcp://127.0.0.1:" + strconv.Itoa(port) }

// args is namecoind's command line for one start (P2P on a free port but -listen=0).
func args(opts Options, l nodeproc.Layout) []string {
	a := []string{
		"-regtest", "-datadir=" + l.DataDir, "-server", "-listen=0",
		"-rpcuser=" + l.User, "-rpcpassword=" + l.Pass,
		"-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-rpcport=" + strconv.Itoa(l.RPCPort),
		"-port=" + strconv.Itoa(l.Ports[1]), "-dnsseed=0", "-fixedseeds=0",
		"-zmqpubhashblock=" + zmqAddr(l.Ports[0]),
	}
	return append(a, opts.ExtraArgs...)
}

// MineBlocks mines count blocks paying n.Address (generatetoaddress) and returns their hashes.
func (n *Node) MineBlocks(t testing.TB, count int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, err := n.Client().GenerateToAddress(ctx, count, n.Address)
	if err != nil {
		t.Fatalf("namecoindtest: generatetoaddress %d: %v", count, err)
	}
	return h
}

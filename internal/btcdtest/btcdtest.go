package btcdtest

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

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"

	"github.com/hashpool/hashpool/node"
)

// Options configures [Start] and [Launch]. The zero value starts a lone regtest node.
type Options struct {
	// Peers are P2P addresses ("127.0.0.1:port", e.g. another Node's P2PAddr) the node keeps
	// connections to (btcd --addpeer), for tests that need two nodes to relay blocks.
	Peers []string
	// ExtraArgs are appended to btcd's command line.
	ExtraArgs []string
	// StartTimeout bounds how long the start waits for RPC to answer (default 30 s).
	StartTimeout time.Duration
	// Binary is the btcd to run (default: [Binary] for Start, [BuildBinary] for Launch).
	Binary string
	// Dir is where the node's data dir is made, a fresh directory that Stop removes (default:
	// t.TempDir() for Start, os.TempDir() for Launch).
	Dir string
	// NoTxIndex leaves out --txindex, which is otherwise passed so that getrawtransaction finds
	// any transaction.
	NoTxIndex bool
}

// Node is a running btcd regtest node owned by one test (or one program, see [Launch]).
type Node struct {
	// RPCURL is the node's JSON-RPC endpoint, "http://127.0.0.1:<port>".
	RPCURL string
	// RPCUser and RPCPass are the node's basic-auth credentials.
	RPCUser, RPCPass string
	// P2PAddr is the node's peer-to-peer listen address.
	P2PAddr string
	// DataDir holds the chain and the node's log (DataDir/btcd.out has its stdout and stderr);
	// Stop removes it.
	DataDir string

	key      *btcec.PrivateKey
	addr     *address.AddressWitnessPubKeyHash
	pkScript []byte
	client   *node.Client
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been waited for
	stopOnce sync.Once

	mu           sync.Mutex
	nextCoinbase int64 // height of the next coinbase AddWitnessTx may spend
}

// Params is the chain the nodes run (regtest).
var Params = &chaincfg.RegressionNetParams

// Start builds btcd if needed (see [Binary]), starts it in regtest on free loopback ports with
// a temporary data dir, and waits until RPC answers. Blocks mined with `generate` pay
// [Node.MiningAddress], a P2WPKH address of a fresh key, so tests can spend them. The node is
// stopped when the test ends; a node that does not come up fails the test with its log.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = Binary(t)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	n, err := Launch(context.Background(), opts)
	if err != nil {
		t.Fatalf("btcdtest: %v", err)
	}
	t.Cleanup(n.Stop)
	return n
}

// Launch is [Start] for code without a testing.TB (the programs under bench/): it returns
// errors instead of failing a test, builds btcd with [BuildBinary] when opts.Binary is empty,
// and gives up when ctx ends. The caller must call [Node.Stop]; the kernel kills btcd if the
// process dies first. An error for a node that did not come up carries its log.
func Launch(ctx context.Context, opts Options) (*Node, error) {
	if opts.Binary == "" {
		bin, err := BuildBinary()
		if err != nil {
			return nil, fmt.Errorf("build btcd: %w", err)
		}
		opts.Binary = bin
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("new key: %w", err)
	}
	addr, err := address.NewAddressWitnessPubKeyHash(address.Hash160(key.PubKey().SerializeCompressed()), Params)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	var lastErr error
	// Free ports are found by binding port 0 and closing; another process can take one before
	// btcd binds it, so a start that fails that way is tried again.
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		n, err := launch(ctx, opts, key, addr)
		if err == nil {
			return n, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, fmt.Errorf("start btcd: %w", lastErr)
}

func launch(ctx context.Context, opts Options, key *btcec.PrivateKey, addr *address.AddressWitnessPubKeyHash) (*Node, error) {
	rpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	p2pPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.Dir, "btcd-")
	if err != nil {
		return nil, err
	}
	n := &Node{
		RPCURL:       "http://127.0.0.1:" + strconv.Itoa(rpcPort),
		RPCUser:      "hashpool",
		RPCPass:      "regtest-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		P2PAddr:      "127.0.0.1:" + strconv.Itoa(p2pPort),
		DataDir:      dir,
		key:          key,
		addr:         addr,
		exited:       make(chan struct{}),
		nextCoinbase: 1,
	}
	n.pkScript = p2wpkhScript(addr.WitnessProgram())
	args := []string{
		"--regtest", "--notls",
		"--rpcuser=" + n.RPCUser, "--rpcpass=" + n.RPCPass,
		"--rpclisten=127.0.0.1:" + strconv.Itoa(rpcPort),
		"--listen=127.0.0.1:" + strconv.Itoa(p2pPort),
		"--nodnsseed", "--configfile=/dev/null",
		"--datadir=" + filepath.Join(dir, "data"), "--logdir=" + filepath.Join(dir, "logs"),
		"--miningaddr=" + addr.EncodeAddress(),
	}
	if !opts.NoTxIndex {
		args = append(args, "--txindex")
	}
	for _, p := range opts.Peers {
		args = append(args, "--addpeer="+p)
	}
	args = append(args, opts.ExtraArgs...)
	logf, err := os.Create(filepath.Join(dir, "btcd.out"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	n.cmd = exec.Command(opts.Binary, args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	// The kernel kills btcd if this process dies without stopping it (a test without running
	// its cleanups).
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
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
		err = fmt.Errorf("%w\n--- btcd output ---\n%s", err, n.logTail())
		n.Stop()
		return nil, err
	}
	return n, nil
}

func (n *Node) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("btcd exited before answering RPC: %v", n.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := n.client.GetBlockCount(cctx)
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("btcd RPC did not answer within %v: %v", timeout, lastErr)
}

// Stop stops the node (SIGINT, then SIGKILL after 10 s), waits for the process to exit and
// removes DataDir. It is safe to call more than once; Start registers it with t.Cleanup.
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
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// Client returns a client for the node's RPC (owned by the node; do not Close it).
func (n *Node) Client() *node.Client { return n.client }

// ClientOptions returns options that reach the node, for code under test that builds its own
// client.
func (n *Node) ClientOptions() node.Options {
	return node.Options{URL: n.RPCURL, User: n.RPCUser, Password: n.RPCPass}
}

// MiningAddress returns the regtest P2WPKH address that `generate` pays (bcrt1q...).
func (n *Node) MiningAddress() string { return n.addr.EncodeAddress() }

// MiningKey returns the private key of MiningAddress.
func (n *Node) MiningKey() *btcec.PrivateKey { return n.key }

// MiningScript returns the output script of MiningAddress (0x00 0x14 <20-byte key hash>).
func (n *Node) MiningScript() []byte { return bytes.Clone(n.pkScript) }

// MineBlocks mines count blocks with btcd's `generate` (paying MiningAddress, including mempool
// transactions) and returns their hashes in display hex. It fails the test on error.
func (n *Node) MineBlocks(t testing.TB, count int) []string {
	t.Helper()
	if count <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hashes, err := n.client.Generate(ctx, count)
	if err != nil {
		t.Fatalf("btcdtest: generate %d: %v", count, err)
	}
	if len(hashes) != count {
		t.Fatalf("btcdtest: generate %d returned %d hashes", count, len(hashes))
	}
	return hashes
}

// Alive reports whether the btcd process is still running.
func (n *Node) Alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// logTail returns the end of btcd's output, for failure messages.
func (n *Node) logTail() string {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "btcd.out"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("btcdtest: listener has no TCP address")
	}
	return a.Port, nil
}

func p2wpkhScript(keyHash []byte) []byte {
	return append([]byte{0x00, 0x14}, keyHash...)
}

package btcdtest

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"

	"github.com/hashpool/hashpool/internal/nodeproc"
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

// Node is a running btcd regtest node owned by one test (or one program, see [Launch]). Its
// RPCURL, RPCUser, RPCPass and DataDir (DataDir/btcd.out has btcd's stdout and stderr), and
// Stop, Client, ClientOptions, Alive and LogTail are those of the embedded [nodeproc.Node].
type Node struct {
	*nodeproc.Node
	// P2PAddr is the node's peer-to-peer listen address.
	P2PAddr string

	key      *btcec.PrivateKey
	addr     *address.AddressWitnessPubKeyHash
	pkScript []byte
	client   *node.Client // Node.Client(), for the chain helpers

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
	return nodeproc.Start(t, "btcdtest", 0, func(ctx context.Context) (*Node, error) { return Launch(ctx, opts) })
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
	np, err := nodeproc.Launch(ctx, nodeproc.Spec{
		Name:         "btcd",
		Binary:       opts.Binary,
		Dir:          opts.Dir,
		ExtraPorts:   1, // P2P
		Args:         func(l nodeproc.Layout) []string { return args(opts, l, addr) },
		StartTimeout: opts.StartTimeout,
		CallTimeout:  time.Second,
		Poll:         50 * time.Millisecond,
		StopSignal:   syscall.SIGINT,
		StopGrace:    10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	n := &Node{Node: np, P2PAddr: "127.0.0.1:" + strconv.Itoa(np.Ports[0]), key: key, addr: addr, client: np.Client(), nextCoinbase: 1}
	n.pkScript = p2wpkhScript(addr.WitnessProgram())
	return n, nil
}

// args is btcd's command line for one start.
func args(opts Options, l nodeproc.Layout, addr *address.AddressWitnessPubKeyHash) []string {
	a := []string{
		"--regtest", "--notls",
		"--rpcuser=" + l.User, "--rpcpass=" + l.Pass,
		"--rpclisten=127.0.0.1:" + strconv.Itoa(l.RPCPort),
		"--listen=127.0.0.1:" + strconv.Itoa(l.Ports[0]),
		"--nodnsseed", "--configfile=/dev/null",
		"--datadir=" + filepath.Join(l.DataDir, "data"), "--logdir=" + filepath.Join(l.DataDir, "logs"),
		"--miningaddr=" + addr.EncodeAddress(),
	}
	if !opts.NoTxIndex {
		a = append(a, "--txindex")
	}
	for _, p := range opts.Peers {
		a = append(a, "--addpeer="+p)
	}
	return append(a, opts.ExtraArgs...)
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

func p2wpkhScript(keyHash []byte) []byte {
	return append([]byte{0x00, 0x14}, keyHash...)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"

	"github.com/hashpool/hashpool/node"
)

// btcdModule is the module the node is built from; go.mod pins its version
// (tool directive).
const btcdModule = "github.com/btcsuite/btcd"

// regtestNode is a btcd regtest process started by this program (the test
// uses internal/btcdtest instead, which takes a testing.TB).
type regtestNode struct {
	rpc     node.Options
	payout  string // P2WPKH address `generate` pays; also the jobmaker's payout
	version string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// btcdBinary returns the btcd to run: path if set, else $HASHPOOL_BTCD, else
// one built from the module pinned in go.mod into dir.
func btcdBinary(ctx context.Context, path, dir string) (string, error) {
	if path == "" {
		path = os.Getenv("HASHPOOL_BTCD")
	}
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("btcd binary: %w", err)
		}
		return path, nil
	}
	out := filepath.Join(dir, "btcd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, btcdModule)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (run from inside the hashpool module, or pass -btcd): %v\n%s", btcdModule, err, msg)
	}
	return out, nil
}

// startBtcd starts btcd in regtest on free loopback ports with a data dir
// under dir, and waits until its RPC answers.
func startBtcd(ctx context.Context, bin, dir string) (*regtestNode, error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, err
	}
	params := &chaincfg.RegressionNetParams
	addr, err := address.NewAddressWitnessPubKeyHash(address.Hash160(key.PubKey().SerializeCompressed()), params)
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A free port can be taken by another process before btcd binds it.
	for range 3 {
		n, err := startBtcdOnce(ctx, bin, dir, addr.EncodeAddress())
		if err == nil {
			return n, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startBtcdOnce(ctx context.Context, bin, dir, payout string) (*regtestNode, error) {
	rpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	p2pPort, err := freePort()
	if err != nil {
		return nil, err
	}
	nodeDir, err := os.MkdirTemp(dir, "btcd-")
	if err != nil {
		return nil, err
	}
	pass := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	n := &regtestNode{
		rpc: node.Options{URL: "http://127.0.0.1:" + strconv.Itoa(rpcPort), User: "hashpool", Password: pass,
			Timeout: 30 * time.Second},
		payout: payout,
		dir:    nodeDir,
		exited: make(chan struct{}),
	}
	if v, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		n.version = strings.TrimSpace(string(v))
	}
	logf, err := os.Create(filepath.Join(nodeDir, "btcd.out"))
	if err != nil {
		return nil, err
	}
	n.cmd = exec.Command(bin,
		"--regtest", "--notls",
		"--rpcuser="+n.rpc.User, "--rpcpass="+n.rpc.Password,
		"--rpclisten=127.0.0.1:"+strconv.Itoa(rpcPort),
		"--listen=127.0.0.1:"+strconv.Itoa(p2pPort),
		"--nodnsseed", "--configfile=/dev/null",
		"--datadir="+filepath.Join(nodeDir, "data"), "--logdir="+filepath.Join(nodeDir, "logs"),
		"--miningaddr="+payout)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	// The kernel kills btcd if this program dies without stopping it.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		_ = n.cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	if err := n.waitReady(ctx, 30*time.Second); err != nil {
		n.stop()
		return nil, fmt.Errorf("btcd: %w\n--- btcd output ---\n%s", err, n.logTail())
	}
	return n, nil
}

func (n *regtestNode) waitReady(ctx context.Context, timeout time.Duration) error {
	c, err := node.NewClient(n.rpc)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("exited before answering RPC: %v", n.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.GetBlockCount(cctx)
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("RPC did not answer within %v: %v", timeout, lastErr)
}

// stop interrupts btcd, kills it after 10 s, and removes its data dir.
func (n *regtestNode) stop() {
	select {
	case <-n.exited:
	default:
		_ = n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	_ = os.RemoveAll(n.dir)
}

func (n *regtestNode) logTail() string {
	b, err := os.ReadFile(filepath.Join(n.dir, "btcd.out"))
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
		return 0, errors.New("listener has no TCP address")
	}
	return a.Port, nil
}

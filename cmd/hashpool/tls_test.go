package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/tlsfront/tlstest"
)

// TestRunStratumTLS: `hashpool run -stratum-tls` serves stratum+ssl with a certificate chain
// made here; a miner that verifies it mines a block exactly as on the plain port, and a client
// that does not trust the CA is refused.
func TestRunStratumTLS(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	dir := t.TempDir()
	chain := tlstest.New(t, dir, "pool", "127.0.0.1")
	conf := filepath.Join(dir, "pool.toml")
	cfgText := fmt.Sprintf(`
network = "regtest"
data_dir = %q
[statshttpd]
port = 0
[slparserhttpd]
port = 0
[prometheus]
enabled = false
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(conf, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	plain, tlsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := n.ClientOptions()
	args := []string{"-c", conf, "-node", o.URL, "-node-auth", o.User + ":" + o.Password, "-payout-address", n.MiningAddress(),
		"-stratum", plain, "-stratum-tls", tlsAddr, "-stratum-tls-cert", chain.CertFile, "-stratum-tls-key", chain.KeyFile,
		"-min-difficulty", "0.0001", "-default-difficulty", "0.0001"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	startRun(t, tlsAddr, args...)

	// A client that does not trust the pool's CA gets a handshake error.
	if c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		c.Close()
		t.Fatal("a client without the CA completed the TLS handshake")
	}
	c, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: chain.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS handshake with the pool's CA: %v", err)
	}
	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := startMiner(t, c, "alice.tls")
	if code := m.submit(m.share(m.job, false)); code != 0 {
		t.Fatalf("block-solving share over TLS: code %d", code)
	}
	eventually(t, "the block on the node", func() bool {
		h, err := n.Client().GetBlockCount(ctx)
		return err == nil && h == startHeight+1
	})
	c.Close()
}

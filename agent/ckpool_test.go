package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/btcsuite/btcd/address/v2"

	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/sha"
)

// rpcBridge lets ckpool (written for bitcoind's HTTP server: it sends
// bare-LF headers and reads the JSON answer as one newline-terminated line
// on a kept-alive connection) talk to btcd: it reads each of ckpool's
// requests, gives it an "id" when it has none, posts the body to btcd's JSON-RPC with ckpool's Authorization
// header, and answers in bitcoind's form. It returns the host:port for
// ckpool's "btcd" url.
func rpcBridge(t *testing.T, n *btcdtest.Node) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					var auth string
					clen := -1
					for i := 0; i < 64; i++ { // request line and headers, LF or CRLF
						l, err := r.ReadString('\n')
						if err != nil {
							return // ckpool opens a connection per call
						}
						l = strings.TrimRight(l, "\r\n")
						if l == "" {
							break
						}
						k, v, _ := strings.Cut(l, ":")
						switch strings.ToLower(strings.TrimSpace(k)) {
						case "authorization":
							auth = strings.TrimSpace(v)
						case "content-length":
							clen, _ = strconv.Atoi(strings.TrimSpace(v))
						}
					}
					if clen < 0 || clen > 1<<20 {
						t.Logf("rpc bridge: no content length")
						return
					}
					body := make([]byte, clen)
					if _, err := io.ReadFull(r, body); err != nil {
						return
					}
					// ckpool's requests carry no "id", which btcd takes for a
					// notification and does not answer (bitcoind answers).
					var msg map[string]json.RawMessage
					if json.Unmarshal(body, &msg) == nil && msg["id"] == nil {
						msg["id"], msg["jsonrpc"] = json.RawMessage("1"), json.RawMessage(`"1.0"`)
						body, _ = json.Marshal(msg)
					}
					// btcd honours the "coinbasetxn" capability ckpool lists and
					// then leaves out coinbasevalue, which ckpool needs
					// (bitcoind ignores the capability).
					body = bytes.ReplaceAll(body, []byte(`"coinbasetxn"`), []byte(`"coinbasevalue"`))
					hr, _ := http.NewRequest(http.MethodPost, n.RPCURL, bytes.NewReader(body))
					hr.Header.Set("Authorization", auth)
					hr.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(hr)
					if err != nil {
						t.Logf("rpc bridge: %v", err)
						return
					}
					out, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
					resp.Body.Close()
					out = append(bytes.TrimRight(out, "\r\n"), '\n')
					if _, err := c.Write(append([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+
						strconv.Itoa(len(out))+"\r\n\r\n"), out...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCkpoolUpstream: the agent in front of a real third-party Stratum V1
// pool, ckpool (standalone pool mode, -A) on btcd regtest. ckpool does not
// speak the agent protocol, so "auto" falls back to plain stratum (ckpool
// ignores the capability and configure requests of a client that has not
// authorized). Two miners share one upstream session; each submits a
// share, ckpool computes exactly the hash the miner computed (so it rebuilt
// the coinbase from its extranonce1, the agent's per-miner prefix and the
// miner's extranonce2) and its "Above target" verdict reaches the miner as
// error 23.
//
// HASHPOOL_CKPOOL names the ckpool binary; without it the test is skipped.
func TestCkpoolUpstream(t *testing.T) {
	bin := os.Getenv("HASHPOOL_CKPOOL")
	if bin == "" {
		t.Skip("HASHPOOL_CKPOOL (path to a ckpool binary) is not set")
	}
	n := btcdtest.Start(t, btcdtest.Options{})
	n.MineBlocks(t, 2) // a recent tip: btcd serves templates only when current
	dir := t.TempDir()
	pkh, err := address.NewAddressPubKeyHash(bytes.Repeat([]byte{0x42}, 20), btcdtest.Params)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	poolAddr := ln.Addr().String()
	ln.Close()
	conf := map[string]any{
		"btcd":       []map[string]any{{"url": rpcBridge(t, n), "auth": n.RPCUser, "pass": n.RPCPass, "notify": false}},
		"btcaddress": pkh.EncodeAddress(), "btcsig": "/hashpool test/", "blockpoll": 100,
		"nonce1length": 4, "nonce2length": 8, "update_interval": 30,
		"serverurl": []string{poolAddr}, "mindiff": 1, "startdiff": 1, "maxdiff": 0,
		"logdir": filepath.Join(dir, "logs"),
	}
	b, _ := json.Marshal(conf)
	confPath := filepath.Join(dir, "ckpool.conf")
	os.WriteFile(confPath, b, 0o644)
	out, _ := os.Create(filepath.Join(dir, "ckpool.out"))
	defer out.Close()
	cmd := exec.Command(bin, "-A", "-c", confPath, "-s", filepath.Join(dir, "sock"), "-n", "ckpool-test", "-l", "7")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // ckpool forks; kill the group
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "ckpool.out"))
			t.Logf("ckpool output:\n%s", log[max(0, len(log)-4000):])
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b[:min(len(b), 12000)])
			}
		}
	})
	waitFor(t, "ckpool to listen", func() bool {
		c, err := net.Dial("tcp", poolAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	var log logBuf
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", log.String())
		}
	})
	a := startAgentAt(t, log.logger(), func(c *Config) { c.UpstreamProtocol = ProtoAuto }, poolAddr)
	logPath := filepath.Join(dir, "logs", "ckpool-test.log")
	for i, login := range []string{"john.a001", "mary.b002"} {
		m := dialMiner(t, a, login)
		w := m.waitJob(false)
		en2 := uint32(0x100 + i)
		// ckpool's least share difficulty is 1 (and it takes regtest's
		// network difficulty for 2), far too much work for a test: the
		// share meets 2^-20, and ckpool's verdict names the hash it
		// computed from its extranonce1, the agent's per-miner prefix and
		// the miner's extranonce2, which must be the miner's own.
		nonce := m.findNonce(w, en2, w.ntime, 0, -20, true)
		var e2 [4]byte
		binary.BigEndian.PutUint32(e2[:], en2)
		var h sha.Hasher
		hash := h.ShareHash(w.job, m.en1, e2[:], w.ntime, nonce, 0)
		for j := 0; j < 16; j++ { // display order
			hash[j], hash[31-j] = hash[31-j], hash[j]
		}
		want := hex.EncodeToString(hash[:])
		expectRes(t, login+" share", m.submit(w, en2, w.ntime, nonce, nil), `"error":[23,`)
		waitFor(t, "ckpool's verdict on "+want, func() bool {
			b, _ := os.ReadFile(logPath)
			return bytes.Contains(b, []byte("high diff")) && bytes.Contains(b, []byte(want))
		})
		t.Logf("%s: ckpool judged the share's hash %s (above target at diff 1, relayed as 23)", login, want)
	}
	if !strings.Contains(log.String(), "pool connected") || a.Stats().Upstreams != 1 {
		t.Fatalf("want one plain upstream; log:\n%s", log.String())
	}
}

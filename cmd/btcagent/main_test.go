package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckBtcAgentConfig: BtcAgent's sample configuration (seed 003) with
// keys hashpool does not know is accepted with warnings.
func TestCheckBtcAgentConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent_conf.json")
	conf := `{
    "agent_listen_ip": "0.0.0.0",
    "agent_listen_port": 3333,
    "use_iocp": true,
    "pool_use_tls": false,
    "multi_user_mode": false,
    "some_future_key": 1,
    "pools": [
        ["cn.ss.btc.com", 1800, "kevin"],
        ["cn.ss.btc.com", 1800, "kevin"]
    ]
}`
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-c", path, "-l", filepath.Join(dir, "log"), "-check"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"use_iocp"`, `unknown config key "some_future_key"`, "configuration ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	// Without -l the log also goes to stderr: each warning once, and none
	// for keys hashpool implements.
	out.Reset()
	if err := run([]string{"-c", path, "-check"}, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `"use_iocp"`); n != 1 {
		t.Errorf("use_iocp warned %d times:\n%s", n, out.String())
	}
	if strings.Contains(out.String(), "pool_use_tls") || strings.Contains(out.String(), "multi_user_mode") {
		t.Errorf("implemented keys warned about:\n%s", out.String())
	}
	os.WriteFile(path, []byte(`{"pools":[["h",0,"u.x"]]}`), 0o644)
	err := run([]string{"-c", path, "-check"}, &out)
	if err == nil || !strings.Contains(err.Error(), "port 0") || !strings.Contains(err.Error(), `user "u.x"`) {
		t.Fatalf("bad config error: %v", err)
	}
}

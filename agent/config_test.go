package agent

import (
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		err      []string // substrings of the error, all of them
		warns    int
		check    func(*testing.T, Config)
	}{
		{name: "seed example", in: `{"agent_listen_ip":"0.0.0.0","agent_listen_port":3333,"pools":[["cn.ss.btc.com",1800,"kevin"],["cn.ss.btc.com",1800,"kevin"]]}`,
			check: func(t *testing.T, c Config) {
				if len(c.Pools) != 2 || c.Pools[0] != (Pool{Host: "cn.ss.btc.com", Port: 1800, User: "kevin"}) || c.Listen() != "0.0.0.0:3333" {
					t.Fatalf("%+v", c)
				}
				if c.SubmitResponseFromServer || !c.DisconnectWhenLostAsicboost || c.BatchIntervalMs != 100 || c.MinersPerUpstream != 0xFFFF ||
					c.MinerPollCoalesceMs != 100 || c.GCPercent != 25 {
					t.Fatalf("defaults %+v", c)
				}
			}},
		{name: "btcagent keys", in: `{"agent_listen_port":3334,"submit_response_from_server":true,"use_ip_as_worker_name":true,"pool_use_tls":false,"multi_user_mode":false,"pools":[["h","1800","u"]]}`,
			check: func(t *testing.T, c Config) {
				if !c.SubmitResponseFromServer || !c.UseIPAsWorkerName || c.Pools[0].Port != 1800 {
					t.Fatalf("%+v", c)
				}
			}},
		// BtcAgent's full sample (docs/ConfigFileDetails.md) with its
		// defaults: nothing to warn about.
		{name: "BtcAgent sample, harmless defaults", in: `{"multi_user_mode":true,"agent_type":"btc","always_keep_downconn":false,
			"disconnect_when_lost_asicboost":true,"use_ip_as_worker_name":false,"ip_worker_name_format":"{1}x{2}x{3}x{4}",
			"fixed_worker_name":"","submit_response_from_server":false,"agent_listen_ip":"0.0.0.0","agent_listen_port":3333,
			"proxy":[],"direct_connect_with_proxy":false,"direct_connect_after_proxy":true,"pool_use_tls":false,"use_iocp":false,
			"http_debug":{"enable":false,"listen":"127.0.0.1:1234"},
			"advanced":{"pool_connection_number_per_subaccount":5,"pool_connection_dial_timeout_seconds":15,
			"pool_connection_read_timeout_seconds":60,"fake_job_notify_interval_seconds":30,"tls_skip_certificate_verify":false,
			"message_queue_size":{"session_manager":64}},
			"pools":[["us.ss.btc.com",1800,"YourSubAccountName"],["us.ss.btc.com",443,"YourSubAccountName"]]}`,
			check: func(t *testing.T, c Config) {
				if !c.MultiUserMode || c.DialTimeoutSec != 15 || c.UpstreamReadSec != 60 || c.PoolTLSSkipVerify {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "non-default ignored keys warn", in: `{"pools":[["h",1,"u"]],"use_iocp":true,"http_debug":{"enable":true},
			"advanced":{"pool_connection_number_per_subaccount":2,"fake_job_notify_interval_seconds":5,"zzz":1}}`, warns: 5},
		{name: "own keys win over advanced", in: `{"pools":[["h",1,"u"]],"dial_timeout_seconds":3,"pool_use_tls":true,
			"advanced":{"pool_connection_dial_timeout_seconds":20,"pool_connection_read_timeout_seconds":30,"tls_skip_certificate_verify":true}}`,
			check: func(t *testing.T, c Config) {
				if c.DialTimeoutSec != 3 || c.UpstreamReadSec != 30 || !c.PoolTLSSkipVerify {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "multi-user pools need no user", in: `{"multi_user_mode":true,"pools":[["h",1,""]]}`},
		{name: "proxies", in: `{"pools":[["h",1,"u"]],"proxy":["socks5://u:p@127.0.0.1:1080","http://127.0.0.1:8080","10.0.0.1:3128","https://p:443","system"]}`},
		{name: "bad tls and proxy keys", in: `{"pools":[["h",1,"u"]],"agent_type":"eth","proxy":["socks4://1.2.3.4:1080","ftp://x:1","http://nohost"],
			"pool_tls_cert_sha256":"abcd","pool_tls_skip_verify":true}`,
			err: []string{"agent_type", "SOCKS4", "ftp", "nohost", "pool_use_tls is false", "contradicts", "64 hex digits"}},
		{name: "unknown keys warn", in: `{"pools":[["h",1,"u"]],"zzz":1,"yyy":{}}`, warns: 2},
		{name: "hashpool keys", in: `{"pools":[["h",1,"u"]],"batch_interval_ms":0,"extensions":[],"miners_per_upstream":100}`,
			check: func(t *testing.T, c Config) {
				if c.BatchIntervalMs != 0 || len(c.Extensions) != 0 || c.MinersPerUpstream != 100 {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "every problem at once", in: `{"agent_listen_ip":"x","agent_listen_port":70000,"pools":[["",0,""]],"extensions":["gzip"],"batch_interval_ms":5000}`,
			err: []string{"agent_listen_ip", "agent_listen_port", "host", "port 0", "user", "gzip", "batch_interval_ms"}},
		{name: "no pools", in: `{}`, err: []string{"pools"}},
		{name: "bad pool", in: `{"pools":[["h",1]]}`, err: []string{"3 elements"}},
		{name: "not json", in: `[`, err: []string{"not a JSON object"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := ParseConfig([]byte(tc.in))
			if len(tc.err) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, e := range tc.err {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q lacks %q", err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) != tc.warns {
				t.Fatalf("warnings %q, want %d", warns, tc.warns)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestWorkerName(t *testing.T) {
	a := &Agent{cfg: Defaults()}
	for _, tc := range []struct{ login, want string }{
		{"john.a001", "a001"}, {"john", "john"}, {"john.a.b", "a.b"}, {"j.w\"x\x00y", "wxy"},
		{"j." + strings.Repeat("w", 100), strings.Repeat("w", maxWorkerLen)},
	} {
		if got := a.workerName(tc.login, netipAddr("10.1.2.3")); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.login, got, tc.want)
		}
	}
	a.cfg.UseIPAsWorkerName = true
	if got := a.workerName("john.a001", netipAddr("10.1.2.3")); got != "10x1x2x3" {
		t.Errorf("ip worker %q", got)
	}
	a.cfg.FixedWorkerName = "rack7"
	if got := a.workerName("john.a001", netipAddr("10.1.2.3")); got != "rack7" {
		t.Errorf("fixed worker %q", got)
	}
}

// docs/CONFIG.md lists every key of the agent's config file with its
// default, as Defaults has it.
func TestConfigDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## btcagent (agent_conf.json)")
	if !ok {
		t.Fatal("docs/CONFIG.md has no btcagent section")
	}
	defs, err := json.Marshal(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal(defs, &want); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		keys := strings.Split(strings.TrimSpace(cells[1]), " / ")
		vals := strings.Split(strings.TrimSpace(cells[2]), " / ")
		for i, k := range keys {
			k = strings.Trim(k, "`")
			documented[k] = true
			if k == "pools" {
				continue
			}
			if i >= len(vals) {
				t.Errorf("%s: no default documented", k)
				continue
			}
			if got := strings.Trim(vals[i], "`"); got != string(want[k]) {
				t.Errorf("%s: documented default %s, Defaults has %s", k, got, want[k])
			}
		}
	}
	for _, k := range reflectKeys() {
		if !documented[k] {
			t.Errorf("docs/CONFIG.md does not document %q", k)
		}
	}
}

// FuzzParseProxy: any proxy string is accepted or refused with an error,
// never a panic, and an accepted one has a host:port and a known scheme.
func FuzzParseProxy(f *testing.F) {
	for _, s := range []string{"socks5://u:p@127.0.0.1:1080", "http://h:1", "1.2.3.4:3128", "https://x:443", "system", "socks4://a:1", "http://[::1]:8080", "http://h:0", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseProxy(s)
		if err != nil || p.scheme == "system" {
			return
		}
		if p.scheme != "socks5" && p.scheme != "http" && p.scheme != "https" {
			t.Fatalf("%q: scheme %q", s, p.scheme)
		}
		if _, _, err := net.SplitHostPort(p.addr); err != nil {
			t.Fatalf("%q: addr %q", s, p.addr)
		}
	})
}

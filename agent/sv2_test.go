package agent

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sv2proxy"
)

func testAuthority(t *testing.T) (string, [32]byte) {
	t.Helper()
	k, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	x := noise.XOnly(k)
	return noise.FormatAuthorityKey(x), x
}

// TestSV2Config: sv2:// pool entries select the translator, with their
// authority keys, sv2_mode and the file's timeouts.
func TestSV2Config(t *testing.T) {
	key, x := testAuthority(t)
	c, warns, err := ParseConfig([]byte(`{"agent_listen_port": 3334, "sv2_mode": "shared", "batch_interval_ms": 50,
		"pools": [["sv2://10.0.0.1:34254", "` + key + `", "farm"], ["sv2://[::1]:3336", "` + key + `", "farm2"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.SV2() || len(warns) != 1 || !strings.Contains(warns[0], `"batch_interval_ms" has no effect with sv2:// pools`) {
		t.Fatalf("SV2 %v, warnings %q", c.SV2(), warns)
	}
	o, err := c.SV2Options(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []sv2proxy.Upstream{{Addr: "10.0.0.1:34254", Authority: x, User: "farm"}, {Addr: "[::1]:3336", Authority: x, User: "farm2"}}
	if len(o.Upstreams) != 2 || o.Upstreams[0] != want[0] || o.Upstreams[1] != want[1] {
		t.Fatalf("upstreams %+v, want %+v", o.Upstreams, want)
	}
	if o.Mode != sv2proxy.SharedChannel || o.UpstreamReadTimeout != sv2DefaultReadTimeout || o.MaxMiners != 100000 || o.DialTimeout != 10*time.Second {
		t.Fatalf("options %+v", o)
	}
	if c.Pools[0].Host != "10.0.0.1" || c.Pools[0].Port != 34254 {
		t.Fatalf("pool %+v", c.Pools[0])
	}
	// The entry marshals back to its own form.
	b, _ := json.Marshal(c.Pools[1])
	if string(b) != `["sv2://[::1]:3336","`+key+`","farm2"]` {
		t.Fatalf("marshalled %s", b)
	}

	// Default mode, and the file's read timeout (own key or advanced's).
	for _, extra := range []string{`"upstream_read_timeout_seconds": 900`, `"advanced": {"pool_connection_read_timeout_seconds": 900}`} {
		c, _, err = ParseConfig([]byte(`{` + extra + `, "pools": [["sv2://127.0.0.1:1", "` + key + `", "farm"]]}`))
		if err != nil {
			t.Fatal(err)
		}
		if o, err = c.SV2Options(nil); err != nil {
			t.Fatal(err)
		}
		if o.Mode != sv2proxy.ChannelPerMiner || o.UpstreamReadTimeout != 900*time.Second {
			t.Fatalf("%s: mode %v, read timeout %v", extra, o.Mode, o.UpstreamReadTimeout)
		}
	}

	// Plain pools are not SV2.
	c, _, err = ParseConfig([]byte(`{"pools": [["h", 1, "u"]]}`))
	if err != nil || c.SV2() {
		t.Fatalf("plain pools: SV2 %v, %v", c.SV2(), err)
	}
	if _, err := c.SV2Options(nil); err == nil {
		t.Fatal("SV2Options of plain pools")
	}
}

// TestSV2ConfigErrors: a wrong authority key, a port where the key goes, a
// mix of sv2:// and plain pools, a bad sv2_mode and keys SV2 mode cannot
// honour are clear errors naming the key.
func TestSV2ConfigErrors(t *testing.T) {
	key, _ := testAuthority(t)
	// The same key with its last character changed: the checksum fails.
	last := "2"
	if key[len(key)-1] == '2' {
		last = "3"
	}
	bad := key[:len(key)-1] + last
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"wrong key", `{"pools": [["sv2://127.0.0.1:3336", "` + bad + `", "farm"]]}`, []string{"pools[0]", "authority key"}},
		{"not base58", `{"pools": [["sv2://127.0.0.1:3336", "0OIl", "farm"]]}`, []string{"pools[0]", "authority key"}},
		{"empty key", `{"pools": [["sv2://127.0.0.1:3336", "", "farm"]]}`, []string{"pools[0]", "authority key"}},
		{"port for key", `{"pools": [["sv2://127.0.0.1:3336", 3336, "farm"]]}`, []string{"authority public key", "not a port"}},
		{"bad address", `{"pools": [["sv2://nohost", "` + key + `", "farm"]]}`, []string{"pools[0]", "sv2://nohost"}},
		{"bad user", `{"pools": [["sv2://127.0.0.1:3336", "` + key + `", "a.b"]]}`, []string{"pools[0]", `user "a.b"`}},
		{"mixed", `{"pools": [["sv2://127.0.0.1:3336", "` + key + `", "farm"], ["127.0.0.1", 3333, "farm"]]}`,
			[]string{"pools: 1 sv2:// and 1 plain entries", "every pool"}},
		{"mode", `{"sv2_mode": "group", "pools": [["sv2://127.0.0.1:3336", "` + key + `", "farm"]]}`, []string{`sv2_mode "group"`}},
		{"contradictions", `{"multi_user_mode": true, "pool_use_tls": true, "proxy": ["127.0.0.1:8080"], "fixed_worker_name": "x",
			"use_ip_as_worker_name": true, "upstream_protocol": "agent", "pools": [["sv2://127.0.0.1:3336", "` + key + `", "farm"]]}`,
			[]string{"multi_user_mode", "pool_use_tls", "proxy:", "fixed_worker_name", "use_ip_as_worker_name", `upstream_protocol "agent"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseConfig([]byte(tc.conf))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// FuzzSV2PoolEntry: any pool entry is accepted or refused with an error,
// never a panic; an accepted sv2:// config always yields translator
// options, and its entry marshals back to an equal one.
func FuzzSV2PoolEntry(f *testing.F) {
	k, err := noise.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	key := noise.FormatAuthorityKey(noise.XOnly(k))
	for _, s := range []string{
		`["sv2://127.0.0.1:3336", "` + key + `", "farm"]`, `["sv2://[::1]:1", "` + key + `", "u"]`,
		`["sv2://h", "` + key + `", "farm"]`, `["sv2://h:1", 1, "farm"]`, `["sv2://h:1", "", ""]`,
		`["sv2://h:99999", "` + key + `", "farm"]`, `["h", 1, "u"]`, `["sv2://", "x", "y"]`, `[]`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		c, _, err := ParseConfig([]byte(`{"pools": [` + entry + `]}`))
		if err != nil || !c.SV2() {
			return
		}
		o, err := c.SV2Options(nil)
		if err != nil {
			t.Fatalf("%s: accepted by Validate, refused by SV2Options: %v", entry, err)
		}
		if len(o.Upstreams) != 1 || o.Upstreams[0].User != c.Pools[0].User {
			t.Fatalf("%s: upstreams %+v", entry, o.Upstreams)
		}
		b, err := json.Marshal(c.Pools[0])
		if err != nil {
			t.Fatal(err)
		}
		var p Pool
		if err := json.Unmarshal(b, &p); err != nil || p != c.Pools[0] {
			t.Fatalf("%s: round trip %s → %+v (%v), want %+v", entry, b, p, err, c.Pools[0])
		}
	})
}

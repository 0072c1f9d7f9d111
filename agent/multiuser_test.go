package agent

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/engine"
)

// TestMultiUserMode: BtcAgent's multi_user_mode. Miners bob.rig2,
// carol.rig1 and bob.rig3 are credited to the pool users bob and carol
// (not to the pools' configured sub-account), as workers rig2, rig1, rig3;
// each account has its own upstream connection, authorized as that
// account; a login without '.' is its own account and worker; ".x" is
// refused with BtcAgent's error 105; an account's upstream closes with its
// last miner.
func TestMultiUserMode(t *testing.T) {
	p := startEngine(t, 1)
	p.AddJob(false)
	a := startAgent(t, func(c *Config) {
		c.MultiUserMode = true
		c.Pools[0].User = "YourSubAccountName"
	}, p)
	var sids []string
	for i, tc := range []struct {
		login, worker, account string
	}{
		{"bob.rig2", "rig2", "bob"},
		{"carol.rig1", "rig1", "carol"},
		{"bob.rig3", "rig3", "bob"},
		{"dave", "dave", "dave"},
	} {
		m := dialMiner(t, a, tc.login)
		sids = append(sids, fmt.Sprintf("%x", m.en1))
		w := m.waitJob(true)
		en2 := uint32(100 + i)
		nonce := m.findNonce(w, en2, w.ntime, 0, testExp, true)
		expectRes(t, tc.login, m.submit(w, en2, w.ntime, nonce, nil), `"result":true`)
		rec := p.NextShare()
		// The engine registers a user name when it first authorizes: look the ids up after.
		user, ok := p.Users.UserID(tc.account)
		if _, isPlaceholder := p.Users.UserID("YourSubAccountName"); !ok || isPlaceholder {
			t.Fatalf("%s: account %s registered %v, placeholder account registered %v", tc.login, tc.account, ok, isPlaceholder)
		}
		if rec.UserID != user || rec.WorkerHashID != engine.WorkerID(tc.worker) {
			t.Fatalf("%s: record user %d worker %d, want user %d (%s) worker %s", tc.login, rec.UserID, rec.WorkerHashID, user, tc.account, tc.worker)
		}
		if tc.login == "bob.rig3" { // bob's second miner shares bob's connection
			if st := a.Stats(); st.Upstreams != 2 {
				t.Fatalf("%d upstream connections for bob and carol, want 2", st.Upstreams)
			}
		}
	}
	for i := range sids {
		for j := range i {
			if sids[i] == sids[j] {
				t.Fatalf("miners %d and %d share extranonce1 %s across accounts", i, j, sids[i])
			}
		}
	}
	waitFor(t, "three accounts' upstreams", func() bool { return a.Stats().Upstreams == 3 })

	// ".x" has no sub-account.
	c, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.Write([]byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n" + `{"id":2,"method":"mining.authorize","params":[".x",""]}` + "\n"))
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, `{"id":2,`) {
			if !strings.Contains(l, "105") {
				t.Fatalf("authorize .x: %s, want error 105", l)
			}
			break
		}
	}
	if a.Stats().Upstreams != 3 {
		t.Fatal("a refused login opened an upstream")
	}
}

// TestMultiUserAccountLeaves: when an account's last miner leaves, its
// upstream connection closes (BtcAgent); the other accounts stay.
func TestMultiUserAccountLeaves(t *testing.T) {
	p := startEngine(t, 1)
	p.AddJob(false)
	a := startAgent(t, func(c *Config) { c.MultiUserMode, c.Pools[0].User = true, "" }, p)
	bob := dialMiner(t, a, "bob.rig1")
	bob.waitJob(true)
	carol := dialMiner(t, a, "carol.rig1")
	w := carol.waitJob(true)
	waitFor(t, "two upstreams", func() bool { return a.Stats().Upstreams == 2 })
	bob.conn.Close()
	waitFor(t, "bob's upstream to close", func() bool { return a.Stats().Upstreams == 1 })
	nonce := carol.findNonce(w, 7, w.ntime, 0, testExp, true)
	expectRes(t, "carol after bob left", carol.submit(w, 7, w.ntime, nonce, nil), `"result":true`)
	carolID, _ := p.Users.UserID("carol")
	if rec := p.NextShare(); rec.UserID != carolID {
		t.Fatalf("record %+v", rec)
	}
	// bob comes back: a new upstream for bob.
	bob = dialMiner(t, a, "bob.rig1")
	w = bob.waitJob(true)
	nonce = bob.findNonce(w, 8, w.ntime, 0, testExp, true)
	expectRes(t, "bob again", bob.submit(w, 8, w.ntime, nonce, nil), `"result":true`)
	bobID, _ := p.Users.UserID("bob")
	if rec := p.NextShare(); rec.UserID != bobID {
		t.Fatalf("record %+v", rec)
	}
}

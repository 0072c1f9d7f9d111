package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestAPIUsersIncremental(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	pages := map[string]string{
		"0":  `{"err_no":0,"err_msg":null,"data":{"alice":1,"Bob":2,"bad id":-3,"zero":0}}`,
		"2":  `{"err_no":0,"err_msg":null,"data":{"carol":7,"alice":99}}`,
		"99": `{"err_no":0,"err_msg":null,"data":{}}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last := r.URL.Query().Get("last_id")
		mu.Lock()
		seen = append(seen, last)
		mu.Unlock()
		page, ok := pages[last]
		if !ok {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		w.Write([]byte(page))
	}))
	defer srv.Close()
	u := NewAPIUsers(srv.URL+"/userlist.php", NameRules{CaseInsensitive: true}, nil)
	ctx := context.Background()
	for i, want := range []int{2, 1, 0} {
		n, err := u.Update(ctx)
		if err != nil || n != want {
			t.Fatalf("update %d: added %d err %v, want %d", i, n, err, want)
		}
	}
	for name, want := range map[string]int32{"alice": 1, "bob": 2, "badid": 0, "carol": 7, "zero": 0} {
		id, ok := u.UserID(name)
		if id != want || ok != (want > 0) {
			t.Errorf("UserID(%q) = %d %v, want %d", name, id, ok, want)
		}
	}
	if got := seen; len(got) != 3 || got[0] != "0" || got[1] != "2" || got[2] != "99" {
		t.Fatalf("last_id sequence %v, want [0 2 99]", got)
	}
}

func TestAPIUsersErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.Write([]byte(`{"data":`))
			return
		}
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	for _, path := range []string{"/bad", "/down"} {
		if _, err := NewAPIUsers(srv.URL+path, NameRules{}, nil).Update(context.Background()); err == nil {
			t.Errorf("%s: no error", path)
		}
	}
}

func TestEmbeddedUsersPersist(t *testing.T) {
	dir := t.TempDir()
	u, err := OpenEmbeddedUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := u.UserID("alice")
	b, _ := u.UserID("bob")
	if a2, _ := u.UserID("alice"); a != 1 || b != 2 || a2 != 1 {
		t.Fatalf("ids alice %d bob %d again %d", a, b, a2)
	}
	for _, bad := range []string{"", "has space", string(make([]byte, 65))} {
		if _, ok := u.UserID(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
	u2, err := OpenEmbeddedUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := u2.UserID("bob"); id != 2 {
		t.Fatalf("bob after reopen = %d", id)
	}
	if id, _ := u2.UserID("carol"); id != 3 {
		t.Fatalf("carol after reopen = %d, want 3", id)
	}
	os.WriteFile(filepath.Join(dir, embeddedUsersFile), []byte("x y\n"), 0o644)
	if _, err := OpenEmbeddedUsers(dir); err == nil {
		t.Fatal("corrupt file accepted")
	}
}

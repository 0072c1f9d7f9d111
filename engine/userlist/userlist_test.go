package userlist

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
	u := NewAPI(srv.URL+"/userlist.php", func(n string) string { return strings.ToLower(filterName(n)) }, nil)
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
		if _, err := NewAPI(srv.URL+path, nil, nil).Update(context.Background()); err == nil {
			t.Errorf("%s: no error", path)
		}
	}
}

func openEmbedded(t *testing.T, dir string) *Embedded {
	t.Helper()
	u, err := OpenEmbedded(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func TestEmbeddedUsersPersist(t *testing.T) {
	dir := t.TempDir()
	u := openEmbedded(t, dir)
	if _, ok := u.UserID("alice"); ok {
		t.Fatal("unknown user found")
	}
	a, _ := u.Register("alice")
	b, _ := u.Register("bob")
	if a2, _ := u.Register("alice"); a != 1 || b != 2 || a2 != 1 {
		t.Fatalf("ids alice %d bob %d again %d", a, b, a2)
	}
	if id, ok := u.UserID("bob"); !ok || id != 2 {
		t.Fatalf("UserID(bob) = %d %v", id, ok)
	}
	for _, bad := range []string{"", "has space", string(make([]byte, 65))} {
		if _, ok := u.Register(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := u.Register("late"); ok {
		t.Fatal("closed list registered a name")
	}
	u2 := openEmbedded(t, dir)
	if id, _ := u2.UserID("bob"); id != 2 {
		t.Fatalf("bob after reopen = %d", id)
	}
	if id, _ := u2.Register("carol"); id != 3 {
		t.Fatalf("carol after reopen = %d, want 3", id)
	}
	u2.Close()
	os.WriteFile(filepath.Join(dir, EmbeddedFile), []byte("x y\n"), 0o644)
	if _, err := OpenEmbedded(dir, nil); err == nil {
		t.Fatal("corrupt file accepted")
	}
}

// TestEmbeddedTornTail: a line cut by a crash is dropped and cut off, and
// the next append starts on a line boundary.
func TestEmbeddedTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, EmbeddedFile)
	// The old format (whole-file rewrites) reads the same.
	if err := os.WriteFile(path, []byte("bob 2\nalice 1\ncar"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := openEmbedded(t, dir)
	if id, ok := u.UserID("alice"); !ok || id != 1 || u.Len() != 2 {
		t.Fatalf("alice %d %v, len %d", id, ok, u.Len())
	}
	if id, _ := u.Register("dave"); id != 3 {
		t.Fatalf("dave = %d, want 3", id)
	}
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "bob 2\nalice 1\ndave 3\n" {
		t.Fatalf("file %q", b)
	}
}

// TestEmbeddedManyNamesBatched: thousands of new names are registered at
// once (no disk wait per name) and all survive a reopen.
func TestEmbeddedManyNamesBatched(t *testing.T) {
	dir := t.TempDir()
	u := openEmbedded(t, dir)
	const n = 5000
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				if _, ok := u.Register(fmt.Sprintf("user%05d", i)); !ok {
					t.Errorf("user%05d refused", i)
				}
			}
		}(g)
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("user%05d", i)
		id, _ := u.UserID(name)
		want[name] = id
	}
	u.Close()
	u2 := openEmbedded(t, dir)
	if u2.Len() != n {
		t.Fatalf("%d users after reopen, want %d", u2.Len(), n)
	}
	for name, id := range want {
		if got, _ := u2.UserID(name); got != id {
			t.Fatalf("%s = %d after reopen, want %d", name, got, id)
		}
	}
}

func BenchmarkEmbeddedRegister(b *testing.B) {
	u, err := OpenEmbedded(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	names := make([]string, b.N)
	for i := range names {
		names[i] = "u" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u.Register(names[i])
	}
}

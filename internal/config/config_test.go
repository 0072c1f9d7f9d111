package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type sample struct {
	Port    int    `toml:"port"`
	Name    string `toml:"name"`
	Section struct {
		Interval int `toml:"interval"`
	} `toml:"section"`
}

func TestDecodeKeepsDefaultsAndRejectsUnknownKeys(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    sample
		wantErr string
	}{
		{name: "empty keeps defaults", text: "", want: sample{Port: 3333, Name: "d"}},
		{name: "override", text: "port = 4444\n[section]\ninterval = 7\n", want: func() sample {
			s := sample{Port: 4444, Name: "d"}
			s.Section.Interval = 7
			return s
		}()},
		{name: "unknown key", text: "port = 1\nprot = 2\n", wantErr: "unknown keys: prot"},
		{name: "unknown nested key", text: "[section]\nintervall = 2\n", wantErr: "section.intervall"},
		{name: "wrong type", text: "port = \"x\"\n", wantErr: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sample{Port: 3333, Name: "d"}
			err := Decode([]byte(tt.text), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(p, []byte("name = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var s sample
	if err := LoadFile(p, &s); err != nil || s.Name != "x" {
		t.Fatalf("LoadFile = %v, %+v", err, s)
	}
	if err := LoadFile(filepath.Join(dir, "missing.toml"), &s); err == nil {
		t.Fatal("missing file: no error")
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#"), MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := LoadFile(big, &s); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("oversized file: %v", err)
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), `"msg":"shown"`) {
		t.Fatalf("output %q", buf.String())
	}
	if _, err := NewLogger(&buf, "loud", "text"); err == nil {
		t.Fatal("bad level accepted")
	}
	if _, err := NewLogger(&buf, "info", "xml"); err == nil {
		t.Fatal("bad format accepted")
	}
}

package config

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzConfig has the kinds of fields the commands' configurations use.
type fuzzConfig struct {
	Port    int      `toml:"port"`
	Name    string   `toml:"name"`
	Enabled bool     `toml:"enabled"`
	Small   uint16   `toml:"small"`
	Big     int64    `toml:"big"`
	List    []string `toml:"list"`
	Section struct {
		Interval int               `toml:"interval"`
		Tags     map[string]string `toml:"tags"`
	} `toml:"section"`
	Items []struct {
		ID  int32  `toml:"id"`
		URL string `toml:"url"`
	} `toml:"items"`
}

// FuzzDecode feeds arbitrary configuration text to Decode: it must never panic, and whatever
// it accepts must encode and decode back to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"", "port = 4444\n[section]\ninterval = 7\n", "port = 1\nprot = 2\n", "[section]\nintervall = 2\n",
		"port = \"x\"\n", "name = \"a\\u00e9\\n\"\nenabled = true\nsmall = 65535\nbig = -9223372036854775808\n",
		"small = 65536\n", "list = [\"a\", 'b', \"\"\"c\"\"\"]\n", "[section.tags]\n\"a.b\" = \"c\"\nx = ''\n",
		"[[items]]\nid = 1\nurl = \"tcp://127.0.0.1:1\"\n[[items]]\nid = -2\n", "port = 0x10\nbig = 1_000\n",
		"port = 1\nport = 2\n", "[section]\n[section]\n", "items = [{id = 1}]\n", "a.b.c = 1\n", "\xff = 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v fuzzConfig
		v.Port = 3333
		if err := Decode(b, &v); err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, v); err != nil {
			t.Fatalf("encode %+v: %v", v, err)
		}
		var w fuzzConfig
		if err := Decode(out.Bytes(), &w); err != nil {
			t.Fatalf("re-decode of\n%s\n%v", out.Bytes(), err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(w)) {
			t.Fatalf("round trip changed %+v\nto %+v\nvia\n%s", v, w, out.Bytes())
		}
	})
}

// normalize maps empty slices and maps to nil: TOML cannot tell them apart.
func normalize(v fuzzConfig) fuzzConfig {
	if len(v.List) == 0 {
		v.List = nil
	}
	if len(v.Section.Tags) == 0 {
		v.Section.Tags = nil
	}
	if len(v.Items) == 0 {
		v.Items = nil
	}
	return v
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// MaxFileSize bounds a configuration file; anything larger is certainly not a config file.
const MaxFileSize = 4 << 20

// LoadFile decodes the TOML file at path into v, which must be a pointer to a struct already
// holding the defaults. Keys missing from the file keep their default; unknown keys are an error
// that names them.
func LoadFile(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
	}
	if err := Decode(b, v); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// Decode decodes TOML text into v strictly (unknown keys are errors).
func Decode(b []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			keys := make([]string, 0, len(strict.Errors))
			for _, e := range strict.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return fmt.Errorf("unknown keys: %s", strings.Join(keys, ", "))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return fmt.Errorf("line %d column %d: %s", row, col, de.Error())
		}
		return err
	}
	return nil
}

// Encode renders v as TOML; commands use it to print the effective configuration.
func Encode(w io.Writer, v any) error {
	enc := toml.NewEncoder(w)
	enc.SetIndentTables(true)
	return enc.Encode(v)
}

// NewLogger returns a logger writing to w at the given level ("debug", "info", "warn",
// "error") in the given format ("text" or "json").
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("config: log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("config: log format %q: want text or json", format)
	}
}

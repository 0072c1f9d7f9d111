//go:build !linux

package mem

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

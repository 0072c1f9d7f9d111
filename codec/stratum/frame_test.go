package stratum

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// feed simulates a connection buffer: chunks arrive one by one, the framer
// is called after each arrival, and consumed bytes are dropped.
func feed(t *testing.T, f *LineFramer, chunks []string) (lines []string, err error) {
	t.Helper()
	var buf []byte
	for _, c := range chunks {
		buf = append(buf, c...)
		for range 1000 {
			line, n, err := f.Next(buf)
			if err != nil {
				return lines, err
			}
			if n == 0 {
				break
			}
			lines = append(lines, string(line))
			buf = buf[n:]
		}
	}
	return lines, nil
}

func TestLineFramer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		chunks []string
		want   []string
		err    error
	}{
		{"one line", 0, []string{"abc\n"}, []string{"abc"}, nil},
		{"two in one read", 0, []string{"a\nbb\n"}, []string{"a", "bb"}, nil},
		{"split", 0, []string{"ab", "c", "\nd", "e\n"}, []string{"abc", "de"}, nil},
		{"crlf keeps cr", 0, []string{"x\r\n"}, []string{"x\r"}, nil},
		{"empty line", 0, []string{"\n\n"}, []string{"", ""}, nil},
		{"partial tail", 0, []string{"a\nbc"}, []string{"a"}, nil},
		{"exactly max", 4, []string{"abcd\n"}, []string{"abcd"}, nil},
		{"exactly max split", 4, []string{"ab", "cd", "\n"}, []string{"abcd"}, nil},
		{"max+1 no newline yet", 4, []string{"abcde"}, nil, ErrLineTooLong},
		{"too long split", 4, []string{"ab", "cde", "\n"}, nil, ErrLineTooLong},
		{"too long after good", 4, []string{"ab\nabcdef"}, []string{"ab"}, ErrLineTooLong},
		{"waits at max", 4, []string{"abcd"}, nil, nil},
	}
	for _, tc := range tests {
		f := LineFramer{Max: tc.max}
		lines, err := feed(t, &f, tc.chunks)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v want %v", tc.name, err, tc.err)
		}
		if strings.Join(lines, "|") != strings.Join(tc.want, "|") || len(lines) != len(tc.want) {
			t.Errorf("%s: lines %q want %q", tc.name, lines, tc.want)
		}
	}
}

// TestLineFramerEveryByte delivers a stream one byte at a time and checks
// that the framer scans each byte once (no quadratic rescans) and finds every line.
func TestLineFramerEveryByte(t *testing.T) {
	var stream []byte
	for _, l := range requestLines {
		stream = append(stream, l...)
		stream = append(stream, '\n')
	}
	var f LineFramer
	var got [][]byte
	var buf []byte
	for _, c := range stream {
		buf = append(buf, c)
		line, n, err := f.Next(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			got = append(got, bytes.Clone(line))
			buf = buf[n:]
		}
		if f.scanned != len(buf) {
			t.Fatalf("framer scanned %d of %d pending bytes", f.scanned, len(buf))
		}
	}
	if len(got) != len(requestLines) {
		t.Fatalf("%d lines", len(got))
	}
	for i := range got {
		if string(got[i]) != requestLines[i] {
			t.Errorf("line %d = %s", i, got[i])
		}
	}
}

func TestLineFramerDefaultLimit(t *testing.T) {
	var f LineFramer
	big := bytes.Repeat([]byte("x"), DefaultMaxLine)
	if _, n, err := f.Next(big); n != 0 || err != nil {
		t.Fatalf("n=%d err=%v at the limit", n, err)
	}
	if _, _, err := f.Next(append(big, 'y')); err != ErrLineTooLong {
		t.Fatalf("err=%v past the limit", err)
	}
	f.Reset()
	if line, n, err := f.Next(append(big, '\n')); err != nil || n != DefaultMaxLine+1 || len(line) != DefaultMaxLine {
		t.Fatalf("n=%d err=%v", n, err)
	}
	// A buffer shorter than what was scanned (contract broken) is rescanned, not panicked on.
	f.Next([]byte("abcdef"))
	if line, n, _ := f.Next([]byte("a\n")); n != 2 || string(line) != "a" {
		t.Fatalf("after shrink: %q %d", line, n)
	}
}

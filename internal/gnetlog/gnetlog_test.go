package gnetlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	l := Logger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Infof("Launching gnet with %d event-loops", 2)
	l.Debugf("debug %s", "x")
	if buf.Len() != 0 {
		t.Fatalf("info/debug chatter logged at Info: %q", buf.String())
	}
	l.Warnf("slow %d", 1)
	l.Errorf("broken %s", "pipe")
	l.Fatalf("fatal")
	out := buf.String()
	for _, want := range []string{"level=WARN msg=\"gnet: slow 1\"", "level=ERROR msg=\"gnet: broken pipe\"", "gnet: fatal"} {
		if !strings.Contains(out, want) {
			t.Fatalf("%q missing in %q", want, out)
		}
	}
	Logger(nil).Errorf("discarded")
}

// Package gnetlog routes gnet's logging into a *slog.Logger.
//
// gnet logs through a process-wide zap logger configured from environment variables, and its
// "Launching gnet ..." line goes to standard output at INFO whatever the engine's log level;
// that pollutes a command's output (and `go test -bench` lines). Passing Logger(l) with
// gnet.WithLogger makes gnet speak through l instead: its INFO and DEBUG chatter at Debug, its
// warnings and errors at Warn and Error. It must never hold state of its own.
package gnetlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/panjf2000/gnet/v2/pkg/logging"
)

// Logger returns a gnet logger writing to l (nil: discard).
func Logger(l *slog.Logger) logging.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return adapter{l}
}

type adapter struct{ l *slog.Logger }

func (a adapter) log(level slog.Level, format string, args ...any) {
	if a.l.Enabled(context.Background(), level) {
		a.l.Log(context.Background(), level, "gnet: "+fmt.Sprintf(format, args...))
	}
}

func (a adapter) Debugf(format string, args ...any) { a.log(slog.LevelDebug, format, args...) }
func (a adapter) Infof(format string, args ...any)  { a.log(slog.LevelDebug, format, args...) }
func (a adapter) Warnf(format string, args ...any)  { a.log(slog.LevelWarn, format, args...) }
func (a adapter) Errorf(format string, args ...any) { a.log(slog.LevelError, format, args...) }

// Fatalf logs at Error: a library must not end the process; gnet returns its errors anyway.
func (a adapter) Fatalf(format string, args ...any) { a.log(slog.LevelError, format, args...) }

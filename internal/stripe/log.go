package stripe

import (
	"context"
	"fmt"
	"log/slog"

	stripego "github.com/stripe/stripe-go/v85"
)

// slogLogger sends stripe-go's printf-style logs to a *slog.Logger, so that
// they carry the service's handler and fields instead of going to stderr.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) log(level slog.Level, format string, v ...any) {
	ctx := context.Background()
	if s.l.Enabled(ctx, level) {
		s.l.Log(ctx, level, fmt.Sprintf(format, v...), slog.String("component", "stripe-go"))
	}
}

func (s slogLogger) Debugf(format string, v ...any) { s.log(slog.LevelDebug, format, v...) }
func (s slogLogger) Infof(format string, v ...any)  { s.log(slog.LevelDebug, format, v...) }
func (s slogLogger) Warnf(format string, v ...any)  { s.log(slog.LevelWarn, format, v...) }
func (s slogLogger) Errorf(format string, v ...any) { s.log(slog.LevelWarn, format, v...) }

// leveledLogger adapts l for stripe-go; nil discards its logs. stripe-go's
// info lines (one per request) go to debug, and its errors to warn: every
// one of them is also returned to, and handled by, the caller.
func leveledLogger(l *slog.Logger) stripego.LeveledLoggerInterface {
	if l == nil {
		return &stripego.LeveledLogger{Level: stripego.LevelNull}
	}
	return slogLogger{l}
}

// discardLogger is the Provider's own logger when Config.Logger is nil.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

package bus

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Backoff bounds for riding out transient bus errors.
const (
	retryFirstDelay = 100 * time.Millisecond
	retryMaxDelay   = 5 * time.Second
)

// permanentError marks an error that retrying cannot cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot cure (a configuration or
// authorization error, a topic that does not exist and will not be created):
// components stop on it. Every other Poll or Commit error is transient (a
// broker pause, a group rebalance, a fetch error) and is ridden out. Permanent
// returns nil for nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent, or is ErrClosed (a closed consumer stays closed).
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, ErrClosed)
}

// Incident turns a run of transient errors into one log line when it starts
// and one when it ends, with a backoff in between. The zero value logs
// nothing; set Log and What. An Incident is used by one goroutine.
type Incident struct {
	Log  *slog.Logger // nil: silent
	What string       // what is being retried, e.g. "blkmaker: polling BtcSolvedShare"

	start time.Time
	count int
	delay time.Duration
}

// Fail records one transient error and waits the backoff (100 ms doubling to
// 5 s). It returns false when ctx ended during the wait.
func (i *Incident) Fail(ctx context.Context, err error) bool {
	if i.count == 0 {
		i.start = time.Now()
		i.delay = retryFirstDelay
		if i.Log != nil {
			i.Log.Warn(i.What+" failed; retrying with backoff", "err", err)
		}
	}
	i.count++
	t := time.NewTimer(i.delay)
	defer t.Stop()
	i.delay = min(2*i.delay, retryMaxDelay)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// OK ends the incident, if one is under way, with a line saying how long it
// lasted.
func (i *Incident) OK() {
	if i.count == 0 {
		return
	}
	if i.Log != nil {
		i.Log.Info(i.What+" recovered", "failures", i.count, "after", time.Since(i.start).Round(time.Millisecond))
	}
	i.count = 0
}

// Failing reports whether an incident is under way.
func (i *Incident) Failing() bool { return i.count > 0 }

// Poll is c.Poll that rides out transient errors: it returns records, or an
// error only when ctx ended (ctx.Err()) or the error is permanent
// (IsPermanent: a closed consumer, a configuration error).
func Poll(ctx context.Context, c Consumer, inc *Incident) ([]Message, error) {
	for {
		msgs, err := c.Poll(ctx)
		if err == nil {
			inc.OK()
			return msgs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if IsPermanent(err) {
			return nil, err
		}
		if !inc.Fail(ctx, err) {
			return nil, ctx.Err()
		}
	}
}

// Commit is c.Commit retried through transient errors for at most limit
// (0: until ctx ends). It returns the last error when it gives up: the
// records are then delivered again to whichever member owns their partition,
// so a consumer must treat a failed commit as "these may come again", not as
// a reason to stop.
func Commit(ctx context.Context, c Consumer, inc *Incident, limit time.Duration, msgs ...Message) error {
	var deadline time.Time
	if limit > 0 {
		deadline = time.Now().Add(limit)
	}
	for {
		err := c.Commit(ctx, msgs...)
		if err == nil {
			inc.OK()
			return nil
		}
		if ctx.Err() != nil || IsPermanent(err) || (!deadline.IsZero() && time.Now().After(deadline)) {
			return err
		}
		if !inc.Fail(ctx, err) {
			return err
		}
	}
}

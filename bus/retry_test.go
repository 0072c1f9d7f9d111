package bus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// flaky is a consumer whose Poll and Commit fail with errs in turn, then succeed.
type flaky struct {
	errs    []error
	polls   int
	commits int
}

func (f *flaky) next() error {
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func (f *flaky) Poll(ctx context.Context) ([]bus.Message, error) {
	f.polls++
	if err := f.next(); err != nil {
		return nil, err
	}
	return []bus.Message{{Offset: 7}}, nil
}

func (f *flaky) Commit(ctx context.Context, msgs ...bus.Message) error {
	f.commits++
	return f.next()
}

func (f *flaky) Close() error { return nil }

func TestPollRidesOutTransientErrors(t *testing.T) {
	var logs bytes.Buffer
	inc := &bus.Incident{Log: slog.New(slog.NewTextHandler(&logs, nil)), What: "test: polling"}
	transient := errors.New("UNKNOWN_MEMBER_ID")
	c := &flaky{errs: []error{transient, transient, transient}}
	msgs, err := bus.Poll(context.Background(), c, inc)
	if err != nil || len(msgs) != 1 || c.polls != 4 {
		t.Fatalf("Poll = %v, %v after %d polls; want 1 record after 4", msgs, err, c.polls)
	}
	out := logs.String()
	if strings.Count(out, "retrying") != 1 || strings.Count(out, "recovered") != 1 || !strings.Contains(out, "failures=3") {
		t.Fatalf("want one line per incident start and end, got:\n%s", out)
	}
	if inc.Failing() {
		t.Fatal("incident still under way after a good poll")
	}
}

func TestPollStopsOnPermanentErrors(t *testing.T) {
	for _, perm := range []error{bus.ErrClosed, bus.Permanent(errors.New("TOPIC_AUTHORIZATION_FAILED"))} {
		c := &flaky{errs: []error{perm}}
		if _, err := bus.Poll(context.Background(), c, &bus.Incident{}); !errors.Is(err, perm) && err.Error() != perm.Error() {
			t.Fatalf("Poll = %v, want %v", err, perm)
		}
		if c.polls != 1 {
			t.Fatalf("permanent error polled %d times", c.polls)
		}
	}
	if bus.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
}

func TestPollEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	errs := make([]error, 1000)
	for i := range errs {
		errs[i] = errors.New("broker down")
	}
	if _, err := bus.Poll(ctx, &flaky{errs: errs}, &bus.Incident{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Poll = %v, want the context's error", err)
	}
}

func TestCommitGivesUpAfterLimit(t *testing.T) {
	errs := make([]error, 1000)
	for i := range errs {
		errs[i] = errors.New("ILLEGAL_GENERATION")
	}
	c := &flaky{errs: errs}
	err := bus.Commit(context.Background(), c, &bus.Incident{}, 300*time.Millisecond, bus.Message{Offset: 1})
	if err == nil || c.commits < 2 {
		t.Fatalf("Commit = %v after %d attempts; want the last error after retries", err, c.commits)
	}
	c = &flaky{errs: []error{errors.New("rebalance")}}
	if err := bus.Commit(context.Background(), c, &bus.Incident{}, time.Minute); err != nil || c.commits != 2 {
		t.Fatalf("Commit = %v after %d attempts; want success on the second", err, c.commits)
	}
}

package node

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends; it reports whether d passed. It is the pause between retries
// of node calls (gbtmaker, blockmaker) and of anything else paced the same way.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Package wait pauses a retry loop for a while unless its context ends first.
package wait

import (
	"context"
	"time"
)

// Sleep waits for d and reports true, or reports false as soon as ctx
// ends. Unlike time.After, its timer is freed when ctx wins.
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

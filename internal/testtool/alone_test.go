package testtool

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Tests that take the lock never overlap, even from goroutines of one process (each holds
// its own open file, as separate processes do).
func TestAloneExcludes(t *testing.T) {
	t.Setenv(AloneEnv, filepath.Join(t.TempDir(), "lock"))
	var inside, overlaps atomic.Int32
	t.Run("group", func(t *testing.T) {
		for range 4 {
			t.Run("holder", func(t *testing.T) {
				t.Parallel()
				Alone(t)
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
				inside.Add(-1)
			})
		}
	})
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d holders overlapped", n)
	}
}

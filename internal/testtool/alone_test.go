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

// Heavy tests share the lock with each other, never with Alone.
func TestHeavySharesButNotWithAlone(t *testing.T) {
	t.Setenv(AloneEnv, filepath.Join(t.TempDir(), "lock"))
	var heavy, alone, maxHeavy, mixed atomic.Int32
	t.Run("group", func(t *testing.T) {
		for i := range 6 {
			t.Run("test", func(t *testing.T) {
				t.Parallel()
				if i%3 == 0 {
					Alone(t)
					alone.Add(1)
					if heavy.Load() > 0 {
						mixed.Add(1)
					}
					time.Sleep(20 * time.Millisecond)
					alone.Add(-1)
					return
				}
				Heavy(t)
				n := heavy.Add(1)
				for m := maxHeavy.Load(); n > m && !maxHeavy.CompareAndSwap(m, n); m = maxHeavy.Load() {
				}
				if alone.Load() > 0 {
					mixed.Add(1)
				}
				time.Sleep(50 * time.Millisecond)
				heavy.Add(-1)
			})
		}
	})
	if n := mixed.Load(); n != 0 {
		t.Errorf("%d times a heavy test and an Alone one overlapped", n)
	}
	if maxHeavy.Load() < 2 {
		t.Logf("heavy tests never ran together (%d at most): allowed, but unusual", maxHeavy.Load())
	}
}

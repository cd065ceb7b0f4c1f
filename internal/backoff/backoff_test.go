package backoff

import (
	"testing"
	"time"
)

func TestAccept(t *testing.T) {
	for i, w := range []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000} {
		if got := Accept(i + 1); got != w*time.Millisecond {
			t.Errorf("Accept(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
}

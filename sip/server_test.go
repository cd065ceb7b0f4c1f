package sip

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestReserveCall: however many INVITEs race for the last places, exactly MaxCalls get
// one, and 0 means no limit. https://github.com/hotline-project/hotline/issues/9
func TestReserveCall(t *testing.T) {
	tests := []struct {
		name            string
		max, busy, race int
		want            int
	}{
		{"room for three", 3, 0, 64, 3},
		{"one place left", 3, 2, 64, 1},
		{"full", 3, 3, 64, 0},
		{"no limit", 0, 100, 64, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{opts: Options{MaxCalls: tt.max}}
			s.active.Store(int64(tt.busy))
			var got atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range tt.race {
				wg.Go(func() {
					<-start
					if s.reserveCall() {
						got.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			if int(got.Load()) != tt.want || s.ActiveCalls() != tt.busy+tt.want {
				t.Fatalf("%d reserved, %d active; want %d and %d", got.Load(), s.ActiveCalls(), tt.want, tt.busy+tt.want)
			}
		})
	}
}

// Package backoff holds the wait between retries of a listener's failed Accept, shared by
// the SIP listeners (sip/gate) and the cluster port (state), so that running out of file
// descriptors slows a listener down and never stops it.
package backoff

import "time"

// Accept is how long to wait after the n-th accept error in a row (n from 1): 5 ms,
// doubling, at most 1 s.
func Accept(n int) time.Duration {
	d := 5 * time.Millisecond
	for i := 1; i < n && d < time.Second; i++ {
		d *= 2
	}
	return min(d, time.Second)
}

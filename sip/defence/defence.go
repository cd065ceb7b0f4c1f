// Package defence holds the SIP server's per-source defences (Limiter): a ban on an address
// that fails digest authentication too often, a token bucket of requests per address, and a
// cap on the calls in progress from one address; and the untrusted sources' call budget
// (Budget). It is pure: no network, and time is an argument.
//
// Sources are keyed by IPv4 address, or by IPv6 /64 (one subscriber's usual allocation, so
// that walking through the addresses of one /64 does not escape a ban). Addresses in
// Config.Trusted (the carrier's SIP trunk) are exempt from every limit.
//
// Every table is bounded: beyond Config.MaxSources entries the least recently used one is
// evicted, so a flood from spoofed source addresses costs bounded memory. Bans live in a
// table of their own, which only authentication failures fill, so a flood of requests
// cannot evict them; a banned source that keeps trying stays the most recently used.
package defence

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// DefaultMaxSources is Config.MaxSources when it is 0.
const DefaultMaxSources = 65536

// Config sets the limits. Its zero value limits nothing.
type Config struct {
	// AuthFailures failed authentications from one source within AuthWindow ban it for
	// BanFor; 0 never bans.
	AuthFailures int
	AuthWindow   time.Duration
	BanFor       time.Duration
	// Rate is the sustained number of requests per second one source may send, and Burst
	// how many it may send at once; Rate 0 puts no limit.
	Rate  float64
	Burst int
	// MaxCalls is how many calls one source may have in progress; 0 is no limit.
	MaxCalls int
	// Trusted sources are exempt from every limit.
	Trusted []netip.Prefix
	// MaxSources bounds each table; 0 is DefaultMaxSources.
	MaxSources int
	// NoRTPCalls calls from one source that never sent an RTP packet within NoRTPWindow
	// mark the source as flooding (see NoRTPCall); 0 never does.
	NoRTPCalls  int
	NoRTPWindow time.Duration
}

// Limiter applies a Config. It is safe for concurrent use.
type Limiter struct {
	cfg Config

	mu       sync.Mutex
	buckets  *simplelru.LRU[netip.Addr, *rate.Limiter]
	failures *simplelru.LRU[netip.Addr, []time.Time]
	bans     *simplelru.LRU[netip.Addr, time.Time] // source -> end of its ban
	// checking counts the credential checks in progress by source (BeginAuth): at most
	// the requests in flight, and empty entries are deleted.
	checking map[netip.Addr]int
	calls    map[netip.Addr]int                      // only sources with calls in progress
	noRTP    *simplelru.LRU[netip.Addr, []time.Time] // times of calls that sent no RTP
}

// New returns a Limiter for c.
func New(c Config) (*Limiter, error) {
	switch {
	case c.AuthFailures < 0 || c.Rate < 0 || c.Burst < 0 || c.MaxCalls < 0 || c.MaxSources < 0:
		return nil, errors.New("limit: negative setting")
	case c.AuthFailures > 0 && (c.AuthWindow <= 0 || c.BanFor <= 0):
		return nil, errors.New("limit: bans need a positive window and duration")
	case c.Rate > 0 && c.Burst < 1:
		return nil, errors.New("limit: a rate needs a burst of at least 1")
	case c.NoRTPCalls < 0 || (c.NoRTPCalls > 0 && c.NoRTPWindow <= 0):
		return nil, errors.New("limit: counting calls without rtp needs a positive window")
	}
	if c.MaxSources == 0 {
		c.MaxSources = DefaultMaxSources
	}
	l := &Limiter{cfg: c, calls: map[netip.Addr]int{}, checking: map[netip.Addr]int{}}
	var err error
	if l.buckets, err = simplelru.NewLRU[netip.Addr, *rate.Limiter](c.MaxSources, nil); err != nil {
		return nil, err
	}
	if l.failures, err = simplelru.NewLRU[netip.Addr, []time.Time](c.MaxSources, nil); err != nil {
		return nil, err
	}
	if l.bans, err = simplelru.NewLRU[netip.Addr, time.Time](c.MaxSources, nil); err != nil {
		return nil, err
	}
	if l.noRTP, err = simplelru.NewLRU[netip.Addr, []time.Time](c.MaxSources, nil); err != nil {
		return nil, err
	}
	return l, nil
}

// Key returns the table key of address a: a itself for IPv4 (and IPv4-mapped IPv6), its
// /64 for IPv6.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}

// Trusted reports whether a is in one of Config.Trusted.
func (l *Limiter) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.cfg.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Banned reports whether a is banned at now.
func (l *Limiter) Banned(now time.Time, a netip.Addr) bool {
	if l.cfg.AuthFailures == 0 || l.Trusted(a) {
		return false
	}
	k := Key(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.bans.Get(k)
	if !ok {
		return false
	}
	if !now.Before(until) {
		l.bans.Remove(k)
		return false
	}
	return true
}

// BeginAuth reserves a check of credentials from a at now, and reports whether it may
// go ahead: not when a is banned, nor when the failures it has within AuthWindow and the
// checks of its credentials still in progress make AuthFailures (were they all to fail,
// the ban would come after more than AuthFailures guesses). The request's handler checks
// the gate's ban before it runs, but a brute-forcer's requests in flight together all
// passed that check before any of them failed: without the reservation each one would
// be a guess past the limit. EndAuth must follow a true.
func (l *Limiter) BeginAuth(now time.Time, a netip.Addr) bool {
	if l.cfg.AuthFailures == 0 || l.Trusted(a) {
		return true
	}
	k := Key(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if until, ok := l.bans.Peek(k); ok && now.Before(until) {
		return false
	}
	n := l.checking[k]
	times, _ := l.failures.Peek(k)
	for _, t := range times {
		if now.Sub(t) < l.cfg.AuthWindow {
			n++
		}
	}
	if n >= l.cfg.AuthFailures {
		return false
	}
	l.checking[k]++
	return true
}

// EndAuth ends a check BeginAuth reserved; failed records it as a failed authentication
// (AuthFailed), and EndAuth then reports whether that failure banned a.
func (l *Limiter) EndAuth(now time.Time, a netip.Addr, failed bool) bool {
	if l.cfg.AuthFailures == 0 || l.Trusted(a) {
		return false
	}
	k := Key(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checking[k] <= 1 {
		delete(l.checking, k)
	} else {
		l.checking[k]--
	}
	return failed && l.authFailed(now, k)
}

// AuthFailed records a failed authentication from a at now. It returns true when this
// failure bans a: AuthFailures of them within AuthWindow.
func (l *Limiter) AuthFailed(now time.Time, a netip.Addr) bool {
	if l.cfg.AuthFailures == 0 || l.Trusted(a) {
		return false
	}
	k := Key(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.authFailed(now, k)
}

// authFailed is AuthFailed for the key k; l.mu is held.
func (l *Limiter) authFailed(now time.Time, k netip.Addr) bool {
	if until, ok := l.bans.Peek(k); ok && now.Before(until) {
		return false // already banned
	}
	times, _ := l.failures.Peek(k)
	kept := times[:0]
	for _, t := range times {
		if now.Sub(t) < l.cfg.AuthWindow {
			kept = append(kept, t)
		}
	}
	kept = append(kept, now)
	if len(kept) < l.cfg.AuthFailures {
		l.failures.Add(k, kept)
		return false
	}
	l.failures.Remove(k)
	l.bans.Add(k, now.Add(l.cfg.BanFor))
	return true
}

// BannedSources returns the number of sources banned at now, and forgets lapsed bans.
func (l *Limiter) BannedSources(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, k := range l.bans.Keys() {
		if until, ok := l.bans.Peek(k); ok && now.Before(until) {
			n++
		} else {
			l.bans.Remove(k)
		}
	}
	return n
}

// Allow takes a token from a's bucket at now; false means a is over its rate.
func (l *Limiter) Allow(now time.Time, a netip.Addr) bool {
	if l.cfg.Rate == 0 || l.Trusted(a) {
		return true
	}
	k := Key(a)
	l.mu.Lock()
	b, ok := l.buckets.Get(k)
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)
		l.buckets.Add(k, b)
	}
	l.mu.Unlock()
	return b.AllowN(now, 1)
}

// RetryAfter is how long a source over its rate should wait before it is let through
// again: the time one token takes, at least a second.
func (l *Limiter) RetryAfter() time.Duration {
	if l.cfg.Rate == 0 {
		return time.Second
	}
	return max(time.Second, time.Duration(float64(time.Second)/l.cfg.Rate))
}

// StartCall counts a call from a in progress, unless a already has MaxCalls: then it
// returns false and counts nothing. Each true must be matched by one EndCall.
func (l *Limiter) StartCall(a netip.Addr) bool {
	if l.cfg.MaxCalls == 0 || l.Trusted(a) {
		return true
	}
	k := Key(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls[k] >= l.cfg.MaxCalls {
		return false
	}
	l.calls[k]++
	return true
}

// EndCall counts the end of a call StartCall let through.
func (l *Limiter) EndCall(a netip.Addr) {
	if l.cfg.MaxCalls == 0 || l.Trusted(a) {
		return
	}
	k := Key(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls[k] <= 1 {
		delete(l.calls, k)
		return
	}
	l.calls[k]--
}

// NoRTPCall reports whether source a is flooding at now: it sent Config.NoRTPCalls calls
// that never sent an RTP packet within Config.NoRTPWindow before this one. With noRTP set,
// this call is one of them and is counted. Trusted sources are never flooding: the
// carrier's trunk carries every caller.
func (l *Limiter) NoRTPCall(now time.Time, a netip.Addr, noRTP bool) (flooding bool) {
	if l.cfg.NoRTPCalls == 0 || !a.IsValid() || l.Trusted(a) {
		return false
	}
	k := Key(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	times, _ := l.noRTP.Peek(k)
	kept := times[:0]
	for _, t := range times {
		if now.Sub(t) < l.cfg.NoRTPWindow {
			kept = append(kept, t)
		}
	}
	flooding = len(kept) >= l.cfg.NoRTPCalls
	if noRTP {
		if len(kept) >= l.cfg.NoRTPCalls { // enough to know: memory stays bounded
			kept = kept[1:]
		}
		kept = append(kept, now)
	}
	if len(kept) == 0 {
		l.noRTP.Remove(k)
	} else {
		l.noRTP.Add(k, kept)
	}
	return flooding
}

// Sources returns how many sources each table holds, for tests and debugging: buckets,
// failure records, bans and sources with calls in progress.
func (l *Limiter) Sources() (buckets, failures, bans, calls int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buckets.Len(), l.failures.Len(), l.bans.Len(), len(l.calls)
}

package defence

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func mustNew(t *testing.T, c Config) *Limiter {
	t.Helper()
	l, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		c    Config
	}{
		{"negative failures", Config{AuthFailures: -1}},
		{"ban without window", Config{AuthFailures: 3, BanFor: time.Minute}},
		{"ban without duration", Config{AuthFailures: 3, AuthWindow: time.Minute}},
		{"rate without burst", Config{Rate: 5}},
		{"negative calls", Config{MaxCalls: -2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.c); err == nil {
				t.Fatalf("New(%+v) accepted", tc.c)
			}
		})
	}
}

func TestBan(t *testing.T) {
	c := Config{AuthFailures: 3, AuthWindow: time.Minute, BanFor: 10 * time.Minute,
		Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	attacker := netip.MustParseAddr("203.0.113.9")
	other := netip.MustParseAddr("203.0.113.10")
	type step struct {
		at      time.Duration // since t0
		fail    netip.Addr    // record a failure from it (if valid)
		banning bool          // AuthFailed's result
		banned  map[netip.Addr]bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"three failures within the window ban", []step{
			{at: 0, fail: attacker},
			{at: 10 * time.Second, fail: attacker},
			{at: 20 * time.Second, fail: attacker, banning: true, banned: map[netip.Addr]bool{attacker: true, other: false}},
			{at: 10*time.Minute + 19*time.Second, banned: map[netip.Addr]bool{attacker: true}},
			{at: 10*time.Minute + 20*time.Second, banned: map[netip.Addr]bool{attacker: false}},
		}},
		{"failures spread over more than the window do not ban", []step{
			{at: 0, fail: attacker},
			{at: 40 * time.Second, fail: attacker},
			{at: 70 * time.Second, fail: attacker, banned: map[netip.Addr]bool{attacker: false}},
			{at: 90 * time.Second, fail: attacker, banning: true, banned: map[netip.Addr]bool{attacker: true}},
		}},
		{"failures from different sources do not add up", []step{
			{at: 0, fail: attacker},
			{at: 1 * time.Second, fail: other},
			{at: 2 * time.Second, fail: attacker},
			{at: 3 * time.Second, fail: other, banned: map[netip.Addr]bool{attacker: false, other: false}},
		}},
		{"trusted sources are never banned", []step{
			{at: 0, fail: netip.MustParseAddr("192.0.2.7")},
			{at: 1, fail: netip.MustParseAddr("192.0.2.7")},
			{at: 2, fail: netip.MustParseAddr("192.0.2.7"), banned: map[netip.Addr]bool{netip.MustParseAddr("192.0.2.7"): false}},
		}},
		{"one IPv6 /64 is one source", []step{
			{at: 0, fail: netip.MustParseAddr("2001:db8:1:2::1")},
			{at: 1, fail: netip.MustParseAddr("2001:db8:1:2::2")},
			{at: 2, fail: netip.MustParseAddr("2001:db8:1:2:ffff::3"), banning: true, banned: map[netip.Addr]bool{
				netip.MustParseAddr("2001:db8:1:2::99"): true, netip.MustParseAddr("2001:db8:1:3::1"): false}},
		}},
		{"IPv4-mapped IPv6 is the IPv4 source", []step{
			{at: 0, fail: attacker},
			{at: 1, fail: netip.MustParseAddr("::ffff:203.0.113.9")},
			{at: 2, fail: attacker, banning: true, banned: map[netip.Addr]bool{netip.MustParseAddr("::ffff:203.0.113.9"): true}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, c)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.fail.IsValid() {
					if got := l.AuthFailed(now, s.fail); got != s.banning {
						t.Fatalf("step %d: AuthFailed(%v) = %v, want %v", i, s.fail, got, s.banning)
					}
				}
				for a, want := range s.banned {
					if got := l.Banned(now, a); got != want {
						t.Fatalf("step %d: Banned(%v) = %v, want %v", i, a, got, want)
					}
				}
			}
		})
	}
}

func TestBannedSourcesForgetsLapsedBans(t *testing.T) {
	l := mustNew(t, Config{AuthFailures: 1, AuthWindow: time.Minute, BanFor: time.Minute})
	l.AuthFailed(t0, netip.MustParseAddr("198.51.100.1"))
	l.AuthFailed(t0.Add(30*time.Second), netip.MustParseAddr("198.51.100.2"))
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{40 * time.Second, 2}, {time.Minute, 1}, {90 * time.Second, 0}} {
		if got := l.BannedSources(t0.Add(tc.at)); got != tc.want {
			t.Errorf("BannedSources at +%v = %d, want %d", tc.at, got, tc.want)
		}
	}
	if _, _, bans, _ := l.Sources(); bans != 0 {
		t.Errorf("%d lapsed bans kept", bans)
	}
}

func TestAllow(t *testing.T) {
	l := mustNew(t, Config{Rate: 10, Burst: 5, Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}})
	flooder := netip.MustParseAddr("203.0.113.2")
	caller := netip.MustParseAddr("203.0.113.3")
	trusted := netip.MustParseAddr("192.0.2.1")
	count := func(a netip.Addr, now time.Time, n int) int {
		ok := 0
		for range n {
			if l.Allow(now, a) {
				ok++
			}
		}
		return ok
	}
	tests := []struct {
		name string
		a    netip.Addr
		at   time.Duration
		n    int
		want int
	}{
		{"a burst is let through", flooder, 0, 5, 5},
		{"then nothing", flooder, 0, 100, 0},
		{"another source has its own bucket", caller, 0, 5, 5},
		{"tokens come back at the rate", flooder, 500 * time.Millisecond, 100, 5},
		{"never more than the burst", flooder, time.Hour, 100, 5},
		{"trusted sources are not limited", trusted, 0, 1000, 1000},
	}
	for _, tc := range tests {
		if got := count(tc.a, t0.Add(tc.at), tc.n); got != tc.want {
			t.Errorf("%s: %d of %d allowed, want %d", tc.name, got, tc.n, tc.want)
		}
	}
	if got := l.RetryAfter(); got != time.Second {
		t.Errorf("RetryAfter = %v, want 1s", got)
	}
}

// TestTablesStayBounded floods from many (spoofed) sources: memory stays bounded, and the
// flood does not evict a ban.
func TestTablesStayBounded(t *testing.T) {
	const max = 100
	l := mustNew(t, Config{Rate: 1, Burst: 1, AuthFailures: 2, AuthWindow: time.Minute, BanFor: time.Hour, MaxSources: max})
	attacker := netip.MustParseAddr("203.0.113.66")
	l.AuthFailed(t0, attacker)
	l.AuthFailed(t0, attacker)
	for i := range 10 * max {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Allow(t0, a)
		if i%2 == 0 {
			l.AuthFailed(t0, a) // one failure each: recorded, not banned
		}
	}
	buckets, failures, bans, _ := l.Sources()
	if buckets > max || failures > max || bans > max {
		t.Errorf("tables hold %d buckets, %d failures, %d bans; want at most %d each", buckets, failures, bans, max)
	}
	if !l.Banned(t0.Add(time.Minute), attacker) {
		t.Error("the flood evicted the ban")
	}
}

func TestCalls(t *testing.T) {
	l := mustNew(t, Config{MaxCalls: 2, Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	a := netip.MustParseAddr("203.0.113.5")
	b := netip.MustParseAddr("203.0.113.6")
	trunk := netip.MustParseAddr("192.0.2.1")
	steps := []struct {
		op   string // start or end
		a    netip.Addr
		want bool
	}{
		{"start", a, true}, {"start", a, true}, {"start", a, false},
		{"start", b, true},
		{"end", a, true}, {"start", a, true}, {"start", a, false},
		{"start", trunk, true}, {"start", trunk, true}, {"start", trunk, true},
		{"end", a, true}, {"end", a, true}, {"end", b, true},
	}
	for i, s := range steps {
		if s.op == "end" {
			l.EndCall(s.a)
			continue
		}
		if got := l.StartCall(s.a); got != s.want {
			t.Fatalf("step %d: StartCall(%v) = %v, want %v", i, s.a, got, s.want)
		}
	}
	if _, _, _, calls := l.Sources(); calls != 0 {
		t.Errorf("%d sources still counted with no calls in progress", calls)
	}
}

func TestZeroConfigLimitsNothing(t *testing.T) {
	l := mustNew(t, Config{})
	a := netip.MustParseAddr("203.0.113.1")
	for range 1000 {
		if !l.Allow(t0, a) || !l.StartCall(a) || l.AuthFailed(t0, a) || l.Banned(t0, a) {
			t.Fatal("the zero Config limited something")
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	l, _ := New(Config{Rate: 1e9, Burst: 1 << 30})
	a := netip.MustParseAddr("203.0.113.1")
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(t0, a)
	}
}

// Credential checks in flight count against the limit: a brute-forcer's requests sent
// together cannot all be checked before the first failures are counted.
func TestBeginAuthReservesChecks(t *testing.T) {
	l := mustNew(t, Config{AuthFailures: 3, AuthWindow: time.Minute, BanFor: 10 * time.Minute,
		Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}})
	now := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	src := netip.MustParseAddr("198.51.100.7")
	// Three checks at once: the fourth is refused before any has ended.
	for i := range 3 {
		if !l.BeginAuth(now, src) {
			t.Fatalf("check %d refused; want 3 at once", i+1)
		}
	}
	if l.BeginAuth(now, src) {
		t.Fatal("a fourth check in flight allowed; auth_failures is 3")
	}
	// One succeeds: its place is free again.
	if l.EndAuth(now, src, false) {
		t.Fatal("a success banned the source")
	}
	if !l.BeginAuth(now, src) {
		t.Fatal("a check refused after one ended well")
	}
	// Two fail: two failures and one check in flight make three, so nothing more.
	for range 2 {
		if l.EndAuth(now, src, true) {
			t.Fatal("banned before the third failure")
		}
	}
	if l.BeginAuth(now, src) {
		t.Fatal("a check allowed with two failures and one in flight")
	}
	if !l.EndAuth(now, src, true) {
		t.Fatal("the third failure did not ban the source")
	}
	if l.BeginAuth(now.Add(time.Minute), src) || !l.Banned(now.Add(time.Minute), src) {
		t.Fatal("a banned source's credentials are checked")
	}
	// After the ban and the window, checks go on; the failures were forgotten with the ban.
	later := now.Add(11 * time.Minute)
	if !l.BeginAuth(later, src) {
		t.Fatal("a check refused once the ban lapsed")
	}
	l.EndAuth(later, src, false)
	if n := len(l.checking); n != 0 {
		t.Errorf("%d sources left in the checks in flight; want none", n)
	}
	// Trusted sources are not limited.
	trusted := netip.MustParseAddr("192.0.2.1")
	for range 10 {
		if !l.BeginAuth(now, trusted) {
			t.Fatal("a trusted source's check refused")
		}
	}
}

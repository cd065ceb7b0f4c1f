package digest

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	icholy "github.com/icholy/digest"
)

// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
func TestRFC7616Vectors(t *testing.T) {
	const (
		user   = "Mufasa"
		realm  = "http-auth@example.org"
		pass   = "Circle of Life"
		nonce  = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
		cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
		uri    = "/dir/index.html"
	)
	tests := []struct {
		alg  string
		want string
	}{
		{MD5, "8ca523f5e9506fed4657c9700eebdbec"},
		{SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			ha1, err := ComputeHA1(tt.alg, user, realm, pass)
			if err != nil {
				t.Fatal(err)
			}
			got := response(newHash(tt.alg), ha1, nonce, 1, cnonce, "auth", "GET", uri)
			if got != tt.want {
				t.Errorf("response = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := ComputeHA1("SHA-512", user, realm, pass); err == nil {
		t.Error("ComputeHA1(SHA-512) succeeded, want an error")
	}
}

const (
	testRealm = "hotline"
	testURI   = "sip:hotline.example.org"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestAuth(t testing.TB, maxNonces int) *Authenticator {
	t.Helper()
	return newTestAuthWith(t, Options{MaxNonces: maxNonces, Algorithms: []string{MD5, SHA256}})
}

// testUsers are alice and bob, with both HA1 values, and carol, with only SHA-256.
func testUsers() map[string]HA1 {
	users := map[string]HA1{}
	for user, pass := range map[string]string{"alice": "correct horse", "bob": "battery staple"} {
		s, _ := ComputeHA1(SHA256, user, testRealm, pass)
		m, _ := ComputeHA1(MD5, user, testRealm, pass)
		users[user] = HA1{SHA256: strings.ToUpper(s), MD5: m} // case of stored hex does not matter
	}
	// carol has only an SHA-256 HA1.
	s, _ := ComputeHA1(SHA256, "carol", testRealm, "pw")
	users["carol"] = HA1{SHA256: s}
	return users
}

// newTestAuthWith is an Authenticator for testUsers with o's other options.
func newTestAuthWith(t testing.TB, o Options) *Authenticator {
	t.Helper()
	users := testUsers()
	o.Realm = testRealm
	o.Lookup = func(u string) (HA1, bool) { h, ok := users[u]; return h, ok }
	o.Key = []byte("test key")
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// challenge returns the parsed challenge for alg from a fresh 401 to alice at now.
func challenge(t testing.TB, a *Authenticator, now time.Time, alg string) *icholy.Challenge {
	t.Helper()
	for _, v := range a.Challenges(now, "alice", false) {
		c, err := icholy.ParseChallenge(v)
		if err != nil {
			t.Fatalf("ParseChallenge(%q): %v", v, err)
		}
		if c.Algorithm == alg {
			return c
		}
	}
	t.Fatalf("no %s challenge", alg)
	return nil
}

// sign answers chal as a client would.
func sign(t testing.TB, chal *icholy.Challenge, user, pass, method, uri string, nc int) string {
	t.Helper()
	c, err := icholy.Digest(chal, icholy.Options{Method: method, URI: uri, Username: user, Password: pass, Count: nc})
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

func TestChallenges(t *testing.T) {
	a := newTestAuth(t, 0)
	got := a.Challenges(t0, "alice", true)
	if len(got) != 2 {
		t.Fatalf("got %d challenges, want 2", len(got))
	}
	for i, alg := range []string{MD5, SHA256} {
		c, err := icholy.ParseChallenge(got[i])
		if err != nil {
			t.Fatal(err)
		}
		if c.Algorithm != alg || c.Realm != testRealm || !c.Stale || len(c.QOP) != 1 || c.QOP[0] != "auth" {
			t.Errorf("challenge %d = %+v, want %s realm %s stale qop auth", i, c, alg, testRealm)
		}
	}
	c0, _ := icholy.ParseChallenge(got[0])
	c1, _ := icholy.ParseChallenge(got[1])
	if c0.Nonce != c1.Nonce {
		t.Errorf("challenges carry different nonces %q and %q", c0.Nonce, c1.Nonce)
	}
	if again := challenge(t, a, t0, SHA256); again.Nonce == c0.Nonce {
		t.Errorf("two challenges share nonce %q", again.Nonce)
	}
}

// algorithmsOf returns the algorithm of each challenge, in order, and checks that all share
// one nonce.
func algorithmsOf(t *testing.T, chals []string) []string {
	t.Helper()
	var algs []string
	nonce := ""
	for _, v := range chals {
		c, err := icholy.ParseChallenge(v)
		if err != nil {
			t.Fatalf("ParseChallenge(%q): %v", v, err)
		}
		if nonce != "" && c.Nonce != nonce {
			t.Errorf("challenges carry different nonces")
		}
		nonce = c.Nonce
		algs = append(algs, c.Algorithm)
	}
	return algs
}

// Issue 13: stock phones must find a challenge they can answer: baresip 1.0 refuses a 401
// with any challenge but MD5, SIPp 3.6 reads only the first. A user is offered only the
// algorithms it has an HA1 value for, in the configured order, MD5 alone by default; a user
// name with no account is offered what the most common kind of account is.
func TestChallengeAlgorithms(t *testing.T) {
	users := testUsers() // alice, bob: both; carol: SHA-256 only
	mdOnly := map[string]HA1{"dan": {MD5: "00"}, "eve": {MD5: "11"}, "fay": {MD5: "22", SHA256: "33"}}
	both := []string{MD5, SHA256}
	tests := []struct {
		name     string
		algs     []string
		accounts map[string]HA1
		user     string
		want     []string
	}{
		{"default: md5 alone", nil, users, "alice", []string{MD5}},
		{"default, unknown", nil, users, "mallory", []string{MD5}},
		{"md5 first", both, users, "alice", []string{MD5, SHA256}},
		{"sha-256 first", []string{SHA256, MD5}, users, "alice", []string{SHA256, MD5}},
		{"only what the user has", both, users, "carol", []string{SHA256}},
		{"only what is configured", []string{MD5}, users, "bob", []string{MD5}},
		{"unknown: like most accounts", both, users, "mallory", []string{MD5, SHA256}},
		{"unknown: like most accounts, configured order", []string{SHA256, MD5}, users, "mallory", []string{SHA256, MD5}},
		{"unknown where most have md5 only", both, mdOnly, "mallory", []string{MD5}},
		{"no user name", both, users, "", []string{MD5, SHA256}},
		{"decoy has nothing configured: everything", []string{SHA256}, mdOnly, "mallory", []string{SHA256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accounts := tt.accounts
			a, err := New(Options{Realm: testRealm, Algorithms: tt.algs,
				Lookup: func(u string) (HA1, bool) { h, ok := accounts[u]; return h, ok },
				Decoy:  func() HA1 { return Typical(accounts) }})
			if err != nil {
				t.Fatal(err)
			}
			got := algorithmsOf(t, a.Challenges(t0, tt.user, false))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Challenges(%q) offer %v, want %v", tt.user, got, tt.want)
			}
		})
	}
}

// A user name with no account gets exactly the challenge a typical account gets, byte for
// byte but the nonce.
func TestUnknownUserChallengeLikeKnown(t *testing.T) {
	users := testUsers()
	a := newTestAuthWith(t, Options{Algorithms: []string{SHA256, MD5}, Decoy: func() HA1 { return Typical(users) }})
	strip := func(vs []string) string {
		var b strings.Builder
		for _, v := range vs {
			c, err := icholy.ParseChallenge(v)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(strings.Replace(v, c.Nonce, "NONCE", 1) + "\n")
		}
		return b.String()
	}
	known := strip(a.Challenges(t0, "alice", true))
	if unknown := strip(a.Challenges(t0, "mallory", true)); unknown != known {
		t.Errorf("unknown user's challenge\n%s\nknown user's\n%s", unknown, known)
	}
}

func TestTypical(t *testing.T) {
	both, md, sha := HA1{MD5: "a", SHA256: "b"}, HA1{MD5: "a"}, HA1{SHA256: "b"}
	tests := []struct {
		name     string
		accounts []HA1
		want     HA1
	}{
		{"none", nil, HA1{MD5: "-", SHA256: "-"}},
		{"all both", []HA1{both, both}, HA1{MD5: "-", SHA256: "-"}},
		{"most md5", []HA1{md, md, both}, HA1{MD5: "-"}},
		{"most sha-256", []HA1{sha, sha, md}, HA1{SHA256: "-"}},
		{"tie goes to both", []HA1{md, both}, HA1{MD5: "-", SHA256: "-"}},
		{"empty accounts ignored", []HA1{{}, {}, {}, md}, HA1{MD5: "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]HA1{}
			for i, h := range tt.accounts {
				m[strconv.Itoa(i)] = h
			}
			if got := Typical(m); got != tt.want {
				t.Errorf("Typical = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Credentials computed with an algorithm the configuration does not offer are refused,
// even when right: an operator who lists only SHA-256 turns MD5 off.
func TestVerifyOnlyConfiguredAlgorithms(t *testing.T) {
	full := newTestAuth(t, 0)
	a := newTestAuthWith(t, Options{Algorithms: []string{SHA256}})
	md5Chal := challenge(t, full, t0, MD5)
	h := sign(t, md5Chal, "bob", "battery staple", "REGISTER", testURI, 1)
	// The nonce is a's own, so only the algorithm is wrong.
	sha := challenge(t, a, t0, SHA256)
	h = strings.Replace(h, md5Chal.Nonce, sha.Nonce, 1)
	if _, err := a.Verify(t0, Request{Method: "REGISTER", Authorization: []string{h}}); !errors.Is(err, ErrMismatch) {
		t.Errorf("MD5 credentials with only SHA-256 configured: %v, want %v", err, ErrMismatch)
	}
	h = sign(t, sha, "bob", "battery staple", "REGISTER", testURI, 1)
	if user, err := a.Verify(t0, Request{Method: "REGISTER", Authorization: []string{h}}); err != nil || user != "bob" {
		t.Errorf("SHA-256 credentials: %q, %v", user, err)
	}
}

func TestVerify(t *testing.T) {
	later := t0.Add(DefaultNonceLifetime + time.Second)
	tests := []struct {
		name     string
		alg      string
		user     string
		pass     string
		uri      string // signed digest-uri; "" = testURI
		now      time.Time
		edit     func(h string) string
		wantUser string
		wantErr  error
	}{
		{name: "sha-256", alg: SHA256, user: "alice", pass: "correct horse", wantUser: "alice"},
		{name: "md5", alg: MD5, user: "bob", pass: "battery staple", wantUser: "bob"},
		{name: "wrong password", alg: SHA256, user: "alice", pass: "wrong", wantErr: ErrBadCredentials},
		{name: "unknown user", alg: SHA256, user: "mallory", pass: "correct horse", wantErr: ErrBadCredentials},
		{name: "md5 without md5 ha1", alg: MD5, user: "carol", pass: "pw", wantErr: ErrBadCredentials},
		{name: "another user's password", alg: MD5, user: "alice", pass: "battery staple", wantErr: ErrBadCredentials},
		{name: "stale", alg: SHA256, user: "alice", pass: "correct horse", now: later, wantErr: ErrStale},
		{name: "stale and wrong", alg: SHA256, user: "alice", pass: "wrong", now: later, wantErr: ErrBadCredentials},
		{name: "nonce from the future", alg: SHA256, user: "alice", pass: "correct horse", now: t0.Add(-time.Hour), wantErr: ErrStale},
		{name: "other uri", alg: SHA256, user: "alice", pass: "correct horse", uri: "sip:elsewhere.example.org", wantErr: ErrMismatch},
		{name: "other realm", alg: SHA256, user: "alice", pass: "correct horse",
			edit: func(h string) string { return strings.Replace(h, `realm="hotline"`, `realm="other"`, 1) }, wantErr: ErrMismatch},
		{name: "unsupported algorithm", alg: SHA256, user: "alice", pass: "correct horse",
			edit: func(h string) string { return strings.Replace(h, "algorithm=SHA-256", "algorithm=SHA-512", 1) }, wantErr: ErrMismatch},
		{name: "algorithm changed", alg: SHA256, user: "alice", pass: "correct horse",
			edit: func(h string) string { return strings.Replace(h, "algorithm=SHA-256", "algorithm=MD5", 1) }, wantErr: ErrBadCredentials},
		{name: "no qop", alg: SHA256, user: "alice", pass: "correct horse",
			edit: func(h string) string { return strings.Replace(h, "qop=auth", "", 1) }, wantErr: ErrMalformed},
		{name: "forged nonce", alg: SHA256, user: "alice", pass: "correct horse",
			edit: func(h string) string { i := strings.Index(h, `nonce="`) + 8; return h[:i] + "A" + h[i+1:] }, wantErr: ErrBadNonce},
		{name: "response case", alg: SHA256, user: "alice", pass: "correct horse", edit: upperResponse, wantUser: "alice"},
		{name: "basic", edit: func(string) string { return "Basic YWxpY2U6cHc=" }, wantErr: ErrNoCredentials},
		{name: "garbage", edit: func(string) string { return `Digest username="alice", ===` }, wantErr: ErrMalformed},
		{name: "fields missing", edit: func(string) string { return `Digest realm="hotline"` }, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAuth(t, 0)
			h := ""
			if tt.alg != "" {
				uri := tt.uri
				if uri == "" {
					uri = testURI
				}
				h = sign(t, challenge(t, a, t0, tt.alg), tt.user, tt.pass, "REGISTER", uri, 1)
			}
			if tt.edit != nil {
				h = tt.edit(h)
			}
			now := tt.now
			if now.IsZero() {
				now = t0.Add(time.Second)
			}
			user, err := a.Verify(now, Request{Method: "REGISTER", Authorization: []string{h},
				MatchURI: func(u string) bool { return u == testURI }})
			if user != tt.wantUser || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Verify(%s) = %q, %v; want %q, %v", h, user, err, tt.wantUser, tt.wantErr)
			}
		})
	}
}

func upperResponse(h string) string {
	i := strings.Index(h, `response="`) + len(`response="`)
	return h[:i] + strings.ToUpper(h[i:])
}

// An unknown user and a wrong password fail with the same error, so that nothing a client
// sees (the error picks the answer) tells whether an account exists.
func TestUnknownUserIndistinguishable(t *testing.T) {
	a := newTestAuth(t, 0)
	chal := challenge(t, a, t0, SHA256)
	var errs []error
	for _, user := range []string{"alice", "nobody"} {
		h := sign(t, chal, user, "guess", "REGISTER", testURI, 1)
		_, err := a.Verify(t0, Request{Method: "REGISTER", Authorization: []string{h}})
		errs = append(errs, err)
	}
	if errs[0] != errs[1] || errs[0] != ErrBadCredentials {
		t.Errorf("wrong password: %v, unknown user: %v; want both %v", errs[0], errs[1], ErrBadCredentials)
	}
}

func TestNonceCount(t *testing.T) {
	a := newTestAuth(t, 0)
	chal := challenge(t, a, t0, MD5)
	verify := func(nc int) error {
		h := sign(t, chal, "bob", "battery staple", "REGISTER", testURI, nc)
		_, err := a.Verify(t0, Request{Method: "REGISTER", Authorization: []string{h}})
		return err
	}
	steps := []struct {
		nc   int
		want error
	}{
		{1, nil},
		{1, ErrReplay},
		{2, nil},
		{5, nil}, // counts may skip (requests lost on the way)
		{3, ErrReplay},
		{5, ErrReplay},
		{6, nil},
	}
	for i, s := range steps {
		if err := verify(s.nc); !errors.Is(err, s.want) || (err == nil) != (s.want == nil) {
			t.Errorf("step %d: nc=%d: %v, want %v", i, s.nc, err, s.want)
		}
	}
	// A wrong answer does not advance the count, so it cannot lock the real user out.
	h := sign(t, chal, "bob", "wrong", "REGISTER", testURI, 100)
	if _, err := a.Verify(t0, Request{Method: "REGISTER", Authorization: []string{h}}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := verify(7); err != nil {
		t.Errorf("nc=7 after a failed nc=100: %v", err)
	}
}

// With room for only two nonces' counts, using a third forgets the first; the first is
// then stale rather than open to replay.
func TestMaxNonces(t *testing.T) {
	a := newTestAuth(t, 2)
	var chals []*icholy.Challenge
	for i := range 3 {
		chals = append(chals, challenge(t, a, t0.Add(time.Duration(i)*time.Second), SHA256))
	}
	now := t0.Add(10 * time.Second)
	verify := func(i, nc int) error {
		h := sign(t, chals[i], "alice", "correct horse", "REGISTER", testURI, nc)
		_, err := a.Verify(now, Request{Method: "REGISTER", Authorization: []string{h}})
		return err
	}
	for i := range 3 {
		if err := verify(i, 1); err != nil {
			t.Fatalf("nonce %d: %v", i, err)
		}
	}
	if err := verify(0, 1); !errors.Is(err, ErrStale) {
		t.Errorf("replay of a forgotten nonce: %v, want %v", err, ErrStale)
	}
	if err := verify(2, 1); !errors.Is(err, ErrReplay) {
		t.Errorf("replay of a remembered nonce: %v, want %v", err, ErrReplay)
	}
	a.mu.Lock()
	n := len(a.counts)
	a.mu.Unlock()
	if n > 2 {
		t.Errorf("%d nonces remembered, want at most 2", n)
	}
}

// Nonces whose lifetime is over are forgotten as time passes, without a limit being hit.
func TestExpiredNoncesForgotten(t *testing.T) {
	a := newTestAuth(t, 0)
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Minute)
		chal := challenge(t, a, at, SHA256)
		h := sign(t, chal, "alice", "correct horse", "REGISTER", testURI, 1)
		if _, err := a.Verify(at, Request{Method: "REGISTER", Authorization: []string{h}}); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	n := len(a.counts)
	a.mu.Unlock()
	if max := int(DefaultNonceLifetime/time.Minute) + 1; n > max {
		t.Errorf("%d nonces remembered, want at most %d", n, max)
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		ErrNoCredentials: "missing", ErrMalformed: "malformed", ErrMismatch: "mismatch",
		ErrBadNonce: "bad_nonce", ErrStale: "stale", ErrReplay: "replay",
		ErrBadCredentials: "bad_credentials", errors.New("x"): "other",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	look := func(string) (HA1, bool) { return HA1{}, false }
	for _, o := range []Options{{Lookup: look}, {Realm: "x"}, {Realm: `a"b`, Lookup: look},
		{Realm: "x", Lookup: look, Algorithms: []string{"SHA-512"}},
		{Realm: "x", Lookup: look, Algorithms: []string{"MD5", "md5"}}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func FuzzVerify(f *testing.F) {
	a := newTestAuth(f, 16)
	chal := challenge(f, a, t0, SHA256)
	f.Add(sign(f, chal, "alice", "correct horse", "REGISTER", testURI, 1))
	f.Add(sign(f, chal, "alice", "wrong", "INVITE", testURI, 2))
	f.Add(`Digest username="a\"b", realm="hotline", nonce="", uri="sip:x", response="", nc=zz`)
	f.Add(`Digest username="alice" realm="hotline"`)
	f.Add(`Digest nc=-1, qop=auth, cnonce="x", username="a", nonce="b", uri="c", response="d", realm="hotline"`)
	f.Add("Digest \x00\xff")
	f.Fuzz(func(t *testing.T, h string) {
		user, err := a.Verify(t0, Request{Method: "REGISTER", Authorization: []string{h}})
		if (user == "") == (err == nil) {
			t.Fatalf("Verify(%q) = %q, %v; want a user or an error", h, user, err)
		}
		if err == nil && user != "alice" {
			t.Fatalf("Verify(%q) authenticated %q", h, user)
		}
		if err != nil && Reason(err) == "other" {
			t.Fatalf("Verify(%q): error %v outside the package's set", h, err)
		}
	})
}

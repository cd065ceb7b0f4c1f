package digest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"

	icholy "github.com/icholy/digest"
)

// The algorithms this package speaks, by their names in challenges (RFC 7616 §6.1).
const (
	SHA256 = "SHA-256"
	MD5    = "MD5"
)

// DefaultAlgorithms is what challenges offer unless Options.Algorithms says otherwise: MD5
// alone. Phones in service fail on anything else: Debian's baresip 1.0 (libre 1.1) gives up
// on a 401 that carries any challenge other than MD5 ("Function not implemented"), and SIPp
// 3.6 and many desk phones read only the first challenge. RFC 8760 §2.4 has clients take the
// topmost challenge they support, so with MD5 listed first SHA-256 would hardly ever be
// used anyway; where every phone speaks SHA-256, offer [SHA256] or [SHA256, MD5].
var DefaultAlgorithms = []string{MD5}

// Defaults for Options.
const (
	DefaultNonceLifetime = 5 * time.Minute
	DefaultMaxNonces     = 100_000
	// clockSkew is how far in the future a nonce's timestamp may be (a clock step back)
	// before it is treated as stale.
	clockSkew = time.Minute
)

// HA1 holds a user's stored HA1 values, H(username ":" realm ":" password), as hex. Either
// may be empty: that algorithm is then not offered to the user, and a client answering with
// it fails as a wrong password would.
type HA1 struct {
	SHA256 string
	MD5    string
}

// has reports whether h has a value for alg (one of the package's algorithm names).
func (h HA1) has(alg string) bool {
	if alg == MD5 {
		return h.MD5 != ""
	}
	return h.SHA256 != ""
}

// Typical returns the shape most accounts share: an HA1 whose fields are set (to a
// placeholder, not a usable value) where the most common combination of the accounts' HA1
// values is set; ties go to the combination with more algorithms. An unknown user name is
// challenged as if it had this shape (Options.Decoy), so that its challenge looks like those
// of most known users. With no accounts, both fields are set.
func Typical(accounts map[string]HA1) HA1 {
	var counts [4]int // index: bit 0 MD5, bit 1 SHA-256
	for _, h := range accounts {
		i := 0
		if h.MD5 != "" {
			i |= 1
		}
		if h.SHA256 != "" {
			i |= 2
		}
		counts[i]++
	}
	best := 3
	for _, i := range []int{1, 2} { // both first, then one algorithm; never neither
		if counts[i] > counts[best] {
			best = i
		}
	}
	var out HA1
	if best&1 != 0 {
		out.MD5 = "-"
	}
	if best&2 != 0 {
		out.SHA256 = "-"
	}
	return out
}

// CanonicalAlgorithm returns the package's name for algorithm, matched without regard to
// case, and whether it is one this package speaks.
func CanonicalAlgorithm(algorithm string) (string, bool) {
	switch strings.ToUpper(algorithm) {
	case MD5:
		return MD5, true
	case SHA256:
		return SHA256, true
	}
	return "", false
}

// Options configure an Authenticator.
type Options struct {
	// Realm is put in challenges and required in credentials. HA1 values depend on it.
	Realm string
	// Lookup returns the HA1 values of a user. It must be safe for concurrent use.
	Lookup func(username string) (HA1, bool)
	// Algorithms are the algorithms challenges offer, in this order (MD5, SHA256); a user
	// is offered those it has an HA1 value for, and credentials with any other are refused.
	// Default DefaultAlgorithms.
	Algorithms []string
	// Decoy returns the shape (which fields are set; see Typical) a user name with no
	// account is challenged as, so that the challenge does not tell it from a real
	// account's. Nil offers such names every algorithm. It must be cheap and safe for
	// concurrent use.
	Decoy func() HA1
	// NonceLifetime is how long a nonce is accepted; after that a correct answer is
	// met with a stale challenge. Default DefaultNonceLifetime.
	NonceLifetime time.Duration
	// MaxNonces bounds how many nonces have their nonce-count remembered. When more are
	// in use the oldest are forgotten and treated as stale. Default DefaultMaxNonces.
	MaxNonces int
	// Key is the HMAC key nonces are signed with; nil picks a random one, so nonces do
	// not survive a restart (clients simply get a stale challenge).
	Key []byte
}

// Authenticator issues challenges and verifies credentials. It is safe for concurrent use.
type Authenticator struct {
	realm    string
	lookup   func(string) (HA1, bool)
	lifetime time.Duration
	max      int
	key      []byte
	dummy    HA1
	algs     []string
	decoy    func() HA1

	mu     sync.Mutex
	counts map[string]uint32 // nonce -> highest nonce-count accepted
	order  []used            // nonces in counts, in order of first use
	head   int               // order[:head] are gone
	floor  int64             // nonces issued at or before this (unix ns) were forgotten
}

type used struct {
	nonce  string
	issued int64
}

// New returns an Authenticator.
func New(o Options) (*Authenticator, error) {
	if o.Realm == "" || o.Lookup == nil {
		return nil, errors.New("digest: Realm and Lookup are required")
	}
	if strings.ContainsAny(o.Realm, "\"\\\r\n") {
		return nil, fmt.Errorf("digest: realm %q has a quote, backslash or line break", o.Realm)
	}
	if o.NonceLifetime <= 0 {
		o.NonceLifetime = DefaultNonceLifetime
	}
	if o.MaxNonces <= 0 {
		o.MaxNonces = DefaultMaxNonces
	}
	key := o.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("digest: nonce key: %w", err)
		}
	}
	algs := o.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	seen := map[string]bool{}
	canon := make([]string, 0, len(algs))
	for _, alg := range algs {
		c, ok := CanonicalAlgorithm(alg)
		if !ok {
			return nil, fmt.Errorf("digest: unsupported algorithm %q", alg)
		}
		if seen[c] {
			return nil, fmt.Errorf("digest: algorithm %s listed twice", c)
		}
		seen[c] = true
		canon = append(canon, c)
	}
	decoy := o.Decoy
	if decoy == nil {
		decoy = func() HA1 { return HA1{SHA256: "-", MD5: "-"} }
	}
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, fmt.Errorf("digest: dummy secret: %w", err)
	}
	secret := hex.EncodeToString(pw[:])
	return &Authenticator{
		realm:    o.Realm,
		lookup:   o.Lookup,
		lifetime: o.NonceLifetime,
		max:      o.MaxNonces,
		key:      bytes.Clone(key),
		dummy: HA1{
			SHA256: hashJoin(sha256.New(), "-", o.Realm, secret),
			MD5:    hashJoin(md5.New(), "-", o.Realm, secret),
		},
		algs:   canon,
		decoy:  decoy,
		counts: map[string]uint32{},
	}, nil
}

// Realm returns the realm challenges name.
func (a *Authenticator) Realm() string { return a.realm }

// ComputeHA1 returns H(username ":" realm ":" password) as hex for algorithm SHA256 or MD5.
func ComputeHA1(algorithm, username, realm, password string) (string, error) {
	h := newHash(algorithm)
	if h == nil {
		return "", fmt.Errorf("digest: unsupported algorithm %q", algorithm)
	}
	return hashJoin(h, username, realm, password), nil
}

// Challenges returns the values of the WWW-Authenticate headers of a 401 to username (the
// user the request claims to be, "" when it names none): one per configured algorithm the
// user has an HA1 value for, in the configured order, sharing one fresh nonce, with
// qop="auth", and stale=true when stale is set. A user name with no account gets the
// challenges of the decoy shape, so the answer does not tell whether an account exists.
func (a *Authenticator) Challenges(now time.Time, username string, stale bool) []string {
	offer := a.offered(username)
	nonce := a.newNonce(now)
	out := make([]string, 0, len(offer))
	for _, alg := range offer {
		c := icholy.Challenge{Realm: a.realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// offered returns the algorithms username is challenged with: the configured ones it has an
// HA1 value for, or, for a user name with no account (or one with no usable value), those of
// the decoy shape. The list is never empty: if the shape leaves nothing, every configured
// algorithm is offered.
func (a *Authenticator) offered(username string) []string {
	var offer []string
	if h, known := a.lookup(username); known {
		offer = Offer(a.algs, h)
	}
	if len(offer) == 0 {
		offer = Offer(a.algs, a.decoy())
	}
	if len(offer) == 0 {
		offer = a.algs
	}
	return offer
}

// Offer returns the algorithms of algs (in their order) that h has a value for: what a
// user with h is challenged with.
func Offer(algs []string, h HA1) []string {
	var out []string
	for _, alg := range algs {
		if h.has(alg) {
			out = append(out, alg)
		}
	}
	return out
}

// Request is what Verify needs of the request being authenticated.
type Request struct {
	// Method is the SIP method (A2 = method ":" digest-uri).
	Method string
	// Authorization holds the values of the request's Authorization headers.
	Authorization []string
	// MatchURI reports whether the digest-uri the client signed names this request's
	// Request-URI, so that credentials cannot be lifted onto another request. Nil accepts
	// any URI.
	MatchURI func(uri string) bool
}

// Verify checks the request's credentials at time now and returns the authenticated user
// name. On failure the error is one of this package's sentinel errors (possibly wrapped);
// the caller answers with Challenges(now, errors.Is(err, ErrStale)).
func (a *Authenticator) Verify(now time.Time, r Request) (string, error) {
	c, err := a.pick(r.Authorization)
	if err != nil {
		return "", err
	}
	switch {
	case c.Username == "" || c.Nonce == "" || c.URI == "" || c.Response == "":
		return "", fmt.Errorf("%w: missing username, nonce, uri or response", ErrMalformed)
	case c.Realm != a.realm:
		return "", fmt.Errorf("%w: realm", ErrMismatch)
	case c.QOP != "auth":
		return "", fmt.Errorf("%w: qop %q, want auth", ErrMismatch, c.QOP)
	case c.Userhash:
		return "", fmt.Errorf("%w: userhash not offered", ErrMismatch)
	case c.Nc <= 0 || c.Cnonce == "":
		return "", fmt.Errorf("%w: missing nc or cnonce", ErrMalformed)
	case r.MatchURI != nil && !r.MatchURI(c.URI):
		return "", fmt.Errorf("%w: digest uri is not the request uri", ErrMismatch)
	}
	alg := strings.ToUpper(c.Algorithm)
	if alg == "" {
		alg = MD5 // RFC 7616 §3.4: absent means MD5
	}
	h := newHash(alg)
	if h == nil || !slices.Contains(a.algs, alg) {
		return "", fmt.Errorf("%w: algorithm %q", ErrMismatch, c.Algorithm)
	}
	issued, ok := a.checkNonce(c.Nonce)
	if !ok {
		return "", ErrBadNonce
	}

	// From here on a known and an unknown user take the same path and the same time.
	stored, known := a.lookup(c.Username)
	ha1 := stored.SHA256
	dummy := a.dummy.SHA256
	if alg == MD5 {
		ha1, dummy = stored.MD5, a.dummy.MD5
	}
	if !known || ha1 == "" {
		known = false
		ha1 = dummy
	}
	want := response(h, strings.ToLower(ha1), c.Nonce, uint32(c.Nc), c.Cnonce, c.QOP, r.Method, c.URI)
	match := subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.Response))) == 1
	if !match || !known {
		return "", ErrBadCredentials
	}
	if now.Sub(issued) > a.lifetime || issued.Sub(now) > clockSkew {
		return "", ErrStale
	}
	if err := a.advance(c.Nonce, issued, uint32(c.Nc), now); err != nil {
		return "", err
	}
	return c.Username, nil
}

// pick parses the Digest credentials among the Authorization values, preferring those for
// our realm.
func (a *Authenticator) pick(values []string) (*icholy.Credentials, error) {
	var first *icholy.Credentials
	var perr error
	for _, v := range values {
		v = strings.TrimSpace(v)
		if !icholy.IsDigest(v) {
			continue
		}
		c, err := icholy.ParseCredentials(v)
		if err != nil {
			perr = err
			continue
		}
		if c.Realm == a.realm {
			return c, nil
		}
		if first == nil {
			first = c
		}
	}
	switch {
	case first != nil:
		return first, nil
	case perr != nil:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, perr)
	}
	return nil, ErrNoCredentials
}

// Nonces are base64url(timestamp(8) | random(12) | HMAC-SHA256(key, timestamp|random|realm)[:16]).
const (
	nonceTS   = 8
	nonceRand = 12
	nonceMAC  = 16
	nonceLen  = nonceTS + nonceRand + nonceMAC
)

func (a *Authenticator) newNonce(now time.Time) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:nonceTS], uint64(now.UnixNano()))
	_, _ = rand.Read(b[nonceTS : nonceTS+nonceRand])
	copy(b[nonceTS+nonceRand:], a.mac(b[:nonceTS+nonceRand]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (a *Authenticator) mac(data []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write(data)
	m.Write([]byte(a.realm))
	return m.Sum(nil)[:nonceMAC]
}

// checkNonce reports whether nonce was issued by this Authenticator, and when.
func (a *Authenticator) checkNonce(nonce string) (time.Time, bool) {
	if base64.RawURLEncoding.EncodedLen(nonceLen) != len(nonce) {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != nonceLen {
		return time.Time{}, false
	}
	if !hmac.Equal(b[nonceTS+nonceRand:], a.mac(b[:nonceTS+nonceRand])) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:nonceTS]))), true
}

// advance records nc as the highest nonce-count accepted for nonce, or fails with
// ErrReplay if it is not higher than one already accepted, or ErrStale if the nonce's
// count was forgotten to keep memory bounded.
func (a *Authenticator) advance(nonce string, issued time.Time, nc uint32, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.purge(now)
	if prev, ok := a.counts[nonce]; ok {
		if nc <= prev {
			return ErrReplay
		}
		a.counts[nonce] = nc
		return nil
	}
	if issued.UnixNano() <= a.floor {
		return ErrStale
	}
	a.counts[nonce] = nc
	a.order = append(a.order, used{nonce, issued.UnixNano()})
	for len(a.counts) > a.max {
		a.forget()
	}
	return nil
}

// purge forgets nonces, oldest use first, whose lifetime is over: they are stale anyway.
func (a *Authenticator) purge(now time.Time) {
	cutoff := now.Add(-a.lifetime).UnixNano()
	for a.head < len(a.order) && a.order[a.head].issued < cutoff {
		a.forget()
	}
}

// forget drops the nonce used longest ago. Nonces issued no later than it are refused as
// stale from now on, since their counts may have been forgotten too.
func (a *Authenticator) forget() {
	u := a.order[a.head]
	a.order[a.head] = used{}
	a.head++
	delete(a.counts, u.nonce)
	if u.issued > a.floor {
		a.floor = u.issued
	}
	if a.head > len(a.order)/2 {
		a.order = append(a.order[:0], a.order[a.head:]...)
		a.head = 0
	}
}

func newHash(algorithm string) hash.Hash {
	switch strings.ToUpper(algorithm) {
	case SHA256:
		return sha256.New()
	case MD5:
		return md5.New()
	}
	return nil
}

// response computes the qop=auth response (RFC 7616 §3.4.1):
// H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" H(method ":" uri)).
func response(h hash.Hash, ha1, nonce string, nc uint32, cnonce, qop, method, uri string) string {
	a2 := hashJoin(h, method, uri)
	return hashJoin(h, ha1, nonce, fmt.Sprintf("%08x", nc), cnonce, qop, a2)
}

func hashJoin(h hash.Hash, parts ...string) string {
	h.Reset()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

package digest

import "errors"

// Errors Verify returns. Every one of them means "challenge again"; only ErrStale asks for
// the challenge to carry stale=true. Reason maps them to a metric label.
var (
	// ErrNoCredentials means the request carried no Digest Authorization header.
	ErrNoCredentials = errors.New("digest: no credentials")
	// ErrMalformed means the Authorization header could not be parsed or lacks a field.
	ErrMalformed = errors.New("digest: malformed credentials")
	// ErrMismatch means the credentials are for another realm, URI or algorithm, or
	// without qop=auth.
	ErrMismatch = errors.New("digest: credentials do not match the challenge")
	// ErrBadNonce means the nonce was not issued by this process (or was tampered with).
	ErrBadNonce = errors.New("digest: unknown nonce")
	// ErrStale means the credentials are right but the nonce has expired: the client
	// should retry with a fresh nonce without asking its user again.
	ErrStale = errors.New("digest: stale nonce")
	// ErrReplay means the nonce-count was not higher than one already accepted.
	ErrReplay = errors.New("digest: replayed nonce count")
	// ErrBadCredentials means an unknown user or a wrong password; the two are not told
	// apart, on purpose.
	ErrBadCredentials = errors.New("digest: bad credentials")
)

// Reason returns a short label for err, from a fixed set, for metrics: missing, malformed,
// mismatch, bad_nonce, stale, replay, bad_credentials, or other.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrNoCredentials):
		return "missing"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrMismatch):
		return "mismatch"
	case errors.Is(err, ErrBadNonce):
		return "bad_nonce"
	case errors.Is(err, ErrStale):
		return "stale"
	case errors.Is(err, ErrReplay):
		return "replay"
	case errors.Is(err, ErrBadCredentials):
		return "bad_credentials"
	}
	return "other"
}

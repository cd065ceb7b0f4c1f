// Package digest implements the server side of SIP digest authentication (RFC 3261 §22,
// RFC 7616, RFC 8760): it builds WWW-Authenticate challenges and verifies Authorization
// headers against stored HA1 values. It is pure: no network, and time is an argument.
//
// Challenges offer a user the algorithms (MD5, SHA-256) it has an HA1 value for, in the
// configured order (MD5 alone by default: see DefaultAlgorithms), all
// with qop="auth". Nonces are
// stateless (a timestamp, random bytes and an HMAC under a per-process key), so any nonce
// this process issued can be checked without remembering it; they expire after
// Options.NonceLifetime. The highest nonce-count seen per nonce is remembered (in bounded
// memory) so that a replayed Authorization is refused.
//
// An unknown user is challenged as the most common kind of account is (Typical), and
// verified against a dummy HA1, so that the challenge, the work done, the time taken and
// the answer given are the same as for a known user with a wrong password.
//
// Header syntax is parsed and formatted by github.com/icholy/digest.
package digest

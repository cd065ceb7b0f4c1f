package records

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/hotline-project/hotline/routing"
)

// KeyEnv is the environment variable that holds the caller-hash key; it takes precedence
// over the configuration's records.hash_key_file.
const KeyEnv = "HOTLINE_RECORDS_KEY"

// MinKeyLen is the shortest key accepted, in bytes. A phone number has about 10^10 possible
// values, so the hash is only as strong as the key is hard to guess: 16 random bytes (32
// hex digits, as GenerateKey writes) is plenty.
const MinKeyLen = 16

// Hasher turns a caller's number into the hash the records keep: HMAC-SHA256 under a key
// the operator holds, over the number in one canonical form, so that every spelling of one
// number gives one hash and a different key gives unrelated hashes. Without the key the
// hash cannot be reversed by trying every number, as a plain SHA-256 could.
type Hasher struct {
	key         []byte
	countryCode string
}

// NewHasher returns a Hasher with key (at least MinKeyLen bytes). countryCode (such as
// "1") is prefixed to numbers written without a leading '+' that do not start with it, so
// that the national and international forms of a number hash alike; "" leaves numbers as
// written.
func NewHasher(key []byte, countryCode string) (*Hasher, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("caller hash key: %d bytes; at least %d are needed", len(key), MinKeyLen)
	}
	return &Hasher{key: append([]byte(nil), key...), countryCode: routing.NormalizeNumber(countryCode)}, nil
}

// Hash returns the hex HMAC-SHA256 of the caller (a SIP URI, a name-addr or a number) in
// the canonical form NormalizeCaller gives, or "" for an anonymous or empty caller, whom
// no hash could count as a repeat caller. A nil Hasher gives "" for every caller.
func (h *Hasher) Hash(caller string) string {
	if h == nil {
		return ""
	}
	n := NormalizeCaller(caller, h.countryCode)
	if n == "" {
		return ""
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(n))
	return hex.EncodeToString(m.Sum(nil))
}

// CallerHash is NewHasher(key, "").Hash(caller), or "" when the key is too short.
func CallerHash(key []byte, caller string) string {
	h, err := NewHasher(key, "")
	if err != nil {
		return ""
	}
	return h.Hash(caller)
}

// NormalizeCaller reduces the caller, as found in a From or P-Asserted-Identity header or
// written by hand, to the canonical form that is hashed:
//
//   - a display name and angle brackets are dropped: "Ana" <sip:+1555@h> is sip:+1555@h;
//   - the scheme sip:, sips: or tel: and everything from '@' on are dropped;
//   - a user part that is a number (routing.NormalizeNumber: digits, one leading '+',
//     separators, ";params") becomes its digits, with countryCode in front when it was
//     written without '+' and does not start with countryCode;
//   - any other user part (a SIP user name) is kept, lower-cased, with a "user:" prefix so
//     that it can never equal a number;
//   - "", "anonymous", "unknown", "restricted" and "private" give "".
func NormalizeCaller(caller, countryCode string) string {
	s := strings.TrimSpace(caller)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	for _, scheme := range []string{"sips:", "sip:", "tel:"} {
		if strings.HasPrefix(lower, scheme) {
			s = s[len(scheme):]
			break
		}
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if n := routing.NormalizeNumber(s); n != "" {
		if cc := routing.NormalizeNumber(countryCode); cc != "" && !strings.HasPrefix(s, "+") && !strings.HasPrefix(n, cc) {
			n = cc + n
		}
		return n
	}
	user := strings.ToLower(s)
	switch user {
	case "", "anonymous", "unknown", "restricted", "private", "+":
		return ""
	}
	return "user:" + user
}

// LoadKey returns the caller-hash key: $HOTLINE_RECORDS_KEY if set, else the contents of
// keyFile (surrounding white space removed) if keyFile is not "", else the key in
// generated, which is created with a new random key (mode 0600) if it does not exist,
// when generated is not "". created reports that a key was generated now. A key shorter
// than MinKeyLen, or none at all, is an error.
func LoadKey(keyFile, generated string) (key []byte, created bool, err error) {
	if k := strings.TrimSpace(os.Getenv(KeyEnv)); k != "" {
		return checkKey([]byte(k), "$"+KeyEnv)
	}
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, false, fmt.Errorf("caller hash key: %w", err)
		}
		return checkKey([]byte(strings.TrimSpace(string(b))), keyFile)
	}
	if generated == "" {
		return nil, false, fmt.Errorf("caller hash key: set %s or records.hash_key_file", KeyEnv)
	}
	b, err := os.ReadFile(generated)
	if err == nil {
		return checkKey([]byte(strings.TrimSpace(string(b))), generated)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("caller hash key: %w", err)
	}
	k := GenerateKey()
	// O_EXCL: two processes starting at once must not each write a key of their own.
	f, err := os.OpenFile(generated, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey("", generated)
	}
	if err != nil {
		return nil, false, fmt.Errorf("caller hash key: %w", err)
	}
	_, err = f.WriteString(k + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A full disk leaves a short key behind, which every later start would refuse.
		os.Remove(generated)
		return nil, false, fmt.Errorf("caller hash key: %w", err)
	}
	return []byte(k), true, nil
}

func checkKey(k []byte, from string) ([]byte, bool, error) {
	if len(k) < MinKeyLen {
		return nil, false, fmt.Errorf("caller hash key from %s: %d bytes; at least %d are needed", from, len(k), MinKeyLen)
	}
	return k, false, nil
}

// GenerateKey returns a new random key: 32 bytes from crypto/rand, in hex.
func GenerateKey() string {
	return hex.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return b
}

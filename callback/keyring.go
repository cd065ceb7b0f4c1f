package callback

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// Errors of Open.
var (
	// ErrUnknownKey means the key that sealed a number is no longer in the key file.
	ErrUnknownKey = errors.New("callback: unknown key")
	// ErrSealed means a sealed number did not open: altered, or sealed for another callback.
	ErrSealed = errors.New("callback: sealed number does not open")
)

// Keyring holds the keys numbers are sealed and opened with. It never changes after
// it is made and is safe for concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

var reKeyID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// ParseKeys reads a key file's content; from names it in errors (never a key).
func ParseKeys(b []byte, from string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, hexKey, ok := strings.Cut(line, ":")
		if !ok || !reKeyID.MatchString(id) {
			return nil, fmt.Errorf("callback keys %s:%d: want id:hex, the id of letters, digits, _ . -", from, n)
		}
		raw, err := hex.DecodeString(hexKey)
		if err != nil || len(raw) != KeySize {
			return nil, fmt.Errorf("callback keys %s:%d: key %s is not %d bytes of hex", from, n, id, KeySize)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("callback keys %s:%d: key id %s given twice", from, n, id)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("callback keys %s:%d: %w", from, n, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("callback keys %s:%d: %w", from, n, err)
		}
		k.aeads[id] = aead
		if k.current == "" {
			k.current = id
		}
	}
	if k.current == "" {
		return nil, fmt.Errorf("callback keys %s: no key", from)
	}
	return k, nil
}

// NewKeyLine returns a new random key file line with the given id.
func NewKeyLine(id string) string {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return id + ":" + hex.EncodeToString(b)
}

// Generate returns a keyring of one new random key kept in memory only.
func Generate() *Keyring {
	k, err := ParseKeys([]byte(NewKeyLine("mem")), "memory")
	if err != nil {
		panic(err) // a line NewKeyLine made always parses
	}
	return k
}

// Load reads the key file at path. With generate, a missing file is created (0600) with
// one new key first; created says so.
func Load(path string, generate bool) (k *Keyring, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && generate {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("callback keys: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return Load(path, false)
		}
		if err != nil {
			return nil, false, fmt.Errorf("callback keys: %w", err)
		}
		_, err = f.WriteString("# hotline callback keys: id:hex, the first seals, all open (README \"Safe callbacks\")\n" + NewKeyLine("k1") + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, false, fmt.Errorf("callback keys: %w", err)
		}
		k, _, err := Load(path, false)
		return k, err == nil, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("callback keys: %w", err)
	}
	k, err = ParseKeys(b, path)
	return k, false, err
}

// Current is the ID of the key new numbers are sealed with.
func (k *Keyring) Current() string { return k.current }

// Seal encrypts number for the callback id under the current key: the nonce followed by
// the ciphertext and tag. It returns the key's ID, to be stored with it.
func (k *Keyring) Seal(id, number string) (keyID string, sealed []byte) {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return k.current, aead.Seal(nonce, nonce, []byte(number), []byte(id))
}

// Open decrypts a number Seal sealed for the callback id under keyID.
func (k *Keyring) Open(id, keyID string, sealed []byte) (string, error) {
	aead, ok := k.aeads[keyID]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownKey, keyID)
	}
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return "", ErrSealed
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}

// Mask shows at most the last two digits of a number: "••••••••67".
func Mask(number string) string {
	if len(number) <= 2 {
		return strings.Repeat("•", len(number))
	}
	return strings.Repeat("•", len(number)-2) + number[len(number)-2:]
}

// Package callback seals the numbers of safe callbacks (issue 16, part 3): a Keyring of
// AES-256-GCM keys (crypto/aes and crypto/cipher from the standard library) read from a
// key file, each number sealed under the keyring's first key with the callback's ID as
// additional data, and opened with whichever key sealed it (its ID is stored beside the
// ciphertext), so keys can be rotated without losing the callbacks pending.
//
// The key file has one key a line, "id:hex" (64 hex digits: 32 bytes); blank lines and
// lines starting with # are skipped. To rotate: add a new line at the top (new callbacks
// are sealed with it), and remove the old line once every callback sealed with it has
// expired (the longest window, at most 72 hours).
package callback

package routing

import "strings"

// NormalizeNumber reduces a phone number, as written in the config or as found in the user
// part of a SIP Request-URI, to its digits. It drops any ";params" suffix, surrounding
// white space, one leading '+' and the visual separators space, '-', '.', '(' and ')'.
// Anything else (letters, a second '+', '*', '#') makes the result "", so a malformed
// number never matches a configured one.
func NormalizeNumber(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "+")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return ""
		}
	}
	return b.String()
}

// NumberMatches reports whether dialled reaches the configured number. Both are normalised
// with NormalizeNumber; they match when they are equal and non-empty, or when dialled is
// the national form of configured: configured without its leading countryCode (for
// example "8883737888" for "18883737888" with country code "1"). The reverse does not
// hold: a number configured in national form only matches that form.
func NumberMatches(configured, dialled, countryCode string) bool {
	c, d := NormalizeNumber(configured), NormalizeNumber(dialled)
	if c == "" || d == "" {
		return false
	}
	if c == d {
		return true
	}
	cc := NormalizeNumber(countryCode)
	return cc != "" && len(c) > len(cc) && strings.HasPrefix(c, cc) && c[len(cc):] == d
}

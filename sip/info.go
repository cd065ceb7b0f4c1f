package sip

import (
	"errors"
	"strings"
)

// ErrBadDTMF is returned for a SIP INFO DTMF body we cannot read.
var ErrBadDTMF = errors.New("bad dtmf info body")

// ParseDTMFInfo reads the digit from a SIP INFO body: `application/dtmf-relay`
// ("Signal=5\r\nDuration=160") or `application/dtmf` (the digit alone). It is the fallback for
// phones that do not send RFC 4733 events.
func ParseDTMFInfo(contentType string, body []byte) (rune, error) {
	text := string(body)
	if contentType == "application/dtmf-relay" {
		found := false
		for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\r' || r == '\n' }) {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				text, found = v, true
				break
			}
		}
		if !found {
			return 0, ErrBadDTMF
		}
	}
	text = strings.TrimSpace(text)
	if len(text) != 1 {
		// Some phones send the event number for * and # (10, 11).
		switch text {
		case "10":
			return '*', nil
		case "11":
			return '#', nil
		}
		return 0, ErrBadDTMF
	}
	d := rune(text[0])
	switch {
	case d >= '0' && d <= '9', d == '*', d == '#':
		return d, nil
	case d >= 'A' && d <= 'D':
		return d, nil
	case d >= 'a' && d <= 'd':
		return d - 'a' + 'A', nil
	}
	return 0, ErrBadDTMF
}

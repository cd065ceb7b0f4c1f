package sip

import (
	"errors"
	"fmt"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// Path (RFC 3327): an edge proxy (the Kamailio front, deploy/kamailio) adds a Path header to
// the REGISTER it passes on, naming itself and the flow the phone registered over. The
// registrar keeps the Path with the binding, and requests to the phone carry it as their
// Route set: they go to the proxy, which sends them over the phone's flow (behind NAT, the
// only address the phone can be reached at).

// Limits on what a REGISTER's Path may hold: it is stored with the binding (and in the
// durable state), so an authenticated phone must not make it large.
const (
	maxPathEntries  = 4
	maxPathEntryLen = 512
)

// errBadPath is what parsePath returns for a Path header that is not a list of SIP
// name-addrs within the limits.
var errBadPath = errors.New("bad path header")

// parsePath returns the values of the Path headers, in order, one entry per proxy: each a
// name-addr <sip:...> with optional parameters, written the way it came (trimmed). A
// header may hold several entries separated by commas.
func parsePath(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		for _, e := range splitHeaderList(v) {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if len(e) > maxPathEntryLen || strings.ContainsAny(e, "\r\n\x00") {
				return nil, fmt.Errorf("%w: entry too long or with control characters", errBadPath)
			}
			if !strings.HasPrefix(e, "<") && !strings.HasPrefix(e, `"`) {
				return nil, fmt.Errorf("%w: %q is not a name-addr", errBadPath, e)
			}
			var u sipmsg.Uri
			params := sipmsg.NewParams()
			if _, err := sipmsg.ParseAddressValue(e, &u, &params); err != nil {
				return nil, fmt.Errorf("%w: %w", errBadPath, err)
			}
			if s := strings.ToLower(u.Scheme); (s != "sip" && s != "sips") || u.Host == "" {
				return nil, fmt.Errorf("%w: %q is not a sip: URI with a host", errBadPath, e)
			}
			if len(out) == maxPathEntries {
				return nil, fmt.Errorf("%w: more than %d entries", errBadPath, maxPathEntries)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// splitHeaderList splits a header value at the commas that separate its entries: not those
// inside a quoted string or <...>.
func splitHeaderList(v string) []string {
	var out []string
	start, quoted, angle, escaped := 0, false, false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"' && !angle:
			quoted = !quoted
		case quoted:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ',' && !angle:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// routeNextHop returns the URI of the first entry of a Route set, where a request carrying
// it is sent.
func routeNextHop(route []string) (sipmsg.Uri, error) {
	var u sipmsg.Uri
	if len(route) == 0 {
		return u, errors.New("empty route set")
	}
	for _, r := range route {
		if strings.ContainsAny(r, "\r\n\x00") {
			return u, errors.New("control characters in the route set")
		}
	}
	params := sipmsg.NewParams()
	if _, err := sipmsg.ParseAddressValue(strings.TrimSpace(route[0]), &u, &params); err != nil {
		return u, fmt.Errorf("bad route %q: %w", route[0], err)
	}
	if s := strings.ToLower(u.Scheme); (s != "sip" && s != "sips") || u.Host == "" {
		return u, fmt.Errorf("route %q is not a sip: URI with a host", route[0])
	}
	return u, nil
}

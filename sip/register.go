package sip

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/sip/digest"
)

// ErrUnknownFeature is what Options.Feature returns for a feature code it does not know:
// the phone gets 404 Not Found.
var ErrUnknownFeature = errors.New("unknown feature code")

// featureLine is the line label (logs, metrics) of feature-code calls from advocates' phones.
const featureLine = "feature"

// AuthAtLimit is the AuthFailure reason of credentials not checked: their source's
// failures and the checks of its credentials in progress are at security.auth_failures
// (defence.Limiter.BeginAuth).
const AuthAtLimit = "at_limit"

// AuthObserver receives authentication and registration events for metrics. An Observer
// that also implements it gets them. Implementations must be cheap and concurrency safe.
type AuthObserver interface {
	// AuthFailure counts a request whose credentials were refused, by digest.Reason (a
	// request that carried none is not a failure: it is how every client starts), or
	// AuthAtLimit for credentials not checked because their source is at its limit.
	AuthFailure(reason string)
	// Registrations reports the number of registered contacts after a change.
	Registrations(n int)
}

// PresenceFunc is told when an advocate comes online (their first phone registered) or goes
// offline (their last registration removed or expired). Calls are made one at a time, in
// order, and must not block for long.
type PresenceFunc func(advocateID string, online bool)

// FeatureFunc acts on a feature code (the Request-URI user, such as "*11") dialled from an
// authenticated advocate's phone. It returns ErrUnknownFeature for codes it does not know.
type FeatureFunc func(ctx context.Context, advocateID, code string) error

// expireEvery is how often lapsed registrations are removed.
const expireEvery = time.Second

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// authEnabled reports whether advocates can register and dial feature codes.
func (s *Server) authEnabled() bool { return s.opts.Auth != nil && s.opts.Registrar != nil }

// Contacts returns the current registrations of an advocate's phones, to ring them. Behind
// NAT, send to Binding.Source over Binding.Transport with Binding.Contact as Request-URI.
func (s *Server) Contacts(advocateID string) []registrar.Binding {
	if !s.authEnabled() {
		return nil
	}
	return s.opts.Registrar.Bindings(advocateID, s.now())
}

// authenticate checks the request's digest credentials and returns the advocate id. On
// failure it has answered 401 with fresh challenges: the same answer whatever the reason,
// except stale=true for a correct answer to an expired nonce.
func (s *Server) authenticate(req *sipmsg.Request, tx sipmsg.ServerTransaction) (string, bool) {
	var values []string
	for _, h := range req.GetHeaders("Authorization") {
		values = append(values, h.Value())
	}
	now := s.now()
	end, ok := s.beginAuth(req, now, len(values) > 0)
	if !ok {
		// A source at its limit of failures, counting the checks still in progress: the
		// same 401 as a wrong password, and the password is not checked.
		s.log.Info("authentication refused: the source is at its limit of failures", "method", string(req.Method), "source", req.Source())
		if o, ok := s.opts.Observer.(AuthObserver); ok {
			o.AuthFailure(AuthAtLimit)
		}
		s.challenge(req, tx, now, false)
		return "", false
	}
	id, err := s.opts.Auth.Verify(now, digest.Request{
		Method:        string(req.Method),
		Authorization: values,
		MatchURI:      func(u string) bool { return sameURI(u, req.Recipient) },
	})
	end(err)
	if err == nil {
		return id, true
	}
	if !errors.Is(err, digest.ErrNoCredentials) {
		if o, ok := s.opts.Observer.(AuthObserver); ok {
			o.AuthFailure(digest.Reason(err))
		}
		// Never the user name: for an unknown one it may be a mistyped password.
		s.log.Info("authentication failed", "method", string(req.Method), "reason", digest.Reason(err), "source", req.Source())
	}
	s.challenge(req, tx, now, errors.Is(err, digest.ErrStale))
	return "", false
}

// challenge answers req 401 with fresh challenges (stale=true with stale).
func (s *Server) challenge(req *sipmsg.Request, tx sipmsg.ServerTransaction, now time.Time, stale bool) {
	var hdrs []sipmsg.Header
	for _, c := range s.opts.Auth.Challenges(now, claimedUser(req), stale) {
		hdrs = append(hdrs, sipmsg.NewHeader("WWW-Authenticate", c))
	}
	s.respondTagged(tx, req, 401, "Unauthorized", hdrs...)
}

// claimedUser is the user a request says it comes from, whose challenge it gets: the address
// of record (To) of a REGISTER, the From user of anything else. It is only a claim; it
// picks the algorithms offered, never who is authenticated.
func claimedUser(req *sipmsg.Request) string {
	if req.Method == sipmsg.REGISTER {
		if to := req.To(); to != nil {
			return to.Address.User
		}
		return ""
	}
	if from := req.From(); from != nil {
		return from.Address.User
	}
	return ""
}

// sameURI reports whether the digest-uri u names the Request-URI r: same scheme, user, host
// (ignoring case) and port (5060 when absent). Parameters are not compared.
func sameURI(u string, r sipmsg.Uri) bool {
	var p sipmsg.Uri
	if err := sipmsg.ParseUri(u, &p); err != nil {
		return false
	}
	port := func(n int) int {
		if n == 0 {
			return 5060
		}
		return n
	}
	return strings.EqualFold(p.Scheme, r.Scheme) && p.User == r.User &&
		strings.EqualFold(p.Host, r.Host) && port(p.Port) == port(r.Port)
}

// respondTagged answers a final response with a To tag (RFC 3261 §8.2.6.2).
func (s *Server) respondTagged(tx sipmsg.ServerTransaction, req *sipmsg.Request, code int, reason string, hdrs ...sipmsg.Header) {
	res := sipmsg.NewResponseFromRequest(req, code, reason, nil)
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", newID())
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	s.send(tx, req, res)
}

// onRegister is the registrar (RFC 3261 §10.3) for advocates' phones.
func (s *Server) onRegister(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	to, callID, cseq := req.To(), req.CallID(), req.CSeq()
	if to == nil || callID == nil || cseq == nil || to.Address.User == "" {
		s.respondTagged(tx, req, 400, "Bad Request")
		return
	}
	rr, ok := registerRequest(req)
	if !ok {
		s.respondTagged(tx, req, 400, "Bad Contact, Expires or Path")
		return
	}
	id, ok := s.authenticate(req, tx)
	if !ok {
		return
	}
	if to.Address.User != id {
		// Credentials are good but for another advocate's address of record.
		s.log.Info("register for another advocate refused", "advocate", id)
		s.respondTagged(tx, req, 403, "Forbidden")
		return
	}
	if len(rr.Path) > 0 && !s.fromTrusted(req) {
		// Else a phone could send the node's INVITEs to any address by naming it in a Path.
		s.log.Warn("register with a Path from an untrusted source refused; list the edge proxy in security.trusted_sources",
			"advocate", id, "source", req.Source())
		s.respondTagged(tx, req, 403, "Path Only Through A Trusted Proxy")
		return
	}
	rr.AOR = id
	now := s.now()
	s.presenceMu.Lock()
	bindings, events, err := s.opts.Registrar.Register(now, rr)
	if err == nil {
		s.deliver(events)
	}
	s.presenceMu.Unlock()
	switch {
	case errors.Is(err, registrar.ErrIntervalTooBrief):
		min := int(s.opts.Registrar.MinExpires() / time.Second)
		s.respondTagged(tx, req, 423, "Interval Too Brief", sipmsg.NewHeader("Min-Expires", strconv.Itoa(min)))
		return
	case errors.Is(err, registrar.ErrTooManyContacts):
		s.respondTagged(tx, req, 403, "Too Many Contacts")
		return
	case err != nil:
		s.respondTagged(tx, req, 400, "Bad Request", sipmsg.NewHeader("Warning", `399 hotline "`+warningText(err)+`"`))
		return
	}
	hdrs := make([]sipmsg.Header, 0, len(bindings)+1)
	for _, b := range bindings {
		hdrs = append(hdrs, sipmsg.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(b.ExpiresIn(now))))
	}
	hdrs = append(hdrs, sipmsg.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	if len(rr.Path) > 0 && supports(req, "path") {
		// RFC 3327 5.3: the stored Path, echoed to a phone that supports it.
		hdrs = append(hdrs, sipmsg.NewHeader("Path", strings.Join(rr.Path, ", ")))
	}
	s.respondTagged(tx, req, 200, "OK", hdrs...)
	s.log.Info("registered", "advocate", id, "contacts", len(bindings), "path", len(rr.Path) > 0)
}

// registerRequest reads the Contacts, Expires, Path and origin of a REGISTER.
func registerRequest(req *sipmsg.Request) (registrar.Request, bool) {
	rr := registrar.Request{
		CallID:    req.CallID().Value(),
		CSeq:      req.CSeq().SeqNo,
		Expires:   -1,
		Transport: strings.ToLower(req.Transport()),
	}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		rr.Source = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	var paths []string
	for _, h := range req.GetHeaders("Path") {
		paths = append(paths, h.Value())
	}
	path, err := parsePath(paths)
	if err != nil {
		return rr, false
	}
	rr.Path = path
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return rr, false
		}
		rr.Expires = int(min(n, 1<<31-1))
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sipmsg.ContactHeader)
		if !ok {
			return rr, false
		}
		if c.Address.Wildcard {
			rr.Wildcard = true
			continue
		}
		con := registrar.Contact{URI: c.Address.String(), Expires: -1}
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil {
				return rr, false
			}
			con.Expires = int(min(n, 1<<31-1))
		}
		if strings.ContainsAny(con.URI, "<>\r\n") {
			return rr, false
		}
		rr.Contacts = append(rr.Contacts, con)
	}
	return rr, true
}

// deliver passes registrar events to the presence callback and the metrics. The caller
// holds presenceMu, so that events arrive in the order they happened.
func (s *Server) deliver(events []registrar.Event) {
	if o, ok := s.opts.Observer.(AuthObserver); ok {
		o.Registrations(s.opts.Registrar.Count())
	}
	for _, e := range events {
		s.log.Info("advocate presence", "advocate", e.AOR, "online", e.Online)
		if s.opts.Presence != nil {
			s.opts.Presence(e.AOR, e.Online)
		}
	}
}

// expireLoop removes lapsed registrations until ctx is done.
func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.presenceMu.Lock()
			if ev := s.opts.Registrar.Expire(s.now()); len(ev) > 0 {
				s.deliver(ev)
			}
			s.presenceMu.Unlock()
		}
	}
}

// featureCode reports whether the Request-URI user is a feature code: * then up to 15
// digits, * or # (some phones escape the * as %2A). It returns the code unescaped.
func featureCode(user string) (string, bool) {
	if len(user) >= 3 && strings.EqualFold(user[:3], "%2A") {
		user = "*" + user[3:]
	}
	if len(user) < 2 || len(user) > 16 || user[0] != '*' {
		return "", false
	}
	for i := 1; i < len(user); i++ {
		if c := user[i]; (c < '0' || c > '9') && c != '*' && c != '#' {
			return "", false
		}
	}
	return user, true
}

// runFeature calls Options.Feature; on failure it has answered the INVITE.
func (s *Server) runFeature(req *sipmsg.Request, tx sipmsg.ServerTransaction, advocate, code string) bool {
	s.mu.Lock()
	ctx := s.ctx
	s.mu.Unlock()
	err := s.opts.Feature(ctx, advocate, code)
	switch {
	case err == nil:
		s.log.Info("feature code", "advocate", advocate, "code", code)
		return true
	case errors.Is(err, ErrUnknownFeature):
		s.respondTagged(tx, req, 404, "Not Found")
	default:
		s.log.Warn("feature code failed", "advocate", advocate, "code", code, "error", err)
		s.respondTagged(tx, req, 500, "Server Internal Error")
	}
	return false
}

// supports reports whether the request's Supported headers list the option tag.
func supports(req *sipmsg.Request, tag string) bool {
	for _, h := range req.GetHeaders("Supported") {
		for _, o := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(o), tag) {
				return true
			}
		}
	}
	return false
}

// fromTrusted reports whether the request came from a source in security.trusted_sources
// (Options.Defences): the carrier's trunk, or the edge proxy that may add a Path.
func (s *Server) fromTrusted(req *sipmsg.Request) bool {
	ap, err := netip.ParseAddrPort(req.Source())
	return err == nil && s.opts.Defences != nil && s.opts.Defences.Trusted(ap.Addr().Unmap())
}

package sip

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/sip/digest"
)

// Reasons LimitObserver.Refused is given.
const (
	RefusedBanned = "banned" // the source failed authentication too often
	RefusedRate   = "rate"   // the source is over its request rate
	RefusedCalls  = "calls"  // the source has as many calls in progress as it may
)

// LimitObserver receives the per-source defences' events for metrics. Implementations must
// be cheap and concurrency safe.
type LimitObserver interface {
	// Refused counts a request refused by a limit, by method and reason (RefusedBanned,
	// RefusedRate, RefusedCalls).
	Refused(method, reason string)
	// Banned counts a source newly banned for failing authentication.
	Banned()
}

// sourceAddr returns the address a request came from; invalid if it cannot be read.
func sourceAddr(req *sipmsg.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// isLineCall reports whether req is a new call to the hotline: an INVITE outside a dialog
// that is not a feature code from an advocate's phone. Callers are not authenticated, and in
// production many of them share the carrier trunk's address, so these are never refused for
// a ban: a brute-forcer at the same address must not cut off a caller.
func (s *Server) isLineCall(req *sipmsg.Request) bool {
	if !req.IsInvite() {
		return false
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		return false
	}
	if _, feature := featureCode(req.Recipient.User); feature && s.authEnabled() {
		return false
	}
	return true
}

// limited applies the per-source limits to req before it is handled, and reports whether
// it was refused (and so must not be handled):
//   - requests of a call in progress (ACK, BYE, INFO, re-INVITE) are never refused;
//   - a banned source's requests are dropped without an answer, except new calls to a line;
//   - a source over its request rate gets 503 with Retry-After for an INVITE, so the caller
//     hears a busy signal at once instead of silence while the INVITE is retransmitted for
//     32 s; its other requests are dropped without an answer, so a flood is not answered
//     (nor amplified) and a scanner learns nothing.
//
// Dropping is what Kamailio's pike and ban setups do. sipgo ends the server transaction of a
// request left unanswered, so a dropped request holds no memory either.
func (s *Server) limited(req *sipmsg.Request, tx sipmsg.ServerTransaction) bool {
	l := s.opts.Defences
	if l == nil {
		return false
	}
	src := sourceAddr(req)
	if !src.IsValid() || l.Trusted(src) {
		return false
	}
	if to := req.To(); to != nil && to.Params.Has("tag") && s.lookupCall(req) != nil {
		return false
	}
	now := s.now()
	call := s.isLineCall(req)
	method := string(req.Method)
	if !call && l.Banned(now, src) {
		s.refused(method, RefusedBanned)
		return true
	}
	if l.Allow(now, src) {
		return false
	}
	s.refused(method, RefusedRate)
	s.log.Debug("request over the source's rate", "method", method)
	if req.IsInvite() {
		secs := int((l.RetryAfter() + time.Second - 1) / time.Second)
		s.respond(tx, req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", strconv.Itoa(secs)))
		if line, ok := s.opts.Lines(req.Recipient.User); ok && call {
			s.attemptRefused(line, RefuseSourceRate)
		}
	}
	return true
}

// admitCall counts a new call against its source's cap. It returns the function that ends
// the count, or false when the source is at its cap (the INVITE must get 503).
func (s *Server) admitCall(req *sipmsg.Request) (func(), bool) {
	l := s.opts.Defences
	src := sourceAddr(req)
	if l == nil || !src.IsValid() {
		return func() {}, true
	}
	if !l.StartCall(src) {
		s.refused("INVITE", RefusedCalls)
		// The source may be a caller's own address: it is not logged.
		s.log.Warn("a source reached the per-source call limit; list the carrier's trunk in security.trusted_sources")
		return nil, false
	}
	return func() { l.EndCall(src) }, true
}

// authFailed counts a failed authentication against the request's source, and bans the
// source when it has failed too often. A stale nonce is not a failure: the credentials
// were right.
func (s *Server) authFailed(req *sipmsg.Request, err error) {
	l := s.opts.Defences
	src := sourceAddr(req)
	if l == nil || !src.IsValid() || errors.Is(err, digest.ErrStale) {
		return
	}
	if l.AuthFailed(s.now(), src) {
		// An address that brute-forces advocates' passwords is logged; it is not a caller's.
		s.log.Warn("source banned after failed authentications", "source", src.String(), "method", string(req.Method))
		if s.opts.LimitObserver != nil {
			s.opts.LimitObserver.Banned()
		}
	}
}

func (s *Server) refused(method, reason string) {
	if s.opts.LimitObserver != nil {
		s.opts.LimitObserver.Refused(method, reason)
	}
}

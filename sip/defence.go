package sip

import (
	"errors"
	"hash/fnv"
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

// admit decides on a request that passed the gate's checks, before sipgo sees it: whether the
// server answers it statelessly, drops it, or passes it on to a transaction. Everything a
// flood can send from forged addresses is settled here, with at most one response and no
// transaction, so that it pins no memory and is never retransmitted (issue 14):
//   - requests of a call in progress (ACK, BYE, INFO, re-INVITE) pass, never refused;
//   - a banned source's requests are dropped without an answer, except new calls to a line;
//   - a source over its request rate gets 503 with Retry-After for an INVITE, so the caller
//     hears a busy signal at once instead of silence while the INVITE is retransmitted for
//     32 s; its other requests are dropped without an answer, so a flood is not answered
//     (nor amplified) and a scanner learns nothing;
//   - an INVITE to a number that is no line gets 404, and any new call to a draining server
//     503 with Retry-After;
//   - an OPTIONS gets 200 (503 when draining): the answer is the same for
//     every copy of the request, so a transaction (kept 32 s over UDP, RFC 3261 17.2.2)
//     would add nothing but memory.
//
// Dropping is what Kamailio's pike and ban setups do. The limits apply to what arrives on our
// listeners; requests on a connection the server opened itself (to an advocate's phone) do
// not pass the gate.
func (s *Server) admit(in admission) verdict {
	req := in.req
	method := string(req.Method)
	inDialog := false
	if to := req.To(); to != nil && to.Params.Has("tag") {
		inDialog = true
	}
	drop := func(reason string) verdict { return verdict{act: actDrop, method: method, reason: reason} }
	reply := func(status int, reason string, extra ...string) verdict {
		return verdict{act: actReply, method: method, status: status, reason: reason,
			reply: in.raw.reply(status, reasonPhrase(status), extra)}
	}
	if l := s.opts.Defences; l != nil && in.src.IsValid() && !l.Trusted(in.src) &&
		!(inDialog && s.lookupCall(req) != nil) {
		now := s.now()
		if !s.isLineCall(req) && l.Banned(now, in.src) {
			s.refused(method, RefusedBanned)
			return drop("source banned")
		}
		if !l.Allow(now, in.src) {
			s.refused(method, RefusedRate)
			if req.IsInvite() {
				secs := int((l.RetryAfter() + time.Second - 1) / time.Second)
				return reply(503, "over the source's request rate", "Retry-After: "+strconv.Itoa(secs))
			}
			return drop("over the source's request rate")
		}
	}
	if len(req.GetHeaders("Require")) > 0 {
		return verdict{act: actPass} // 420 is the handlers' business
	}
	switch {
	case req.Method == sipmsg.OPTIONS:
		// In a dialog too: a made-up To tag must not buy a transaction either.
		if s.draining.Load() {
			// Load balancers (Kamailio's dispatcher) ping with OPTIONS: 503 takes the node out.
			return reply(503, "draining", "Retry-After: "+drainRetryAfter)
		}
		return reply(200, "options", allowLine(), "Accept: application/sdp")
	case req.IsInvite() && !inDialog && s.isLineCall(req):
		if _, ok := s.opts.Lines(req.Recipient.User); !ok {
			return reply(404, "no such line")
		}
		if s.draining.Load() {
			return reply(503, "draining", "Retry-After: "+drainRetryAfter)
		}
	}
	return verdict{act: actPass}
}

// statelessToTag gives res, a response sent without a transaction, a To tag derived from
// req, so that every copy of a retransmitted request gets the same one (RFC 3261 8.2.7).
// A tag the request already carries (in a dialog) is kept.
func statelessToTag(req *sipmsg.Request, res *sipmsg.Response) {
	if to := req.To(); to == nil || to.Params.Has("tag") {
		return
	}
	to := res.To()
	if to == nil {
		return
	}
	h := fnv.New64a()
	for _, name := range []string{"Call-ID", "From", "CSeq", "Via"} {
		if hd := req.GetHeader(name); hd != nil {
			h.Write([]byte(hd.Value()))
		}
		h.Write([]byte{0})
	}
	to.Params.Add("tag", strconv.FormatUint(h.Sum64(), 36))
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

package sip

import (
	"errors"
	"hash/fnv"
	"net/netip"
	"strconv"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"

	"github.com/hotline-project/hotline/sip/defence"
	"github.com/hotline-project/hotline/sip/digest"
	"github.com/hotline-project/hotline/sip/gate"
)

// Reasons DefenceObserver.Refused is given.
const (
	RefusedBanned = "banned" // the source failed authentication too often
	RefusedRate   = "rate"   // the source is over its request rate
	RefusedCalls  = "calls"  // the source has as many calls in progress as it may
	RefusedDialog = "dialog" // a call's in-dialog requests (re-INVITE, INFO...) are over their rate
	// RefusedUntrusted: the untrusted sources' budget of calls is taken (by acknowledged calls).
	RefusedUntrusted = "untrusted"
	// RefusedUnacked: the source has as many unacknowledged calls as it may.
	RefusedUnacked = "unacked"
	// RefusedEvicted counts an unacknowledged call pushed out by a newer one (method INVITE).
	RefusedEvicted = "evicted"
)

// In-dialog requests other than ACK, BYE and CANCEL (re-INVITE, INFO, UPDATE...) are limited
// per call to dialogRate a second, in bursts of dialogBurst: a phone sends a few (hold,
// resume, session refresh, a DTMF INFO per key), and each one the server accepts costs a
// renegotiation or a log line (issue 14).
const (
	dialogRate  = 5
	dialogBurst = 20
)

// DefenceObserver receives the per-source defences' events for metrics. Implementations must
// be cheap and concurrency safe.
type DefenceObserver interface {
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
//   - requests of a call in progress pass, never refused per source; they are limited per
//     call once sipgo has them (limited, dialogLimited);
//   - a banned source's requests are dropped without an answer, except new calls to a line;
//   - a source over its request rate gets 503 with Retry-After for an INVITE, so the caller
//     hears a busy signal at once instead of silence while the INVITE is retransmitted for
//     32 s; its other requests are dropped without an answer, so a flood is not answered
//     (nor amplified) and a scanner learns nothing;
//   - an INVITE to a number that is no line gets 404, and any new call to a draining server
//     503 with Retry-After;
//   - an OPTIONS gets 200 (503 when draining): the answer is the same for every copy of the
//     request, so a transaction (kept 32 s over UDP, RFC 3261 17.2.2) would add nothing but
//     memory.
//
// Dropping is what Kamailio's pike and ban setups do. The limits apply to what arrives on our
// listeners; requests on a connection the server opened itself (to an advocate's phone) do
// not pass the gate.
func (s *Server) admit(in gate.Request) gate.Verdict {
	req := in.Req
	method := string(req.Method)
	inDialog := false
	if to := req.To(); to != nil && to.Params.Has("tag") {
		inDialog = true
	}
	drop, reply := in.Dropped, in.Reply
	lineCall := s.isLineCall(req)
	if l := s.opts.Defences; l != nil && in.Src.IsValid() && !l.Trusted(in.Src) &&
		!(inDialog && s.lookupCall(req) != nil) {
		now := s.now()
		if !lineCall && l.Banned(now, in.Src) {
			s.refused(method, RefusedBanned)
			return drop("source banned")
		}
		if !l.Allow(now, in.Src) {
			s.refused(method, RefusedRate)
			if req.IsInvite() {
				if line, ok := s.opts.Lines(req.Recipient.User); ok && lineCall {
					s.attemptRefused(line, RefuseSourceRate)
				}
				secs := int((l.RetryAfter() + time.Second - 1) / time.Second)
				return reply(503, "over the source's request rate", "Retry-After: "+strconv.Itoa(secs))
			}
			return drop("over the source's request rate")
		}
	}
	if len(req.GetHeaders("Require")) > 0 {
		return gate.Verdict{} // 420 is the handlers' business
	}
	switch {
	case req.Method == sipmsg.OPTIONS:
		// In a dialog too: a made-up To tag must not buy a transaction either.
		if s.draining.Load() {
			// Load balancers (Kamailio's dispatcher) ping with OPTIONS: 503 takes the node out.
			return reply(503, "draining", "Retry-After: "+drainRetryAfter)
		}
		return reply(200, "options", gate.AllowLine(), "Accept: application/sdp")
	case lineCall:
		line, ok := s.opts.Lines(req.Recipient.User)
		if !ok {
			return reply(404, "no such line")
		}
		if s.draining.Load() {
			// A draining node takes no new calls: the carrier or load balancer tries another.
			s.attemptRefused(line, RefuseDraining)
			return reply(503, "draining", "Retry-After: "+drainRetryAfter)
		}
		if v, shed := s.shedEarly(in, line); shed {
			return v // overload control (overload.go)
		}
	}
	return gate.Verdict{}
}

// limited applies a call's in-dialog request rate (dialogLimited) to req, a request of a
// call in progress, and reports whether it was refused (and so must not be handled). The
// per-source limits were applied by the gate before sipgo saw the request (admit).
func (s *Server) limited(req *sipmsg.Request, tx sipmsg.ServerTransaction) bool {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if c := s.lookupCall(req); c != nil {
			return s.dialogLimited(c, req, tx)
		}
	}
	return false
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

// dialogLimited applies the call's in-dialog request rate to req, and reports whether req
// was refused. ACK, BYE and CANCEL always pass: the caller can always hang up. Over the rate
// a request gets 503 with Retry-After, which ends only that transaction, never the call
// (RFC 5057 section 5.1).
func (s *Server) dialogLimited(c *Call, req *sipmsg.Request, tx sipmsg.ServerTransaction) bool {
	if req.IsAck() || req.IsCancel() || req.Method == sipmsg.BYE {
		return false
	}
	c.mu.Lock()
	if c.inDialog == nil {
		c.inDialog = rate.NewLimiter(dialogRate, dialogBurst)
	}
	b := c.inDialog
	c.mu.Unlock()
	if b.AllowN(s.now(), 1) {
		return false
	}
	s.refused(string(req.Method), RefusedDialog)
	c.log.Debug("in-dialog request over the call's rate", "method", string(req.Method))
	s.respond(tx, req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", "1"))
	return true
}

// admission is a new call's place in the per-source cap and, for a call to a line from an
// untrusted source, in the untrusted sources' budget.
type admission struct {
	release func()
	ticket  *defence.Ticket // nil: not counted in the budget (trusted, feature code, no budget)
	refused string          // why admitCall refused the call, for the call records (attempts.go)
}

// acked takes the call out of the unacknowledged calls: it can no longer be pushed out.
// False means a newer call pushed it out first (the ACK came just too late): the call no
// longer counts and must end.
func (a admission) acked() bool {
	return a.ticket == nil || a.ticket.Acked()
}

// evicted is closed when a newer call pushed this unacknowledged one out; nil (never
// ready) for a call outside the budget.
func (a admission) evicted() <-chan struct{} {
	if a.ticket == nil {
		return nil
	}
	return a.ticket.Evicted()
}

// ackTimeout is how long the call waits for its ACK: shorter for an untrusted source.
func (s *Server) ackTimeout(a admission) time.Duration {
	if a.ticket != nil && s.opts.UnackedTimeout > 0 && s.opts.UnackedTimeout < s.opts.AckTimeout {
		return s.opts.UnackedTimeout
	}
	return s.opts.AckTimeout
}

// admitCall counts a new call against its source's cap and, for a call to a line
// (lineCall) from an untrusted source, against the untrusted sources' budget. It returns
// the admission, whose release ends the counts, or false when a limit refuses the call
// (the INVITE must get 503). onEvict is called, cheap and under the budget's lock, if a
// newer call pushes this one out.
func (s *Server) admitCall(req *sipmsg.Request, lineCall bool, onEvict func()) (admission, bool) {
	l := s.opts.Defences
	src := sourceAddr(req)
	if l == nil || !src.IsValid() {
		return admission{release: func() {}}, true
	}
	if !l.StartCall(src) {
		s.refused("INVITE", RefusedCalls)
		// The source may be a caller's own address: it is not logged.
		s.log.Warn("a source reached the per-source call limit; list the carrier's trunk in security.trusted_sources")
		return admission{refused: RefuseSourceCalls}, false
	}
	a := admission{release: func() { l.EndCall(src) }}
	if b := s.opts.Budget; b != nil && lineCall && !l.Trusted(src) {
		t, err := b.Admit(src, onEvict)
		if err != nil {
			l.EndCall(src)
			reason, attempt := RefusedUntrusted, RefuseUntrusted
			if errors.Is(err, defence.ErrUnacked) {
				reason, attempt = RefusedUnacked, RefuseSourceUnacked
			}
			s.refused("INVITE", reason)
			s.log.Debug("call refused by the untrusted sources' budget", "reason", reason)
			return admission{refused: attempt}, false
		}
		a.ticket = t
		a.release = func() { t.Release(); l.EndCall(src) }
	}
	return a, true
}

// beginAuth reserves the check of a request's credentials (checked: it carries some)
// against its source's limit of failures (defence.Limiter.BeginAuth); false means the
// source is at its limit and the credentials must not be checked. end takes the check's
// result: it counts a failure against the source, and bans the source when it has failed
// too often. Neither a stale nonce (the credentials were right) nor a request without
// credentials is a failure.
func (s *Server) beginAuth(req *sipmsg.Request, now time.Time, checked bool) (end func(error), ok bool) {
	l := s.opts.Defences
	src := sourceAddr(req)
	if l == nil || !src.IsValid() || !checked {
		return func(error) {}, true
	}
	if !l.BeginAuth(now, src) {
		return nil, false
	}
	return func(err error) {
		failed := err != nil && !errors.Is(err, digest.ErrStale) && !errors.Is(err, digest.ErrNoCredentials)
		if l.EndAuth(s.now(), src, failed) {
			s.banned(req, src)
		}
	}, true
}

// banned logs and counts a source newly banned for failing authentication.
func (s *Server) banned(req *sipmsg.Request, src netip.Addr) {
	// An address that brute-forces advocates' passwords is logged; it is not a caller's.
	s.log.Warn("source banned after failed authentications", "source", src.String(), "method", string(req.Method))
	if s.opts.DefenceObserver != nil {
		s.opts.DefenceObserver.Banned()
	}
}

func (s *Server) refused(method, reason string) {
	if s.opts.DefenceObserver != nil {
		s.opts.DefenceObserver.Refused(method, reason)
	}
}

// ScreenSilent gives the silent-call policy (routing.Silent) what the SIP side knows of c, a
// call whose caller pressed no key: whether no RTP packet ever arrived from it, and whether
// its source is flooding (an untrusted source that sent security.no_rtp_calls calls without
// RTP lately). It counts c among its source's calls without RTP when it had none; call it
// once per call.
func (s *Server) ScreenSilent(c *Call) (noRTP, flooding bool) {
	noRTP = c.leg != nil && c.leg.Stats().PacketsReceived == 0
	if l := s.opts.Defences; l != nil {
		flooding = l.NoRTPCall(s.now(), c.source, noRTP)
	}
	return noRTP, flooding
}

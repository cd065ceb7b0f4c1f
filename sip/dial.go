package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/sip/sdp"
)

// Errors of Server.Dial. They say why an outbound leg was not answered, so that the queue engine
// can count misses. A *DialError, which carries the SIP status, wraps one of them.
var (
	// ErrBusy means the phone answered 486 Busy Here or 600 Busy Everywhere.
	ErrBusy = errors.New("busy")
	// ErrRejected means the phone declined the call: 603 Decline or 403 Forbidden.
	ErrRejected = errors.New("rejected")
	// ErrNoAnswer means the phone did not answer: 408, 480, 487, no response at all, or the
	// dial's context ended (ring timeout, caller gone) and the INVITE was cancelled.
	ErrNoAnswer = errors.New("no answer")
	// ErrDialFailed is any other final failure response.
	ErrDialFailed = errors.New("dial failed")
)

// DialError is a final non-2xx response to an outbound INVITE. It unwraps to ErrBusy,
// ErrRejected, ErrNoAnswer or ErrDialFailed.
type DialError struct {
	Status int
	Reason string
}

var _ error = (*DialError)(nil)

func (e *DialError) Error() string {
	return fmt.Sprintf("sip: dial answered %d %s", e.Status, e.Reason)
}

// Unwrap classifies the status.
func (e *DialError) Unwrap() error { return classifyStatus(e.Status) }

func classifyStatus(status int) error {
	switch status {
	case 486, 600:
		return ErrBusy
	case 603, 403:
		return ErrRejected
	case 408, 480, 487:
		return ErrNoAnswer
	}
	return ErrDialFailed
}

// Header is an extra SIP header for an outbound INVITE.
type Header struct {
	Name, Value string
}

// DialRequest describes an outbound call leg to an advocate's phone. It has no field for the
// caller: the advocate's phone must never see the caller's number, so never put it in Headers.
type DialRequest struct {
	// Target is the phone's contact URI, e.g. "sip:alice@192.0.2.7:5070;transport=udp". It is the
	// Request-URI, and the destination unless SendTo is set.
	Target string
	// SendTo, when set, is the host:port the INVITE (and the dialog's later requests) go to
	// instead of Target's host and port: the source address the phone's REGISTER came from,
	// for phones behind NAT.
	SendTo string
	// Route, when set, is the Route set the INVITE carries (the Path the phone registered
	// with, RFC 3327): the INVITE goes to its first URI, an edge proxy that holds the
	// phone's flow, and SendTo is not used.
	Route []string
	// Transport is "udp", "tcp" or "tls"; empty means Target's transport parameter, else tls
	// for a sips: Target and udp for a sip: one. The server must be serving that transport.
	// Over TLS the phone's open connection (the one it registered over) is reused; without
	// one the server connects, trusting Options.TLSClient's roots.
	Transport string
	// Line is the hotline line the leg is for: Call.Line and logs. FromUser defaults to it.
	Line string
	// FromUser and FromDisplay name the hotline line in the From header.
	FromUser, FromDisplay string
	// Headers are extra headers, e.g. one naming the queue or language for the phone's display.
	// Dialog and body headers (From, To, Via, Contact, Call-ID, CSeq, Content-*, Route...) are
	// not allowed.
	Headers []Header
	// OnProgress, when set, is called on Dial's goroutine for each provisional response other
	// than 100 (180 Ringing, 183 Session Progress). It must not block.
	OnProgress func(status int)
	// Private marks a Target whose user part is a caller's number (a safe callback): it
	// is never logged.
	Private bool
}

// reservedHeaders are the headers Dial builds itself; DialRequest.Headers must not set them.
var reservedHeaders = map[string]bool{
	"via": true, "v": true, "from": true, "f": true, "to": true, "t": true, "call-id": true,
	"i": true, "cseq": true, "contact": true, "m": true, "max-forwards": true, "route": true,
	"record-route": true, "content-type": true, "c": true, "content-length": true, "l": true,
	"content-encoding": true, "e": true, "require": true, "proxy-require": true,
}

// cancelGrace is how long a cancelled dial waits for a provisional response before giving up
// on the INVITE: a CANCEL may only be sent once one has arrived (RFC 3261 9.1).
var cancelGrace = 4 * sipmsg.T1

// outbound is the client side of an outbound leg's dialog.
type outbound struct {
	srv       *Server
	dlg       *sipgo.DialogClientSession
	transport string      // "UDP", "TCP" or "TLS"
	sips      bool        // the target is a sips: URI: our Contact is sips: too
	laddr     sipmsg.Addr // the UDP listener, so that replies come back to it; zero for TCP
	local     netip.Addr

	mu         sync.Mutex
	remoteCSeq uint32 // highest CSeq of the phone's requests; 0 before the first
}

// Dial calls an advocate's phone and returns the answered call. ctx bounds the ringing only
// (the queue engine owns the ring timeout): when it ends before the answer the INVITE is
// cancelled and Dial returns an error matching ErrNoAnswer and ctx's cause. Once answered, the
// call lives until either side hangs up or the server stops; it counts in ActiveCalls.
// Failures are *DialError for a final response, sdp.ErrNotAcceptable when the answer's SDP is
// unusable (the call is then ACKed and hung up), or another wrapped error.
func (s *Server) Dial(ctx context.Context, req DialRequest) (*Call, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sip: dial: %w: %w", ErrNoAnswer, context.Cause(ctx))
	}
	s.mu.Lock()
	parent := s.ctx
	s.mu.Unlock()
	if parent.Err() != nil {
		return nil, errors.New("sip: dial: server stopped")
	}
	target, transport, dest, err := s.dialTarget(ctx, req)
	if err != nil {
		return nil, err
	}
	listenAddr, ok := s.listener(transport)
	if !ok {
		return nil, fmt.Errorf("sip: dial: not serving %s", transport)
	}
	extra, err := checkHeaders(req.Headers)
	if err != nil {
		return nil, err
	}
	fromUser, err := dialFromUser(req)
	if err != nil {
		return nil, err
	}
	o := s.newOutbound(transport, target, dest, listenAddr)
	c, release, err := s.newOutboundCall(req, o, dest)
	if err != nil {
		return nil, err
	}
	inv, from := o.invite(c, target, req.FromDisplay, fromUser, extra)
	for _, r := range req.Route {
		inv.AppendHeader(sipmsg.NewHeader("Route", r))
	}
	inv.SetDestination(dest.String())

	targetUser := target.User
	if req.Private {
		targetUser = "(private)"
	}
	c.log.Info("dialling", "target_user", targetUser, "transport", transport)
	dlg, err := s.dialog.WriteInvite(ctx, inv)
	if err != nil {
		release()
		return nil, fmt.Errorf("sip: dial: send invite: %w", err)
	}
	o.dlg = dlg

	if err := o.waitAnswer(ctx, parent, req.OnProgress); err != nil {
		release()
		c.log.Info("dial failed", "error", err)
		return nil, err
	}
	if err := s.answered(ctx, parent, c, inv, from, release); err != nil {
		return nil, err
	}
	return c, nil
}

// dialFromUser is the user part of an outbound INVITE's From (FromUser, else the line, else
// "hotline"), refused with its display name when either holds what From cannot carry.
func dialFromUser(req DialRequest) (string, error) {
	fromUser := req.FromUser
	if fromUser == "" {
		fromUser = req.Line
	}
	if fromUser == "" {
		fromUser = "hotline"
	}
	if strings.ContainsAny(req.FromDisplay, "\"\\\r\n\x00") {
		return "", errors.New("sip: dial: bad characters in From display name")
	}
	if strings.ContainsAny(fromUser, "@:;<>\"\\ \r\n\x00") {
		return "", errors.New("sip: dial: bad characters in From user")
	}
	return fromUser, nil
}

// newOutbound is the client side of a dial to target at dest over transport, sent from the
// server's listener at listenAddr.
func (s *Server) newOutbound(transport string, target sipmsg.Uri, dest netip.AddrPort, listenAddr net.Addr) *outbound {
	local := s.opts.AdvertiseAddr
	if !local.IsValid() {
		local = localAddrFacing(dest.String())
	}
	o := &outbound{srv: s, transport: strings.ToUpper(transport), local: local,
		sips: strings.EqualFold(target.Scheme, "sips")}
	if transport == "udp" {
		// Send from the listening socket: the phone answers the packet's source, and a NAT
		// binding the phone opened by registering points at it.
		if ua, ok := listenAddr.(*net.UDPAddr); ok {
			o.laddr = sipmsg.Addr{IP: ua.IP, Port: ua.Port}
		}
	}
	return o
}

// newOutboundCall makes the call of a dial and its RTP leg, silent until answered, and counts
// it in ActiveCalls; release closes and uncounts it when the dial fails.
func (s *Server) newOutboundCall(req DialRequest, o *outbound, dest netip.AddrPort) (c *Call, release func(), err error) {
	callID := newID()
	log := s.log.With("call", callID, "line", req.Line, "direction", "outbound")
	c = &Call{
		ID:     callID,
		Line:   req.Line,
		srv:    s,
		log:    log,
		out:    o,
		local:  o.local,
		peer:   dest.Addr().Unmap(),
		media:  sdp.Media{PayloadType: sdp.PayloadPCMU},
		sessID: randUint63(),
		digits: make(chan rune, digitBuffer),
	}
	leg, err := media.NewLeg(s.opts.Scheduler, s.opts.Ports, media.LegConfig{
		PayloadType: sdp.PayloadPCMU,
		// RTP the phone sends us uses our offer's payload types (RFC 3264 5.1).
		DTMFPayloadType:   sdp.OfferDTMFPayload,
		Peer:              dest.Addr().Unmap(),
		InactivityTimeout: s.opts.InactivityTimeout,
		OnDigit:           c.pushDigit,
		Logger:            log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sip: dial: %w", err)
	}
	leg.SetDirection(false, false) // silent, and no inactivity timeout, until answered
	c.leg = leg
	s.active.Add(1)
	s.wg.Add(1)
	release = func() {
		leg.Close()
		c.closeDigits()
		s.active.Add(-1)
		s.wg.Done()
	}
	return c, release, nil
}

// invite is the INVITE of call c to target, with our SDP offer and the extra headers.
func (o *outbound) invite(c *Call, target sipmsg.Uri, display, fromUser string, extra []sipmsg.Header) (*sipmsg.Request, *sipmsg.FromHeader) {
	inv := sipmsg.NewRequest(sipmsg.INVITE, *target.Clone())
	inv.AppendHeader(o.via())
	from := &sipmsg.FromHeader{
		DisplayName: display,
		Address:     sipmsg.Uri{Scheme: "sip", User: fromUser, Host: uriHost(o.local)},
		Params:      sipmsg.NewParams(),
	}
	from.Params.Add("tag", sipmsg.GenerateTagN(16))
	inv.AppendHeader(from)
	inv.AppendHeader(&sipmsg.ToHeader{
		Address: sipmsg.Uri{Scheme: target.Scheme, User: target.User, Host: target.Host},
		Params:  sipmsg.NewParams(),
	})
	cid := sipmsg.CallIDHeader(newID() + newID())
	inv.AppendHeader(&cid)
	inv.AppendHeader(&sipmsg.CSeqHeader{SeqNo: 1, MethodName: sipmsg.INVITE})
	maxFwd := sipmsg.MaxForwardsHeader(70)
	inv.AppendHeader(&maxFwd)
	inv.AppendHeader(o.contact())
	inv.AppendHeader(allowHeader())
	for _, h := range extra {
		inv.AppendHeader(h)
	}
	inv.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(sdp.Offer(o.local, c.leg.LocalPort(), c.sessID, c.nextVersion()))
	o.prepare(inv)
	return inv, from
}

// answered takes an answered dial into service: its dialog becomes findable by the in-dialog
// handlers, the 200 is ACKed and its SDP answer applied. An unusable answer hangs the call up
// (release undoes the dial then).
func (s *Server) answered(ctx, parent context.Context, c *Call, inv *sipmsg.Request, from *sipmsg.FromHeader, release func()) error {
	// Make the dialog findable by the BYE/INFO/re-INVITE handlers before anything else: they
	// key dialogs by Call-ID, our tag, their tag (sipgo's UAS order).
	o, log := c.out, c.log
	res := o.dlg.InviteResponse
	remoteTag, _ := res.To().Params.Get("tag")
	localTag, _ := from.Params.Get("tag")
	id := sipmsg.DialogIDMake(inv.CallID().Value(), localTag, remoteTag)
	callCtx, cancel := context.WithCancelCause(parent)
	c.ctx, c.cancel = callCtx, cancel
	s.mu.Lock()
	s.calls[id] = c
	s.mu.Unlock()

	if err := o.ack(ctx); err != nil {
		log.Warn("ack failed", "error", err)
	}
	m, err := sdp.NegotiateAnswer(res.Body())
	if err != nil {
		log.Warn("unusable sdp answer, hanging up", "error", err)
		c.terminate(ctx, ErrMediaFailed)
		s.mu.Lock()
		delete(s.calls, id)
		s.mu.Unlock()
		release()
		return fmt.Errorf("sip: dial: answer: %w", err)
	}
	c.applyMedia(m)
	log.Info("outbound call answered", "pt", m.PayloadType)
	s.goSafe(func() { c.runOutbound(id) })
	return nil
}

// waitAnswer waits for the final response to the INVITE. When ctx or the server's context ends
// first it cancels the INVITE and waits for the 487; a 2xx that crossed the CANCEL is ACKed
// and hung up.
func (o *outbound) waitAnswer(ctx, server context.Context, onProgress func(int)) error {
	// sipgo's WaitAnswer sends CANCEL when its context ends, but may only do so after a
	// provisional response: waitCtx is cancelled after one arrived, or cancelGrace after ctx
	// ended without one (then the INVITE transaction is dropped without CANCEL).
	waitCtx, stopWait := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopWait(nil)
	provisional := make(chan struct{})
	var provOnce sync.Once
	returned := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-ctx.Done():
		case <-server.Done():
		case <-returned:
			return
		}
		t := time.NewTimer(cancelGrace)
		defer t.Stop()
		select {
		case <-provisional:
			stopWait(context.Canceled)
		case <-t.C:
			stopWait(sipgo.WaitAnswerForceCancelErr)
		case <-returned:
		}
	}()
	err := o.dlg.WaitAnswer(waitCtx, sipgo.AnswerOptions{
		OnResponse: func(res *sipmsg.Response) error {
			if res.IsProvisional() {
				provOnce.Do(func() { close(provisional) })
				if res.StatusCode != 100 && onProgress != nil {
					onProgress(res.StatusCode)
				}
			}
			return nil
		},
	})
	close(returned)
	<-watcher

	stopped := ctx.Err() != nil || server.Err() != nil
	if err == nil && !stopped {
		return nil
	}
	if res := o.dlg.InviteResponse; res != nil && res.IsSuccess() {
		// Answered as we gave up: confirm the dialog, then end it (RFC 3261 15).
		bctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		defer cancel()
		if aerr := o.ack(bctx); aerr == nil {
			_ = o.bye(bctx)
		}
	}
	if stopped {
		cause := context.Cause(ctx)
		if ctx.Err() == nil {
			cause = ErrServerHangup
		}
		return fmt.Errorf("sip: dial: %w: %w", ErrNoAnswer, cause)
	}
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) && de.Res != nil {
		return &DialError{Status: de.Res.StatusCode, Reason: de.Res.Reason}
	}
	var dev sipgo.ErrDialogResponse
	if errors.As(err, &dev) && dev.Res != nil {
		return &DialError{Status: dev.Res.StatusCode, Reason: dev.Res.Reason}
	}
	if errors.Is(err, sipmsg.ErrTransactionTimeout) {
		return fmt.Errorf("sip: dial: %w: %w", ErrNoAnswer, err)
	}
	return fmt.Errorf("sip: dial: %w", err)
}

// runOutbound watches an answered outbound leg until it ends, then releases it. It sends our BYE
// itself (unless the phone hung up) so that Serve waits for it at shutdown.
func (c *Call) runOutbound(id string) {
	s := c.srv
	defer func() {
		c.closeDigits()
		c.leg.Close()
		s.mu.Lock()
		delete(s.calls, id)
		s.mu.Unlock()
		s.active.Add(-1)
		c.log.Info("outbound call ended", "cause", context.Cause(c.ctx))
		s.wg.Done()
	}()
	select {
	case <-c.leg.Done():
		switch err := c.leg.Err(); {
		case errors.Is(err, media.ErrInactive):
			c.log.Info("rtp inactivity timeout")
			c.terminate(context.Background(), ErrMediaTimeout)
		default:
			c.log.Error("media failed", "error", err)
			c.terminate(context.Background(), ErrMediaFailed)
		}
	case <-c.ctx.Done():
		// Ended by the phone's BYE (no BYE of ours then: readBye used byeOnce), by Hangup, or
		// by the server stopping.
		c.byeOnce.Do(func() { _ = c.sendBye(context.Background()) })
	}
}

// dialTarget parses the request's target and works out the transport and the address to send to.
func (s *Server) dialTarget(ctx context.Context, req DialRequest) (sipmsg.Uri, string, netip.AddrPort, error) {
	var target sipmsg.Uri
	if err := sipmsg.ParseUri(req.Target, &target); err != nil {
		return target, "", netip.AddrPort{}, fmt.Errorf("sip: dial: bad target: %w", err)
	}
	scheme := strings.ToLower(target.Scheme)
	if (scheme != "sip" && scheme != "sips") || target.Host == "" {
		return target, "", netip.AddrPort{}, errors.New("sip: dial: target must be a sip: or sips: URI with a host")
	}
	transport := strings.ToLower(req.Transport)
	if transport == "" {
		if t, ok := target.UriParams.Get("transport"); ok {
			transport = strings.ToLower(t)
		}
	}
	if transport == "" {
		transport = "udp"
		if scheme == "sips" {
			transport = "tls"
		}
	}
	if transport != "udp" && transport != "tcp" && transport != "tls" {
		return target, "", netip.AddrPort{}, fmt.Errorf("sip: dial: unsupported transport %q", transport)
	}
	if scheme == "sips" && transport != "tls" {
		return target, "", netip.AddrPort{}, fmt.Errorf("sip: dial: a sips: target needs transport tls, not %s", transport)
	}
	host, port := target.Host, target.Port
	switch {
	case len(req.Route) > 0:
		hop, err := routeNextHop(req.Route)
		if err != nil {
			return target, "", netip.AddrPort{}, fmt.Errorf("sip: dial: %w", err)
		}
		host, port = hop.Host, hop.Port
	case req.SendTo != "":
		h, p, err := net.SplitHostPort(req.SendTo)
		if err != nil {
			return target, "", netip.AddrPort{}, fmt.Errorf("sip: dial: bad send-to address: %w", err)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return target, "", netip.AddrPort{}, fmt.Errorf("sip: dial: bad send-to port %q", p)
		}
		host, port = h, n
	}
	if port == 0 {
		port = 5060
	}
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		ips, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if lerr != nil || len(ips) == 0 {
			return target, "", netip.AddrPort{}, fmt.Errorf("sip: dial: resolve %q: %w", host, errors.Join(lerr, errors.New("no address")))
		}
		addr = ips[0]
	}
	return target, transport, netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// listener returns the address of the server's listener for transport, once Serve started it.
func (s *Server) listener(transport string) (net.Addr, bool) {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	a, ok := s.listenAddrs[transport]
	return a, ok
}

func checkHeaders(hs []Header) ([]sipmsg.Header, error) {
	out := make([]sipmsg.Header, 0, len(hs))
	for _, h := range hs {
		if h.Name == "" || strings.IndexFunc(h.Name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			return nil, fmt.Errorf("sip: dial: bad header name %q", h.Name)
		}
		if reservedHeaders[strings.ToLower(h.Name)] {
			return nil, fmt.Errorf("sip: dial: header %s may not be set", h.Name)
		}
		if strings.ContainsAny(h.Value, "\r\n\x00") {
			return nil, fmt.Errorf("sip: dial: bad value for header %s", h.Name)
		}
		out = append(out, sipmsg.NewHeader(h.Name, h.Value))
	}
	return out, nil
}

// isTokenChar reports whether r may appear in a SIP token (RFC 3261 25.1).
func isTokenChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("-.!%*_+`'~", r)
}

func uriHost(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// via is a new top Via for a request we send: our address and listening port, rport asked for.
func (o *outbound) via() *sipmsg.ViaHeader {
	v := &sipmsg.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       o.transport,
		Host:            uriHost(o.srv.contactAddr(o.transport, o.local)),
		Port:            o.srv.listenPort(o.transport),
		Params:          sipmsg.NewParams(),
	}
	v.Params.Add("branch", sipmsg.GenerateBranchN(16))
	v.Params.Add("rport", "")
	return v
}

func (o *outbound) contact() *sipmsg.ContactHeader {
	u := sipmsg.Uri{Scheme: "sip", User: "hotline", Host: uriHost(o.srv.contactAddr(o.transport, o.local)), Port: o.srv.listenPort(o.transport)}
	if o.sips {
		u.Scheme = "sips"
	} else if o.transport != "UDP" {
		u.UriParams = sipmsg.NewParams()
		u.UriParams.Add("transport", strings.ToLower(o.transport))
	}
	return &sipmsg.ContactHeader{Address: u}
}

// prepare sets the transport and, for UDP, the listening socket to send from.
func (o *outbound) prepare(req *sipmsg.Request) {
	req.SetTransport(o.transport)
	if o.laddr.IP != nil {
		o.laddr.Copy(&req.Laddr)
	}
}

// remoteTarget is the phone's Contact from its 2xx, where in-dialog requests go (RFC 3261 12.1.2).
func (o *outbound) remoteTarget() sipmsg.Uri {
	if ct := o.dlg.InviteResponse.Contact(); ct != nil {
		return *ct.Address.Clone()
	}
	return *o.dlg.InviteRequest.Recipient.Clone()
}

// ack acknowledges the 2xx. sipgo re-sends it for every retransmission of the 2xx.
func (o *outbound) ack(ctx context.Context) error {
	inv, res := o.dlg.InviteRequest, o.dlg.InviteResponse
	ack := sipmsg.NewRequest(sipmsg.ACK, o.remoteTarget())
	ack.AppendHeader(o.via())
	ack.AppendHeader(sipmsg.HeaderClone(inv.From()))
	ack.AppendHeader(sipmsg.HeaderClone(res.To()))
	ack.AppendHeader(sipmsg.HeaderClone(inv.CallID()))
	ack.AppendHeader(&sipmsg.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sipmsg.ACK})
	maxFwd := sipmsg.MaxForwardsHeader(70)
	ack.AppendHeader(&maxFwd)
	ack.AppendHeader(o.contact())
	ack.SetBody(nil)
	o.prepare(ack)
	if err := o.dlg.WriteAck(ctx, ack); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// bye sends BYE in the dialog, to the phone's Contact through the address its answer came
// from (for NAT), and waits for the answer.
func (o *outbound) bye(ctx context.Context) error {
	req := sipmsg.NewRequest(sipmsg.BYE, o.remoteTarget())
	req.AppendHeader(o.via())
	req.AppendHeader(o.contact())
	o.prepare(req)
	tx, err := o.dlg.TransactionRequest(ctx, req)
	if err != nil {
		return fmt.Errorf("bye: %w", err)
	}
	return awaitByeResponse(ctx, tx)
}

// readRequest checks the CSeq of a request from the phone. sipgo's Dialog.ReadRequest compares
// it with our INVITE's CSeq, but the phone numbers its requests independently (RFC 3261 12.2.2).
func (o *outbound) readRequest(req *sipmsg.Request) error {
	cseq := req.CSeq()
	if cseq == nil {
		return errors.New("no cseq")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.remoteCSeq != 0 && cseq.SeqNo < o.remoteCSeq {
		return sipgo.ErrDialogInvalidCseq
	}
	o.remoteCSeq = cseq.SeqNo
	return nil
}

// The helpers below let the server's in-dialog handlers treat inbound calls and outbound legs
// alike.

func (c *Call) readRequest(req *sipmsg.Request, tx sipmsg.ServerTransaction) error {
	if c.out != nil {
		return c.out.readRequest(req)
	}
	return c.dialog.ReadRequest(req, tx)
}

func (c *Call) readAck(req *sipmsg.Request, tx sipmsg.ServerTransaction) error {
	if c.out != nil {
		// The ACK for our 2xx to a re-INVITE: nothing to track.
		return nil
	}
	return c.dialog.ReadAck(req, tx)
}

func (c *Call) confirmed() bool {
	if c.out != nil {
		return true // we ACKed before the call became findable
	}
	return c.dialog.LoadState() >= sipmsg.DialogStateConfirmed
}

func (c *Call) readBye(req *sipmsg.Request, tx sipmsg.ServerTransaction) error {
	if c.out == nil {
		return c.dialog.ReadBye(req, tx)
	}
	if err := c.out.readRequest(req); err != nil {
		return err
	}
	if err := c.out.dlg.ReadBye(req, tx); err != nil {
		return err
	}
	c.byeOnce.Do(func() {}) // the phone ended the dialog: no BYE of ours
	return nil
}

// byeCause is the cause a BYE from the other side gives the call's context.
func (c *Call) byeCause() error {
	if c.out != nil {
		return ErrRemoteHangup
	}
	return ErrCallerHangup
}

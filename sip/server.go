package sip

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/outcome"
	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/sip/defence"
	"github.com/hotline-project/hotline/sip/digest"
	"github.com/hotline-project/hotline/sip/gate"
	"github.com/hotline-project/hotline/sip/sdp"
)

// Handler runs one answered call. It is called on the call's own goroutine after the caller
// acknowledged the answer; when it returns the call is hung up if it is still up.
type Handler func(ctx context.Context, c *Call)

// LineLookup maps the user part of an INVITE's Request-URI to a configured line name.
type LineLookup func(dialled string) (name string, ok bool)

// Observer receives events for metrics. Implementations must be cheap and concurrency safe.
type Observer interface {
	Request(method string)
	Response(method string, status int)
	CallStarted(line string)
	CallEnded(line string, end outcome.Leg)
}

// Options configure a Server.
type Options struct {
	Lines             LineLookup
	Handler           Handler
	UserAgent         string
	AckTimeout        time.Duration // how long to retransmit the 200 OK before giving up; default 32 s
	AnswerDelay       time.Duration // ring (180) this long before answering; 0 answers at once
	MaxCalls          int           // 0 = unlimited; beyond it INVITEs get 503
	Scheduler         *media.Scheduler
	Ports             *media.Ports
	AdvertiseAddr     netip.Addr // media/Contact address in SDP; zero = the local address facing each caller
	InactivityTimeout time.Duration
	InbandDTMF        media.InbandMode // when callers' keys sent as tones in the audio are detected
	Observer          Observer
	Logger            *slog.Logger
	GateLimits        gate.Limits // what one message or stream connection may cost; zero fields take gate.DefaultLimits

	// Auth and Registrar, both set, let advocates' phones register (REGISTER) and dial
	// feature codes (INVITE to *NN), authenticated by digest; without them REGISTER gets 405
	// and feature codes 404. Callers dialling a line are never challenged.
	Auth      *digest.Authenticator
	Registrar *registrar.Registrar
	// Presence, if set, is told when advocates come online and go offline.
	Presence PresenceFunc
	// Feature acts on a feature code from an authenticated advocate; nil answers 404 to
	// every code. On success the call is answered and FeatureHandler runs it (to play a
	// confirmation); with FeatureHandler nil the server hangs up at once.
	Feature        FeatureFunc
	FeatureHandler Handler
	// Now is the clock for authentication, registrations and limits; nil is time.Now.
	Now func() time.Time
	// Defences, if set, applies per-source defences: bans after failed authentication, a
	// request rate and a cap on calls in progress (see defence.go). DefenceObserver, if set,
	// counts what they refuse.
	Defences        *defence.Limiter
	DefenceObserver DefenceObserver
	// ConnObserver, if set, counts the TCP and TLS connections the listeners refuse or close
	// (package gate).
	ConnObserver gate.ConnObserver
	// Budget, if set, bounds the calls to lines from sources Defences does not trust, as a
	// whole and while unacknowledged (defence.Budget); UnackedTimeout, if shorter than
	// AckTimeout, is how long such a call waits for its ACK.
	Budget         *defence.Budget
	UnackedTimeout time.Duration
	// TLS is the server side of SIP over TLS: its certificate (Certificates or
	// GetCertificate). It is required to serve Listeners.TLS; MinVersion is raised to TLS 1.2.
	TLS *tls.Config
	// TLSClient is used when the server must open a TLS connection to a phone (an advocate's
	// phone registered over TLS whose connection has closed): RootCAs to trust its
	// certificate. Nil trusts the system's roots. A phone's open connection is always reused.
	TLSClient *tls.Config
	// LineSRTP returns a line's SRTP policy for callers' offers (SDES, RFC 4568); nil, and
	// feature codes, are sdp.SRTPOff. Outbound legs to advocates always offer plain RTP/AVP.
	LineSRTP func(line string) sdp.SRTPPolicy
	// Overload, if set, sheds new calls (503 with Retry-After) when they cannot be set up in
	// time (overload.go); OverloadObserver, if set, counts them.
	Overload         *Overload
	OverloadObserver OverloadObserver
}

// Listeners are the sockets a Server answers on; any may be nil, not all.
type Listeners struct {
	UDP net.PacketConn
	TCP net.Listener
	// TLS is a plain TCP listener: the server speaks TLS on it with Options.TLS.
	TLS net.Listener
}

// Server is the hotline's SIP user agent server.
type Server struct {
	opts   Options
	log    *slog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dialog sipgo.DialogUA
	gate   *gate.Gate // checks every received message before sipgo does (package gate)

	mu     sync.Mutex
	calls  map[string]*Call // by dialog ID
	active atomic.Int64
	wg     sync.WaitGroup
	ctx    context.Context

	listenMu    sync.Mutex
	ports       map[string]int      // transport -> listen port, for Contact
	listenAddrs map[string]net.Addr // transport -> listener address, for outbound requests (dial.go)
	udp         net.PacketConn      // the UDP socket served, for stateless responses

	presenceMu sync.Mutex // orders registrations and their presence events

	draining atomic.Bool // Drain was called
}

// NewServer builds a Server. Call Serve to start answering.
func NewServer(opts Options) (*Server, error) {
	if opts.Lines == nil || opts.Handler == nil || opts.Scheduler == nil || opts.Ports == nil {
		return nil, errors.New("sip: Lines, Handler, Scheduler and Ports are required")
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 64 * sipmsg.T1
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "hotline"
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	slog := sipgoLogger(log)
	opts.GateLimits = opts.GateLimits.WithDefaults()
	parser := gate.NewParser()
	parser.MaxMessageLength = opts.GateLimits.MaxMessageBytes
	uaOpts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(opts.UserAgent),
		sipgo.WithUserAgentParser(parser),
	}
	if opts.TLSClient != nil {
		c := opts.TLSClient.Clone()
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(c))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog))
	if err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(slog))
	if err != nil {
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	s := &Server{
		opts:   opts,
		log:    log,
		ua:     ua,
		srv:    srv,
		client: client,
		calls:  map[string]*Call{},
		ports:  map[string]int{},
		ctx:    context.Background(),
	}
	s.dialog = sipgo.DialogUA{Client: client, RewriteContact: true}
	gc := gate.Config{Parser: parser, Limits: opts.GateLimits, Log: log, Observer: opts.Observer,
		ConnObserver: opts.ConnObserver, Admit: s.admit, Early: s.shedEarlier}
	if opts.Defences != nil {
		gc.Trusted = opts.Defences.Trusted
	}
	s.gate = gate.New(gc)
	srv.OnInvite(s.guard(s.onInvite))
	srv.OnAck(s.guard(s.onAck))
	srv.OnBye(s.guard(s.onBye))
	srv.OnCancel(s.guard(s.onCancel))
	srv.OnOptions(s.guard(s.onOptions))
	srv.OnInfo(s.guard(s.onInfo))
	srv.OnNoRoute(s.guard(s.onNoRoute))
	if s.authEnabled() {
		srv.OnRegister(s.guard(s.onRegister))
	}
	return s, nil
}

// Serve answers SIP on the given UDP socket and TCP listener (either may be nil) until ctx is
// done, then hangs up the calls in progress and returns.
func (s *Server) Serve(ctx context.Context, udp net.PacketConn, tcp net.Listener) error {
	return s.ServeListeners(ctx, Listeners{UDP: udp, TCP: tcp})
}

// ServeListeners answers SIP on ls until ctx is done, then hangs up the calls in progress,
// closes the listeners and returns.
func (s *Server) ServeListeners(ctx context.Context, ls Listeners) error {
	udp, tcp := ls.UDP, ls.TCP
	var tlsConf *tls.Config
	if ls.TLS != nil {
		if s.opts.TLS == nil || (len(s.opts.TLS.Certificates) == 0 && s.opts.TLS.GetCertificate == nil && s.opts.TLS.GetConfigForClient == nil) {
			return errors.New("sip: a TLS listener needs Options.TLS with a certificate")
		}
		tlsConf = s.opts.TLS.Clone()
		if tlsConf.MinVersion < tls.VersionTLS12 {
			tlsConf.MinVersion = tls.VersionTLS12
		}
	}
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	errc := make(chan error, 3)
	n := 0
	if ls.TLS != nil {
		n++
		s.setPort("tls", ls.TLS.Addr())
		tl := &tlsListener{Listener: ls.TLS, conf: tlsConf, timeout: s.opts.GateLimits.TLSHandshakeTimeout,
			now: time.Now, log: s.log}
		go func() { errc <- s.srv.ServeTLS(s.gate.TLSListener(tl)) }()
	}
	if udp != nil {
		n++
		s.setPort("udp", udp.LocalAddr())
		s.listenMu.Lock()
		s.udp = udp
		s.listenMu.Unlock()
		pc := s.gate.PacketConn(udp)
		go func() {
			for {
				err := s.srv.ServeUDP(pc)
				if pc.Rotated() && ctx.Err() == nil {
					continue // see gate.PacketConn: sipgo forgets the sources it recorded
				}
				errc <- err
				return
			}
		}()
	}
	if tcp != nil {
		n++
		s.setPort("tcp", tcp.Addr())
		go func() { errc <- s.srv.ServeTCP(s.gate.Listener(tcp)) }()
	}
	if n == 0 {
		return errors.New("sip: no listener")
	}
	expireDone := make(chan struct{})
	expireCtx, stopExpire := context.WithCancel(ctx)
	go func() {
		defer close(expireDone)
		if s.authEnabled() {
			s.expireLoop(expireCtx)
		}
	}()
	defer func() { stopExpire(); <-expireDone }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("sip: listener stopped: %w", err)
	}
	s.hangupAll()
	s.wg.Wait()
	if udp != nil {
		udp.Close()
	}
	if tcp != nil {
		tcp.Close()
	}
	if ls.TLS != nil {
		ls.TLS.Close()
	}
	s.ua.Close()
	return err
}

func (s *Server) setPort(transport string, a net.Addr) {
	_, p, _ := net.SplitHostPort(a.String())
	port, _ := strconv.Atoi(p)
	s.listenMu.Lock()
	s.ports[transport] = port
	if s.listenAddrs == nil {
		s.listenAddrs = map[string]net.Addr{}
	}
	s.listenAddrs[transport] = a
	s.listenMu.Unlock()
}

func (s *Server) listenPort(transport string) int {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	if p, ok := s.ports[strings.ToLower(transport)]; ok {
		return p
	}
	return s.ports["udp"]
}

// contactAddr is the address our Contact names for transport: the listener's own when it
// listens on one address (a node behind a proxy, on its own interface), else local (the
// address facing the peer, or the advertised one).
func (s *Server) contactAddr(transport string, local netip.Addr) netip.Addr {
	if a, ok := s.listener(strings.ToLower(transport)); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil && !ap.Addr().IsUnspecified() {
			return ap.Addr().Unmap()
		}
	}
	return local
}

// drainRetryAfter is the Retry-After of a draining server's 503s, in seconds: long enough
// that the sender tries another node rather than this one again.
const drainRetryAfter = "300"

// Drain makes the server refuse new calls and OPTIONS with 503 and Retry-After, while the
// calls in progress, registrations and advocates' feature codes go on. It cannot be undone:
// a draining server is about to stop.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// OpenConnections returns the number of SIP connections open over transport ("tcp" or
// "tls"), for metrics.
func (s *Server) OpenConnections(transport string) int { return s.gate.OpenConnections(transport) }

// ActiveCalls returns the number of calls in progress.
func (s *Server) ActiveCalls() int { return int(s.active.Load()) }

// reserveCall counts a new call in, unless MaxCalls are already in progress. Checking and
// counting are one step (compare-and-swap): INVITEs are handled concurrently, and a check
// followed later by an increment let a burst of them all pass the limit together
// (issue 9: 2,001 calls answered with max_calls 2,000). Give the place back with
// s.active.Add(-1).
func (s *Server) reserveCall() bool {
	limit := int64(s.opts.MaxCalls)
	for {
		n := s.active.Load()
		if limit > 0 && n >= limit {
			return false
		}
		if s.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Server) hangupAll() {
	s.mu.Lock()
	calls := make([]*Call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	for _, c := range calls {
		s.goSafe(func() { c.Hangup(context.Background(), "server shutting down") })
	}
}

// guard wraps a handler so that a panic is logged and answered with 500 instead of killing the
// process: one bad message must never take the hotline down.
func (s *Server) guard(h func(req *sipmsg.Request, tx sipmsg.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("panic in sip handler", "method", string(req.Method), "panic", r, "stack", string(debug.Stack()))
				if tx != nil && !req.IsAck() {
					s.respond(tx, req, 500, "Server Internal Error", nil)
				}
			}
		}()
		if s.screen(req, tx) {
			h(req, tx)
		}
	}
}

// screen counts a request and answers it if a call's own rate limits it or it requires an
// extension; it reports whether the request goes on to its handler. (Apart from guard:
// an INVITE's handler runs the whole call below guard's frame.)
//
//go:noinline
func (s *Server) screen(req *sipmsg.Request, tx sipmsg.ServerTransaction) bool {
	// The per-source limits were applied by the gate before sipgo saw the request
	// (defence.go admit); a call's own in-dialog rate applies here.
	s.opts.Observer.Request(string(req.Method))
	if s.limited(req, tx) {
		return false
	}
	if opts := requiredExtensions(req); len(opts) > 0 && !req.IsAck() && !req.IsCancel() {
		// We support no SIP extensions that a client may require (RFC 3261 8.2.2.3).
		s.respond(tx, req, 420, "Bad Extension", nil, sipmsg.NewHeader("Unsupported", strings.Join(opts, ", ")))
		return false
	}
	return true
}

// goSafe runs f on its own goroutine; a panic there is logged, never fatal to the process.
func (s *Server) goSafe(f func()) {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("panic in sip goroutine", "panic", r, "stack", string(debug.Stack()))
			}
		}()
		f()
	}()
}

// respond sends a response built from req and counts it.
//
// A final error response (300 and up) to a request that came over UDP is sent statelessly:
// written once, and the transaction left unanswered so that sipgo ends it at once. Through the
// transaction, an INVITE's error response would be retransmitted until an ACK came, 11 times
// over 32 s, towards whatever source the request claimed (issue 14: 12x amplification), and
// every refused request would be held 32 s. A real client that misses the response
// retransmits its request and is answered again (RFC 3261 8.2.7, 17.1.1.2).
func (s *Server) respond(tx sipmsg.ServerTransaction, req *sipmsg.Request, code int, reason string, body []byte, hdrs ...sipmsg.Header) {
	res := sipmsg.NewResponseFromRequest(req, code, reason, body)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	s.send(tx, req, res)
}

// send sends res, a response to req, through tx, or statelessly as respond explains, and
// counts it.
func (s *Server) send(tx sipmsg.ServerTransaction, req *sipmsg.Request, res *sipmsg.Response) {
	code := res.StatusCode
	if code >= 300 && !sipmsg.IsReliable(req.Transport()) {
		statelessToTag(req, res)
		if err := s.writeUDP(res); err != nil {
			s.log.Debug("stateless respond failed", "status", code, "error", err)
			return
		}
		s.opts.Observer.Response(string(req.Method), code)
		return
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "status", code, "error", err)
		return
	}
	s.opts.Observer.Response(string(req.Method), code)
}

// writeUDP sends res on the UDP socket we serve, to its destination (the request's source,
// as every Via carries rport). It does not go through sipgo's connection pool, which forgets
// sources (gate.PacketConn).
func (s *Server) writeUDP(res *sipmsg.Response) error {
	s.listenMu.Lock()
	conn := s.udp
	s.listenMu.Unlock()
	ap, err := netip.ParseAddrPort(res.Destination())
	if conn == nil || err != nil {
		return s.srv.WriteResponse(res)
	}
	_, err = conn.WriteTo([]byte(res.String()), net.UDPAddrFromAddrPort(ap))
	return err
}

// requiredExtensions lists the option tags of the request's Require headers.
func requiredExtensions(req *sipmsg.Request) []string {
	var opts []string
	for _, h := range req.GetHeaders("Require") {
		for _, o := range strings.Split(h.Value(), ",") {
			if o = strings.TrimSpace(o); o != "" && (req.Method != sipmsg.REGISTER || !strings.EqualFold(o, "path")) {
				// The registrar supports Path (RFC 3327, path.go).
				opts = append(opts, o)
			}
		}
	}
	return opts
}

func allowHeader() sipmsg.Header {
	return sipmsg.NewHeader("Allow", strings.Join(gate.AllowedMethods, ", "))
}

func (s *Server) onNoRoute(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if gate.KnownMethods[string(req.Method)] {
		s.respond(tx, req, 405, "Method Not Allowed", nil, allowHeader())
		return
	}
	s.respond(tx, req, 501, "Not Implemented", nil, allowHeader())
}

func (s *Server) onOptions(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if s.draining.Load() {
		// Load balancers (Kamailio's dispatcher) ping with OPTIONS: 503 takes the node out.
		s.respond(tx, req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", drainRetryAfter))
		return
	}
	s.respond(tx, req, 200, "OK", nil, allowHeader(),
		sipmsg.NewHeader("Accept", "application/sdp"))
}

func (s *Server) onCancel(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	// A CANCEL matching a pending INVITE is answered by the transaction layer (200, then 487 to
	// the INVITE). One that reaches us matched nothing.
	s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
}

func (s *Server) lookupCall(req *sipmsg.Request) *Call {
	id, err := sipmsg.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

func (s *Server) onAck(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	c := s.lookupCall(req)
	if c == nil {
		// An ACK for a non-2xx final response is absorbed by the transaction layer; this one
		// matches no call (a late retransmission, or a stray).
		s.log.Debug("ack matches no call")
		return
	}
	if !c.fromPeer(req) {
		// Its SDP would be the call's media; the peer's own ACK is still to come.
		c.log.Debug("ack from another address than the dialog's peer ignored")
		return
	}
	if body := req.Body(); len(body) > 0 {
		c.mu.Lock()
		c.ackBody = append([]byte(nil), body...)
		pending := c.pendingOffer
		c.pendingOffer = false
		c.mu.Unlock()
		if pending && c.confirmed() {
			// Answer to the offer we made in a re-INVITE's 200.
			if m, err := sdp.NegotiateAnswer(body); err == nil {
				c.applyMedia(m)
			} else {
				c.log.Warn("bad sdp answer in ack", "error", err)
			}
		}
	}
	if err := c.readAck(req, tx); err != nil {
		c.log.Debug("ack not for the current invite", "error", err)
	}
}

func (s *Server) onBye(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	c := s.lookupCall(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if !c.fromPeer(req) {
		// With the dialog's identifiers a third party could otherwise cut the caller off.
		c.log.Info("bye from another address than the dialog's peer refused")
		s.respond(tx, req, 403, "Forbidden", nil)
		return
	}
	if err := c.readBye(req, tx); err != nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	s.opts.Observer.Response("BYE", 200)
	c.end(c.byeCause())
}

func (s *Server) onInfo(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	c := s.lookupCall(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if !c.fromPeer(req) {
		// Digits choose the caller's way through the menu: only the caller may press them.
		c.log.Info("info from another address than the dialog's peer refused")
		s.respond(tx, req, 403, "Forbidden", nil)
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(h.Value()))
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	switch ct {
	case "application/dtmf-relay", "application/dtmf":
		d, err := ParseDTMFInfo(ct, req.Body())
		if err != nil {
			s.respond(tx, req, 400, "Bad DTMF", nil)
			return
		}
		c.pushDigit(d)
		s.respond(tx, req, 200, "OK", nil)
	case "":
		// Empty INFO is a keep-alive some phones send.
		s.respond(tx, req, 200, "OK", nil)
	default:
		s.respond(tx, req, 415, "Unsupported Media Type", nil,
			sipmsg.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
	}
}

// onInvite takes a new call to a line (or an advocate's feature code) through its steps:
// admit (whom it is for, and whether the server takes it), negotiate (the offer), set up (the
// call's leg and dialog), answer (the 200 and its ACK), run (the Handler) and close, with the
// leg's outcome. An INVITE inside a dialog is a re-INVITE.
func (s *Server) onInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.onReInvite(req, tx)
		return
	}
	in, ok := s.admitInvite(req, tx)
	if !ok {
		return
	}
	defer in.release()
	c, offered, ok := s.prepareCall(in)
	if !ok {
		return
	}
	s.serveCall(c, in, offered)
}

// prepareCall negotiates the media of an admitted INVITE and sets its call up.
//
//go:noinline
func (s *Server) prepareCall(in *invite) (c *Call, offered, ok bool) {
	m, offered, ok := s.negotiateInvite(in)
	if !ok {
		return nil, false, false
	}
	if in.feature != "" && !s.featureInvite(in) {
		return nil, false, false
	}
	c, ok = s.setUpCall(in, m, offered)
	return c, offered, ok
}

// serveCall answers a call set up and runs its handler until the call ends. The
// handler's goroutine parks below it for the whole call, so onInvite and serveCall keep
// small frames (callflow.Flow.Handle says why).
func (s *Server) serveCall(c *Call, in *invite, offered bool) {
	end := outcome.LegCompleted
	handled := false // the Handler took the call: it records it
	defer func() { s.closeCall(c, in, end, handled) }()
	c.log.Info("incoming call")
	in.setup.Ready()
	if e := s.answerCall(c, in, offered); e != "" {
		end = e
		return
	}
	handler := s.opts.Handler
	if c.Feature != "" {
		handler = s.opts.FeatureHandler
	}
	handled = handler != nil
	end = s.runCall(c, handler)
}

// invite is a new call's INVITE as it goes through admission: what it is for, and the place
// it holds among the calls in progress until it is set up or refused.
type invite struct {
	req                     *sipmsg.Request
	tx                      sipmsg.ServerTransaction
	line, advocate, feature string
	adm                     admission
	setup                   *Setup // overload control's count of set-ups in flight
	giveBack                func() // uncounts the call, once
	setUp                   bool   // the call is set up: closeCall gives its place back
}

// release gives back what admission took, when the INVITE is done with: the per-source and
// budget counts, overload control's set-up, and the call's place unless the call was set up
// (closeCall gives it back).
func (in *invite) release() {
	in.setup.Done()
	in.adm.release()
	if !in.setUp {
		in.giveBack()
	}
}

// admitInvite decides whom the INVITE is for and whether the server takes it: a line, or an
// authenticated advocate's feature code; a Contact; not draining; a place among the calls in
// progress (sip.max_calls) and within the source's limits and the untrusted sources' budget.
// It answers 100 Trying to an INVITE it takes, and the right error to one it refuses.
func (s *Server) admitInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) (*invite, bool) {
	in := &invite{req: req, tx: tx}
	if code, isFeature := featureCode(req.Recipient.User); isFeature && s.authEnabled() {
		// An advocate's phone: authenticate (public callers never reach this).
		id, ok := s.authenticate(req, tx)
		if !ok {
			return nil, false
		}
		in.line, in.advocate, in.feature = featureLine, id, code
	} else {
		var ok bool
		if in.line, ok = s.opts.Lines(req.Recipient.User); !ok {
			s.respond(tx, req, 404, "Not Found", nil)
			return nil, false
		}
	}
	if req.Contact() == nil {
		s.respond(tx, req, 400, "Missing Contact", nil)
		return nil, false
	}
	if in.feature == "" && s.draining.Load() {
		// A draining node takes no new calls: the carrier or load balancer tries another.
		s.respond(tx, req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", drainRetryAfter))
		s.attemptRefused(in.line, RefuseDraining)
		return nil, false
	}
	if !s.reserveCall() {
		s.respond(tx, req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", "5"))
		s.attemptRefused(in.line, RefuseCapacity)
		return nil, false
	}
	// The call counts from here; until it is set up, release gives its place back.
	// giveBack uncounts the call once: at its end, or as soon as a newer call pushes it out
	// of the untrusted budget (its teardown may lag behind a flood).
	var gaveBack sync.Once
	in.giveBack = func() { gaveBack.Do(func() { s.active.Add(-1) }) }
	adm, ok := s.admitCall(req, in.feature == "", in.giveBack)
	if !ok {
		in.giveBack()
		s.respond(tx, req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", "5"))
		s.attemptRefused(in.line, adm.refused)
		return nil, false
	}
	setup := s.admitSetup(req, tx, in.line) // overload control (overload.go)
	if setup == nil {
		adm.release()
		in.giveBack()
		return nil, false
	}
	in.adm, in.setup = adm, setup
	s.respond(tx, req, 100, "Trying", nil)
	return in, true
}

// negotiateInvite takes the INVITE's SDP offer under the line's SRTP policy: the media to
// answer with, and whether there was an offer (without one, the 200 offers and the ACK
// answers). An offer it cannot take gets 488 (415 for a body that is not SDP).
func (s *Server) negotiateInvite(in *invite) (m sdp.Media, offered, ok bool) {
	req, tx := in.req, in.tx
	var policy sdp.SRTPPolicy
	if s.opts.LineSRTP != nil && in.feature == "" {
		policy = s.opts.LineSRTP(in.line)
	}
	notAcceptable := func(what string, err error) (sdp.Media, bool, bool) {
		s.log.Info(what, "line", in.line, "error", err)
		s.respond(tx, req, 488, "Not Acceptable Here", nil,
			sipmsg.NewHeader("Warning", `304 hotline "`+warningText(err)+`"`))
		s.attemptRefused(in.line, RefuseNotAcceptable)
		return sdp.Media{}, false, false
	}
	mode, downgraded, err := policy.ModeOver(req.Transport())
	if err == nil && mode == sdp.SRTPRequired && len(req.Body()) == 0 {
		// We would have to offer RTP/SAVP in the 200 and take the answer from the ACK; phones
		// and trunks that use SRTP send an offer.
		err = fmt.Errorf("%w: srtp required: send an sdp offer with a=crypto", sdp.ErrNotAcceptable)
	}
	if err != nil {
		return notAcceptable("rejecting call", err)
	}
	body := req.Body()
	if len(body) == 0 {
		return sdp.Media{}, false, true
	}
	if ct := req.ContentType(); ct != nil && !strings.HasPrefix(strings.ToLower(ct.Value()), "application/sdp") {
		s.respond(tx, req, 415, "Unsupported Media Type", nil, sipmsg.NewHeader("Accept", "application/sdp"))
		s.attemptRefused(in.line, RefuseNotAcceptable)
		return sdp.Media{}, false, false
	}
	m, err = sdp.NegotiateSecureOffer(body, mode)
	if err != nil {
		if downgraded {
			err = fmt.Errorf("%w (sdes keys are accepted only over sip over tls)", err)
		}
		return notAcceptable("rejecting offer", err)
	}
	return m, true, true
}

// featureInvite runs an advocate's feature code, and reports whether the call goes on (to
// play the code's confirmation); it has answered the INVITE when it does not.
func (s *Server) featureInvite(in *invite) bool {
	if s.opts.Feature == nil {
		s.respondTagged(in.tx, in.req, 404, "Not Found")
		return false
	}
	return s.runFeature(in.req, in.tx, in.advocate, in.feature)
}

// setUpCall makes the call of an admitted INVITE: its RTP leg (503 when no port is free),
// its dialog, its context, and its place in the server's calls. From then on the call is
// counted until closeCall.
func (s *Server) setUpCall(in *invite, m sdp.Media, offered bool) (*Call, bool) {
	req, tx := in.req, in.tx
	callID := newID()
	log := s.log.With("call", callID, "line", in.line)
	var peer netip.Addr
	if src, err := netip.ParseAddrPort(req.Source()); err == nil {
		peer = src.Addr().Unmap()
	}
	c := &Call{
		ID:       callID,
		Line:     in.line,
		Advocate: in.advocate,
		Feature:  in.feature,
		Arrived:  time.Now(),
		caller:   callerIdentity(req),
		source:   sourceAddr(req),
		srv:      s,
		log:      log,
		media:    m,
		peer:     peer,
		sessID:   randUint63(),
		digits:   make(chan rune, digitBuffer),
	}
	leg, err := media.NewLeg(s.opts.Scheduler, s.opts.Ports, media.LegConfig{
		Remote: m.Remote,
		Peer:   peer,
		// Until the 200 carries our SDP, nothing sent to the port can be the caller's.
		LearnLater:        true,
		PayloadType:       m.PayloadType,
		DTMFPayloadType:   m.DTMFPayloadType,
		InactivityTimeout: s.opts.InactivityTimeout,
		Inband:            s.opts.InbandDTMF,
		OnDigit:           c.pushDigit,
		Logger:            log,
		SRTP:              m.SRTP(),
	})
	if err != nil {
		log.Warn("no media port for call", "error", err)
		s.respond(tx, req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", "5"))
		s.attemptRefused(in.line, RefuseNoMediaPort)
		return nil, false
	}
	c.leg = leg
	dlg, err := s.dialog.ReadInvite(req, tx)
	if err != nil {
		leg.Close()
		s.respond(tx, req, 400, "Bad Request", nil)
		return nil, false
	}
	c.dialog = dlg
	c.local = s.opts.AdvertiseAddr
	if !c.local.IsValid() {
		c.local = localAddrFacing(req.Source())
	}
	s.mu.Lock()
	parent := s.ctx
	s.mu.Unlock()
	c.ctx, c.cancel = context.WithCancelCause(parent)
	if !offered {
		c.media = sdp.Media{PayloadType: sdp.PayloadPCMU, Send: false, Recv: true}
		leg.SetDirection(false, true)
	} else {
		leg.SetDirection(m.Send, m.Recv)
	}

	s.mu.Lock()
	s.calls[dlg.ID] = c
	s.mu.Unlock()
	in.setUp = true // counted since reserveCall; closeCall uncounts it
	s.wg.Add(1)
	s.opts.Observer.CallStarted(in.line)
	return c, true
}

// closeCall ends a call set up by setUpCall, whichever step it reached, and counts it with
// the leg's outcome end; a call the Handler never took (handled false) is reported to the
// AttemptObserver as unanswered.
func (s *Server) closeCall(c *Call, in *invite, end outcome.Leg, handled bool) {
	c.cancel(ErrServerHangup)
	c.closeDigits()
	c.leg.Close()
	c.dialog.Close()
	s.mu.Lock()
	delete(s.calls, c.dialog.ID)
	s.mu.Unlock()
	in.giveBack()
	s.opts.Observer.CallEnded(in.line, end)
	if !handled {
		s.attemptUnanswered(c, end)
	}
	c.log.Info("call ended", "outcome", end)
	s.wg.Done()
}

// answerCall answers a set-up call: it rings for AnswerDelay, sends the 200 with our SDP
// and waits for the ACK (and its SDP answer when the INVITE had no offer). It returns the
// leg's outcome when the call ended before it was confirmed, "" when it is up.
func (s *Server) answerCall(c *Call, in *invite, offered bool) outcome.Leg {
	if s.opts.AnswerDelay > 0 && in.feature == "" {
		if end := s.ring(c, in); end != "" {
			return end
		}
	}
	in.setup.Done() // overload control: the set-up is over once the 200 goes out
	if end := s.sendAnswer(c, in, offered); end != "" {
		return end
	}
	s.opts.Observer.Response("INVITE", 200)
	if !offered {
		c.mu.Lock()
		ack := c.ackBody
		c.mu.Unlock()
		am, err := sdp.NegotiateAnswer(ack)
		if err != nil {
			c.log.Warn("no usable answer in ack", "error", err)
			c.Hangup(c.ctx, "no usable sdp answer in ack")
			return outcome.LegFailed
		}
		c.applyMedia(am)
	}
	return ""
}

// ring sends 180 Ringing and waits AnswerDelay, unless the call ends first.
func (s *Server) ring(c *Call, in *invite) outcome.Leg {
	dlg := c.dialog
	if err := dlg.Respond(180, "Ringing", nil); err == nil {
		s.opts.Observer.Response("INVITE", 180)
	}
	t := time.NewTimer(s.opts.AnswerDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return ""
	case <-dlg.Context().Done():
		s.opts.Observer.Response("INVITE", 487)
		return outcome.LegCancelled
	case <-c.ctx.Done():
		s.respond(in.tx, in.req, 503, "Service Unavailable", nil)
		return outcome.LegShutdown
	case <-in.adm.evicted():
		s.refused("INVITE", RefusedEvicted)
		s.respond(in.tx, in.req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", "5"))
		return outcome.LegEvicted
	}
}

// sendAnswer sends the 200 OK, retransmitted until the ACK, and waits for the ACK, the ACK
// timeout or the call's eviction from the untrusted sources' budget.
func (s *Server) sendAnswer(c *Call, in *invite, offered bool) outcome.Leg {
	dlg, leg, log := c.dialog, c.leg, c.log
	var body []byte
	if offered {
		body = c.media.Answer(c.local, leg.LocalPort(), c.sessID, c.nextVersion())
	} else {
		body = sdp.Offer(c.local, leg.LocalPort(), c.sessID, c.nextVersion())
	}
	res := sipmsg.NewSDPResponseFromRequest(dlg.InviteRequest, body)
	res.AppendHeader(s.contact(c.local, in.req))
	res.AppendHeader(allowHeader())
	leg.StartLearning()
	acked := make(chan error, 1)
	s.goSafe(func() {
		// WriteResponse retransmits the 200 until the ACK (or gives up); run it aside so we own
		// the ACK timeout.
		acked <- dlg.WriteResponse(res)
	})
	ackTimer := time.NewTimer(s.ackTimeout(in.adm))
	defer ackTimer.Stop()
	select {
	case err := <-acked:
		if err != nil {
			switch {
			case errors.Is(context.Cause(c.ctx), ErrCallerHangup):
				// BYE overtook the ACK (they travel on separate goroutines).
				return outcome.LegCallerHangup
			case dlg.Context().Err() != nil || errors.Is(err, sipmsg.ErrTransactionCanceled):
				log.Info("call cancelled before it was confirmed", "error", err)
				return outcome.LegCancelled
			default:
				log.Warn("answer failed", "error", err)
				return outcome.LegFailed
			}
		}
	case <-ackTimer.C:
		log.Warn("no ack for 200 ok, ending call", "timeout", s.ackTimeout(in.adm))
		c.terminate(context.Background(), ErrNoAck)
		return outcome.LegNoAck
	case <-in.adm.evicted():
		// A newer call pushed this unacknowledged one out (defence.Budget). No BYE: the
		// source never showed it receives what we send; ending the transaction stops the
		// 200's retransmissions.
		s.refused("INVITE", RefusedEvicted)
		log.Debug("unacknowledged call pushed out by a newer one")
		in.tx.Terminate()
		c.end(ErrNoAck)
		return outcome.LegEvicted
	}
	if !in.adm.acked() {
		// Pushed out as its ACK came: it no longer counts, so it cannot go on.
		s.refused("INVITE", RefusedEvicted)
		c.terminate(context.Background(), ErrNoAck)
		return outcome.LegEvicted
	}
	return ""
}

// runCall runs a confirmed call: its handler (Handler, or FeatureHandler for a feature code;
// nil: none) while the leg's end (RTP inactivity, a media fault) ends the call, then hangs up
// if the call is still up. It returns the leg's outcome.
func (s *Server) runCall(c *Call, handler Handler) outcome.Leg {
	ctx, leg, log := c.ctx, c.leg, c.log
	// Watched without a goroutine of its own (memory per call, issue 15): the leg's end
	// starts one only to hang up.
	stop := leg.AfterDone(func() {
		if ctx.Err() != nil {
			return
		}
		s.goSafe(func() {
			if errors.Is(leg.Err(), media.ErrInactive) {
				log.Info("rtp inactivity timeout")
				c.terminate(context.Background(), ErrMediaTimeout)
			} else if leg.Err() != nil {
				log.Error("media failed", "error", leg.Err())
				c.terminate(context.Background(), ErrMediaFailed)
			}
		})
	})
	defer stop()
	if handler != nil {
		handler(ctx, c)
	}
	if ctx.Err() == nil {
		c.Hangup(ctx, "ivr finished")
	}
	return legEnd(context.Cause(ctx))
}

// legEnd is the outcome of a confirmed call's leg, from the cause that ended its context.
func legEnd(cause error) outcome.Leg {
	switch {
	case errors.Is(cause, ErrCallerHangup):
		return outcome.LegCallerHangup
	case errors.Is(cause, ErrMediaTimeout):
		return outcome.LegMediaTimeout
	case errors.Is(cause, ErrMediaFailed):
		return outcome.LegMediaFailed
	case errors.Is(cause, ErrServerHangup):
		return outcome.LegServerHangup
	}
	return outcome.LegCompleted
}

// onReInvite handles an INVITE inside a dialog: hold, resume, new address or codec. Only the
// dialog's own peer may re-negotiate: a re-INVITE from any other address gets 403 and the
// media stays as it was (issue 14: one with the dialog's identifiers from a third address
// restarted the RTP latch and took the call's audio).
func (s *Server) onReInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	c := s.lookupCall(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if !c.fromPeer(req) {
		c.log.Info("re-invite from another address than the dialog's peer refused")
		s.respond(tx, req, 403, "Forbidden", nil)
		return
	}
	if err := c.readRequest(req, tx); err != nil {
		s.respond(tx, req, 500, "Server Internal Error", nil, sipmsg.NewHeader("Retry-After", "1"))
		return
	}
	var body []byte
	c.mu.Lock()
	cur := c.media
	c.mu.Unlock()
	if b := req.Body(); len(b) > 0 {
		m, err := sdp.Renegotiate(b, cur)
		if err != nil {
			// The call goes on with the media it had (RFC 3261 14.2).
			s.respond(tx, req, 488, "Not Acceptable Here", nil,
				sipmsg.NewHeader("Warning", `304 hotline "`+warningText(err)+`"`))
			return
		}
		c.applyMedia(m)
		body = m.Answer(c.local, c.leg.LocalPort(), c.sessID, c.nextVersion())
	} else if cur.Secure {
		// Our offer would be plain RTP/AVP; the leg's keys cannot change.
		s.respond(tx, req, 488, "Not Acceptable Here", nil,
			sipmsg.NewHeader("Warning", `304 hotline "srtp call: re-invite without an sdp offer is not supported"`))
		return
	} else {
		c.mu.Lock()
		c.pendingOffer = true
		c.mu.Unlock()
		body = sdp.Offer(c.local, c.leg.LocalPort(), c.sessID, c.nextVersion())
	}
	res := sipmsg.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(s.contact(c.local, req))
	if err := tx.Respond(res); err != nil {
		c.log.Warn("re-invite response failed", "error", err)
		return
	}
	s.opts.Observer.Response("INVITE", 200)
	c.log.Info("media updated by re-invite")
}

func (c *Call) nextVersion() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sdpVersion++
	return c.sdpVersion
}

// contact is our Contact for a response to req, or for a request in req's dialog: reachable
// over the transport req came on. A sips: Request-URI gets a sips: Contact (RFC 3261 8.1.1.8,
// 12.1.1); TLS without sips: gets ;transport=tls.
func (s *Server) contact(local netip.Addr, req *sipmsg.Request) sipmsg.Header {
	transport := req.Transport()
	local = s.contactAddr(transport, local)
	host := local.Unmap().String()
	if local.Is6() && !local.Is4In6() {
		host = "[" + host + "]"
	}
	scheme := "sip"
	if strings.EqualFold(req.Recipient.Scheme, "sips") {
		scheme = "sips"
	}
	uri := scheme + ":hotline@" + host + ":" + strconv.Itoa(s.listenPort(transport))
	if t := strings.ToLower(transport); t != "" && t != "udp" && scheme == "sip" {
		uri += ";transport=" + t
	}
	return sipmsg.NewHeader("Contact", "<"+uri+">")
}

// localAddrFacing returns our local IP address on the route to a peer (no packet is sent).
func localAddrFacing(source string) netip.Addr {
	if ap, err := netip.ParseAddrPort(source); err == nil {
		if conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap)); err == nil {
			defer conn.Close()
			if la, ok := conn.LocalAddr().(*net.UDPAddr); ok {
				if a, ok := netip.AddrFromSlice(la.IP); ok {
					return a.Unmap()
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

func warningText(err error) string {
	return strings.NewReplacer(`"`, "'", "\r", " ", "\n", " ").Replace(err.Error())
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randUint63() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 1
}

type nopObserver struct{}

func (nopObserver) Request(string)                {}
func (nopObserver) Response(string, int)          {}
func (nopObserver) CallStarted(string)            {}
func (nopObserver) CallEnded(string, outcome.Leg) {}

// callerIdentity is the caller's identity in req: the P-Asserted-Identity the carrier's
// trunk sets (RFC 3325), else the From URI. Never log it.
func callerIdentity(req *sipmsg.Request) string {
	if h := req.GetHeader("P-Asserted-Identity"); h != nil {
		v := strings.TrimSpace(h.Value())
		if i := strings.IndexByte(v, '<'); i >= 0 {
			if j := strings.IndexByte(v[i:], '>'); j > 0 {
				return v[i+1 : i+j]
			}
		}
		if v != "" {
			return v
		}
	}
	if f := req.From(); f != nil {
		return f.Address.String()
	}
	return ""
}

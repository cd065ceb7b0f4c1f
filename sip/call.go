package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/sip/sdp"
)

// digitBuffer is how many digits a caller can type ahead before the IVR reads them.
const digitBuffer = 32

// Call is one call leg: a SIP dialog and its RTP leg. An inbound call (a caller's INVITE, see
// Handler) and an outbound leg to an advocate's phone (Server.Dial) look alike: Play, Digits,
// Hangup, Context and Leg work the same on both. All methods are safe for concurrent use.
type Call struct {
	// ID is a random identifier for logs and records. It carries nothing of the caller.
	ID string
	// Line is the configured name of the line that was dialled ("feature" for a feature
	// code from an advocate's phone).
	Line string
	// Advocate and Feature are set on a feature-code call: the authenticated advocate's id
	// and the code dialled, such as "*11". Both are empty on callers' calls.
	Advocate string
	Feature  string
	// Arrived is when the INVITE arrived (zero for outbound legs).
	Arrived time.Time

	caller string     // the caller's identity; see Caller
	source netip.Addr // the address the INVITE came from (defence.go); never logged

	srv    *Server
	log    *slog.Logger
	dialog *sipgo.DialogServerSession // inbound calls; nil on outbound legs
	out    *outbound                  // outbound legs (Server.Dial); nil on inbound calls
	leg    *media.Leg

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	media sdp.Media
	local netip.Addr // our media/signalling address as seen by this caller
	// peer is the dialog's own signalling peer: the address the INVITE came from, or the
	// phone an outbound leg called. Requests that change the media or carry digits are
	// accepted only from it (fromPeer), and the RTP leg learns its source with it in mind.
	peer         netip.Addr
	sdpVersion   uint64
	sessID       uint64
	ackBody      []byte
	pendingOffer bool // we sent an offer in a 2xx and wait for the answer in the ACK
	digits       chan rune
	digitsClosed bool
	digitFilter  func(rune) bool // FilterDigits'; nil: none
	inDialog     *rate.Limiter   // in-dialog requests' rate (defence.go), made on the first one
	endOnce      sync.Once
	byeOnce      sync.Once
}

// Errors that end a call; they are the cause of the call's context.
var (
	// ErrCallerHangup means the caller sent BYE (or CANCEL before the answer).
	ErrCallerHangup = errors.New("caller hung up")
	// ErrRemoteHangup means the phone we called (an outbound leg from Server.Dial) sent BYE.
	ErrRemoteHangup = errors.New("called party hung up")
	// ErrMediaTimeout means no RTP arrived for the inactivity timeout.
	ErrMediaTimeout = errors.New("no media from caller")
	// ErrMediaFailed means the call's media failed on our side.
	ErrMediaFailed = errors.New("media failed")
	// ErrNoAck means the caller never acknowledged our 200 OK.
	ErrNoAck = errors.New("no ack for 200 ok")
	// ErrServerHangup means we ended the call (IVR finished or server shutting down).
	ErrServerHangup = errors.New("hung up by server")
)

// Context returns the call's context: cancelled when the call ends, with the reason as its cause.
func (c *Call) Context() context.Context { return c.ctx }

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.ctx.Done() }

// Audio is recorded audio the call can play: its encoding for an RTP payload type (0 PCMU, 8
// PCMA), a whole number of 20 ms frames, or nil when it has none. A *prompts.Prompt is one.
type Audio interface {
	Payload(pt uint8) []byte
}

// Play sends audio to the caller in the call's codec and blocks until it has been sent,
// ctx is cancelled (barge-in: playback stops before the next frame) or the call ends.
func (c *Call) Play(ctx context.Context, p Audio) error {
	c.mu.Lock()
	pt := c.media.PayloadType
	c.mu.Unlock()
	audio := p.Payload(pt)
	if audio == nil {
		return errors.New("prompt has no audio for the negotiated codec")
	}
	// Stop playing when the call ends even if ctx does not.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	unreg := context.AfterFunc(c.ctx, stop)
	defer unreg()
	err := c.leg.Play(ctx, audio)
	if errors.Is(err, media.ErrInactive) {
		c.log.Info("rtp inactivity timeout")
		c.terminate(ctx, ErrMediaTimeout)
	}
	if c.ctx.Err() != nil {
		return context.Cause(c.ctx)
	}
	return err
}

// StartPlay starts sending audio to the caller in the call's codec and returns at once:
// Play without the wait (media.Leg.Start), for a caller that waits for the prompt and
// other events on one goroutine. The playback is the caller's to Stop when the call ends.
func (c *Call) StartPlay(p Audio) (*media.Playback, error) {
	c.mu.Lock()
	pt := c.media.PayloadType
	c.mu.Unlock()
	audio := p.Payload(pt)
	if audio == nil {
		return nil, errors.New("prompt has no audio for the negotiated codec")
	}
	return c.leg.Start(audio)
}

// Leg returns the call's RTP leg, for bridging it to another call's leg.
func (c *Call) Leg() *media.Leg { return c.leg }

// Digits returns the caller's DTMF digits (RFC 4733 events and SIP INFO), in order. The
// channel is closed when the call ends.
func (c *Call) Digits() <-chan rune { return c.digits }

// WatchBeep calls fn once when the far end's audio holds an answering machine's beep
// (media.Leg.WatchBeep); nil stops watching.
func (c *Call) WatchBeep(fn func()) {
	if c.leg != nil {
		c.leg.WatchBeep(fn)
	}
}

// pushDigit queues a digit for the IVR; when the caller types far ahead, extra digits are dropped.
func (c *Call) pushDigit(d rune) {
	c.mu.Lock()
	f := c.digitFilter
	c.mu.Unlock()
	if f != nil && f(d) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.digitsClosed {
		return
	}
	select {
	case c.digits <- d:
	default:
		c.log.Warn("digit buffer full, digit dropped")
	}
}

// FilterDigits has f see every digit before it is queued for Digits, the ones queued and
// not yet read included; a digit f takes (returns true for) is not queued. f runs on the
// goroutine that delivers the digit (the RTP leg's reader, or a SIP INFO's handler) and
// must not block. It lets the call flow watch for a key (the quick exit) without a
// goroutine of its own per call. It reports true: a Call filters its digits.
func (c *Call) FilterDigits(f func(rune) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.digitFilter = f
	if c.digitsClosed || f == nil {
		return true
	}
	var kept []rune
	for n := len(c.digits); n > 0; n-- {
		select {
		case d := <-c.digits:
			if !f(d) {
				kept = append(kept, d)
			}
		default: // a reader took it meanwhile
		}
	}
	for _, d := range kept {
		c.digits <- d
	}
	return true
}

func (c *Call) closeDigits() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.digitsClosed {
		c.digitsClosed = true
		close(c.digits)
	}
}

// Hangup ends the call from our side: a BYE to the caller, media stopped.
func (c *Call) Hangup(ctx context.Context, reason string) error {
	c.log.Info("hanging up", "reason", reason)
	return c.terminate(ctx, ErrServerHangup)
}

// terminate ends the call with cause (unless it already ended) and sends BYE, once.
func (c *Call) terminate(ctx context.Context, cause error) error {
	c.end(cause)
	var err error
	c.byeOnce.Do(func() { err = c.sendBye(ctx) })
	return err
}

func (c *Call) sendBye(ctx context.Context) error {
	// Teardown must survive the caller's cancellation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), byeTimeout)
	defer cancel()
	err := c.bye(ctx)
	if err != nil {
		c.log.Warn("bye failed", "error", err)
	}
	return err
}

// bye sends BYE inside the dialog to the caller's Contact (through the address their INVITE
// came from, for NAT) and waits for the answer. Unlike sipgo's DialogServerSession.Bye it does
// not wait for an ACK first: a call whose ACK never came must be ended too (RFC 3261 13.3.1.4).
func (c *Call) bye(ctx context.Context) error {
	if c.out != nil {
		return c.out.bye(ctx)
	}
	inv := c.dialog.InviteRequest
	target := inv.Recipient
	if ct := inv.Contact(); ct != nil {
		target = ct.Address
	}
	req := sipmsg.NewRequest(sipmsg.BYE, *target.Clone())
	req.SetTransport(inv.Transport())
	if strings.EqualFold(inv.Transport(), "UDP") {
		// Send from the listening socket (as the caller's NAT binding expects), not from a
		// client socket sipgo would open for it.
		if a, ok := c.srv.listener("udp"); ok {
			if ua, ok := a.(*net.UDPAddr); ok {
				req.Laddr = sipmsg.Addr{IP: ua.IP, Port: ua.Port}
			}
		}
	}
	req.AppendHeader(c.srv.contact(c.local, inv))
	tx, err := c.dialog.TransactionRequest(ctx, req)
	if err != nil {
		return fmt.Errorf("bye: %w", err)
	}
	return awaitByeResponse(ctx, tx)
}

// awaitByeResponse waits for the final response to a BYE; 481 counts as success (the dialog is
// gone either way).
func awaitByeResponse(ctx context.Context, tx sipmsg.ClientTransaction) error {
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if !res.IsSuccess() && res.StatusCode != 481 {
				return fmt.Errorf("bye answered %d", res.StatusCode)
			}
			return nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return fmt.Errorf("bye: %w", err)
			}
			return errors.New("bye: transaction ended without a final response")
		case <-ctx.Done():
			return fmt.Errorf("bye: %w", ctx.Err())
		}
	}
}

// end marks the call as ended by the remote side or by a timeout.
func (c *Call) end(cause error) {
	c.endOnce.Do(func() { c.cancel(cause) })
}

// Caller returns the caller's identity as the INVITE gave it: P-Asserted-Identity if
// present, else the From URI; "" for outbound legs. It identifies a person who may be in
// danger: NEVER log it, label a metric with it or store it; hash it with a key (the call
// records do) where calls must be correlated.
func (c *Call) Caller() string { return c.caller }

// Media returns the currently negotiated media.
func (c *Call) Media() sdp.Media {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media
}

// applyMedia points the RTP leg at newly negotiated media (answer, re-INVITE, ACK answer).
func (c *Call) applyMedia(m sdp.Media) {
	c.mu.Lock()
	c.media = m
	c.mu.Unlock()
	if m.Remote.Addr().IsUnspecified() {
		// Old-style hold (c=0.0.0.0): keep the last address, just stop sending.
		c.leg.SetDirection(false, m.Recv)
	} else {
		c.leg.SetRemote(m.Remote)
		c.leg.SetDirection(m.Send, m.Recv)
	}
	c.leg.SetPayloadType(m.PayloadType)
}

// fromPeer reports whether req came from the dialog's own signalling peer (its IP address;
// see README "Media"). A re-INVITE, an ACK with SDP or an INFO from anywhere else is refused:
// with the dialog's identifiers, a third party could otherwise move the call's audio to itself
// or press keys in the menu (issue 14). The port is not compared: a NAT may give a UDP phone
// a new one during a long call, and a phone reconnects over TCP or TLS from a new one, while
// an off-path sender that can forge the IP address can forge a well-known port as well.
func (c *Call) fromPeer(req *sipmsg.Request) bool {
	src, err := netip.ParseAddrPort(req.Source())
	return err == nil && c.peer.IsValid() && src.Addr().Unmap() == c.peer
}

const byeTimeout = 5 * time.Second

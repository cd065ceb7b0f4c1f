// Package webphone is a browser's phone as a media leg: a WebRTC peer connection
// (github.com/pion/webrtc/v4) offering one PCMU audio stream, sendrecv, over DTLS-SRTP,
// with ICE host candidates on the server's own addresses, whose audio is fed into an
// ordinary media.Leg. Everything the media package does with a SIP phone's leg (prompts,
// the bridge's relay, conferences, whisper, the inactivity timeout) it then does with the
// browser's, unchanged, and PCMU end to end means nothing is transcoded.
//
// The leg and the peer connection meet on a loopback UDP socket (the shim): packets the
// leg sends to the shim are written to the browser's track (pion gives them the track's
// SSRC and encrypts them), and packets read from the browser's track are sent from the
// shim to the leg, which learns the shim as its one source (strict RTP).
//
//	e, _ := webphone.New(webphone.Options{Scheduler: sched, Ports: ports, LegHost: bind})
//	c, _ := e.Offer(ctx)          // c.Offer() is the SDP offer to send to the page
//	err := c.Accept(ctx, answer)  // the page's SDP answer; returns once DTLS is up
//	br, _ := media.NewBridge(callerLeg, c.Leg())
//	defer c.Close()
//
// The package knows nothing of sessions or signalling: the console carries the SDP.
package webphone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/hotline-project/hotline/media"
)

// Options configure the Engine.
type Options struct {
	Scheduler *media.Scheduler // paces the leg's frames; required
	Ports     *media.Ports     // the leg's RTP port; required
	// LegHost is the address the media ports are bound to (media.bind_address); the shim
	// sends to the leg there (loopback when it is unspecified).
	LegHost netip.Addr
	// Addresses are the ICE host candidates offered to browsers; none: every address of
	// the host's interfaces (loopback only when listed here).
	Addresses []netip.Addr
	// Advertise, if set, replaces the host candidates' address (1:1 NAT:
	// media.advertise_address).
	Advertise netip.Addr
	// PortMin and PortMax bound the ICE UDP ports (0: any).
	PortMin, PortMax uint16
	// InactivityTimeout ends the leg when the browser's audio stops for this long.
	InactivityTimeout time.Duration
	Logger            *slog.Logger
}

// Errors of a browser call.
var (
	// ErrNotConnected means the browser's answer did not lead to a connection in time.
	ErrNotConnected = errors.New("webphone: the browser did not connect")
	// ErrBadAnswer means the browser's answer could not be used.
	ErrBadAnswer = errors.New("webphone: bad answer")
)

// Engine makes browser calls.
type Engine struct {
	o   Options
	api *webrtc.API
}

// New returns an Engine offering PCMU only, ICE over UDP on o.Addresses.
func New(o Options) (*Engine, error) {
	if o.Scheduler == nil || o.Ports == nil {
		return nil, errors.New("webphone: Scheduler and Ports are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
		PayloadType:        webrtc.PayloadType(media.PayloadPCMU),
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("webphone: register PCMU: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	v4, v6 := len(o.Addresses) == 0, len(o.Addresses) == 0
	for _, a := range o.Addresses {
		if a.Unmap().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	var nts []webrtc.NetworkType
	if v4 {
		nts = append(nts, webrtc.NetworkTypeUDP4)
	}
	if v6 {
		nts = append(nts, webrtc.NetworkTypeUDP6)
	}
	se.SetNetworkTypes(nts)
	if len(o.Addresses) > 0 {
		allowed := map[netip.Addr]bool{}
		loopback := false
		for _, a := range o.Addresses {
			allowed[a.Unmap()] = true
			loopback = loopback || a.IsLoopback()
		}
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && allowed[a.Unmap()]
		})
		se.SetIncludeLoopbackCandidate(loopback)
	}
	if o.Advertise.IsValid() {
		se.SetNAT1To1IPs([]string{o.Advertise.String()}, webrtc.ICECandidateTypeHost)
	}
	if o.PortMin != 0 || o.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(o.PortMin, o.PortMax); err != nil {
			return nil, fmt.Errorf("webphone: port range: %w", err)
		}
	}
	// A browser that goes away is noticed within seconds, not the default half minute.
	se.SetICETimeouts(4*time.Second, 8*time.Second, 2*time.Second)
	return &Engine{o: o, api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))}, nil
}

// Call is one browser call: its peer connection, shim and media leg.
type Call struct {
	e     *Engine
	log   *slog.Logger
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	shim  *net.UDPConn
	leg   *media.Leg
	to    *net.UDPAddr // the leg's address, for the shim
	offer string

	connected chan struct{} // closed when DTLS is up
	connOnce  sync.Once
	closeOnce sync.Once
	done      chan struct{} // closed when the call ends
	wg        sync.WaitGroup
}

// Offer starts a call: the peer connection with its candidates gathered, and the leg
// (sending silence to nobody until the browser connects). The caller must Close it.
func (e *Engine) Offer(ctx context.Context) (c *Call, err error) {
	c = &Call{e: e, log: e.o.Logger, connected: make(chan struct{}), done: make(chan struct{})}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	host := e.o.LegHost
	if !host.IsValid() || host.IsUnspecified() {
		host = netip.IPv6Loopback()
		if !e.o.LegHost.IsValid() || e.o.LegHost.Is4() {
			host = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	}
	if c.shim, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, 0))); err != nil {
		return nil, fmt.Errorf("webphone: shim: %w", err)
	}
	if c.leg, err = media.NewLeg(e.o.Scheduler, e.o.Ports, media.LegConfig{
		Remote:            c.shim.LocalAddr().(*net.UDPAddr).AddrPort(),
		PayloadType:       media.PayloadPCMU,
		InactivityTimeout: e.o.InactivityTimeout,
		Logger:            e.o.Logger,
	}); err != nil {
		return nil, fmt.Errorf("webphone: %w", err)
	}
	c.to = net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, uint16(c.leg.LocalPort())))
	if c.pc, err = e.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, fmt.Errorf("webphone: peer connection: %w", err)
	}
	c.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "hotline")
	if err != nil {
		return nil, fmt.Errorf("webphone: track: %w", err)
	}
	tr, err := c.pc.AddTransceiverFromTrack(c.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return nil, fmt.Errorf("webphone: transceiver: %w", err)
	}
	sender := tr.Sender()
	c.pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if t.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		c.wg.Go(func() { c.fromBrowser(t) })
	})
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.log.Debug("webrtc connection state", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			c.connOnce.Do(func() { close(c.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			go c.Close()
		}
	})
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("webphone: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("webphone: local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, fmt.Errorf("webphone: gathering candidates: %w", ctx.Err())
	}
	c.offer = c.pc.LocalDescription().SDP
	// RTCP from the browser is read (and dropped) so that pion's interceptors run.
	c.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	})
	c.wg.Go(c.toBrowser)
	c.wg.Go(func() {
		select {
		case <-c.leg.Done():
			c.Close()
		case <-c.done:
		}
	})
	return c, nil
}

// Offer is the SDP offer for the browser.
func (c *Call) Offer() string { return c.offer }

// Accept takes the browser's SDP answer and returns once the media is connected (ICE and
// DTLS), ctx ends, or the call ends.
func (c *Call) Accept(ctx context.Context, answer string) error {
	if err := c.setAnswer(answer); err != nil {
		return err
	}
	select {
	case <-c.connected:
		return nil
	case <-c.done:
		return ErrNotConnected
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotConnected, ctx.Err())
	}
}

// setAnswer gives the browser's answer to the peer connection. The answer is whatever a
// signed-in page sent: a panic in parsing it is an error, not the end of the server.
func (c *Call) setAnswer(answer string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrBadAnswer, r)
		}
	}()
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return nil
}

// Leg is the call's media leg, for prompts, bridges and conferences.
func (c *Call) Leg() *media.Leg { return c.leg }

// Done is closed when the call has ended: closed by us, the leg timed out, or the
// browser's connection failed or closed.
func (c *Call) Done() <-chan struct{} { return c.done }

// Close ends the call: the peer connection, the leg and the shim.
func (c *Call) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		if c.pc != nil {
			_ = c.pc.Close()
		}
		if c.leg != nil {
			_ = c.leg.Close()
		}
		if c.shim != nil {
			_ = c.shim.Close()
		}
	})
}

// toBrowser writes what the leg sends to the shim onto the browser's track.
func (c *Call) toBrowser() {
	buf := make([]byte, 1500)
	var p rtp.Packet
	legAddr := unmapAP(c.to.AddrPort())
	for {
		n, from, err := c.shim.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if unmapAP(from) != legAddr || p.Unmarshal(buf[:n]) != nil {
			continue // only the leg sends here
		}
		if err := c.track.WriteRTP(&p); err != nil && !errors.Is(err, net.ErrClosed) {
			c.log.Debug("webrtc write", "err", err)
		}
	}
}

// fromBrowser sends the browser's audio from the shim to the leg.
func (c *Call) fromBrowser(t *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.shim.WriteToUDP(buf[:n], c.to); err != nil {
			return
		}
	}
}

func unmapAP(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	icholy "github.com/icholy/digest"

	"github.com/hotline-project/hotline/sip/sdp"
)

// gen is the load generator: one SIP endpoint, a pool of RTP sockets and a sender.
type gen struct {
	ep     *endpoint
	pool   *rtpPool
	snd    *sender
	number string
	log    *slog.Logger

	mu      sync.Mutex
	advs    map[string]*advocate
	advRx   []*rxStream // what advocates heard, for the bridge figures
	answers atomic.Int64
	// answered counts the calls the server answered (200) in this run; bench/run must not
	// report a run in which it answered none.
	answered atomic.Int64
}

func newGen(server, number string, sockets, workers int, log *slog.Logger) (*gen, error) {
	ep, err := newEndpoint(server)
	if err != nil {
		return nil, err
	}
	pool, err := newRTPPool(sockets)
	if err != nil {
		ep.conn.Close()
		return nil, err
	}
	g := &gen{ep: ep, pool: pool, snd: newSender(workers), number: number, log: log, advs: map[string]*advocate{}}
	ep.onInvite = g.answer
	go ep.readLoop()
	return g, nil
}

func (g *gen) close() {
	g.ep.conn.Close()
	g.pool.close()
}

// callOpts says what a caller does once answered.
type callOpts struct {
	// every is how often the caller sends a frame, in 20 ms frames: 1 is a phone's 50
	// packets/s; 50 is one keep-alive a second, enough for the server's inactivity timeout.
	every  int64
	tagged bool
	// digits are pressed (RFC 4733) once the greeting is heard; then the caller waits to be
	// bridged (until it hears an advocate) before reporting up.
	digits string
	// hold is how long to stay after being up; 0 stays until ctx ends.
	hold time.Duration
	// abandon, when done, ends the call without BYE, as if the caller's network vanished.
	abandon <-chan struct{}
}

// tally counts the outcomes of many calls.
type tally struct {
	mu       sync.Mutex
	setup    *hist // INVITE sent -> 200 received
	refusal  *hist // INVITE sent -> 503 received
	status   map[int]int
	errs     map[string]int
	up       atomic.Int64 // calls in progress (answered, not yet ended)
	bridged  atomic.Int64
	byServer atomic.Int64 // calls the server hung up
	rx       []*rxStream
}

func newTally() *tally {
	return &tally{setup: newHist(100*time.Microsecond, 100_000), refusal: newHist(100*time.Microsecond, 100_000),
		status: map[int]int{}, errs: map[string]int{}}
}

func (t *tally) fail(what string) {
	t.mu.Lock()
	t.errs[what]++
	t.mu.Unlock()
}

func (t *tally) failures() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for code, c := range t.status {
		if code != 200 {
			n += c
		}
	}
	for _, c := range t.errs {
		n += c
	}
	return n
}

func (t *tally) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var parts []string
	for code, c := range t.status {
		parts = append(parts, fmt.Sprintf("%d×%d", c, code))
	}
	for e, c := range t.errs {
		parts = append(parts, fmt.Sprintf("%d×%s", c, e))
	}
	return strings.Join(parts, " ")
}

// call places one call and runs it to its end.
func (g *gen) call(ctx context.Context, o callOpts, t *tally) {
	callID := randHex(10) + "@loadgen"
	fromTag := randHex(4)
	ch := g.ep.dialog(callID)
	defer g.ep.drop(callID)
	conn := g.pool.pick()
	ruri := fmt.Sprintf("sip:%s@%s", g.number, g.ep.server)
	from := "sip:loadgen@127.0.0.1"
	contact := "sip:loadgen@" + g.ep.local
	inv := req{method: "INVITE", ruri: ruri, from: from, fromTag: fromTag, to: ruri, callID: callID,
		branch: "z9hG4bK" + randHex(6), cseq: 1, contact: contact, body: sdpOffer(conn.LocalAddr().(*net.UDPAddr).Port)}
	start := time.Now()
	res, err := g.ep.transact(ch, g.ep.build(inv), "INVITE", 16*time.Second, nil)
	if err != nil {
		t.fail("invite timeout")
		return
	}
	setup := time.Since(start)
	t.mu.Lock()
	t.status[res.StatusCode]++
	switch res.StatusCode {
	case 200:
		t.setup.add(setup)
		g.answered.Add(1)
	case 503:
		t.refusal.add(setup)
	}
	t.mu.Unlock()
	toTag, _ := res.To().Params.Get("tag")
	ack := inv
	ack.method, ack.toTag, ack.body = "ACK", toTag, ""
	if res.StatusCode >= 300 {
		// Non-2xx: the ACK belongs to the INVITE transaction (same branch).
		_ = g.ep.send(g.ep.build(ack))
		return
	}
	ack.branch = "z9hG4bK" + randHex(6)
	media, err := sdp.NegotiateAnswer(res.Body())
	if err != nil {
		t.fail("bad sdp answer")
		_ = g.ep.send(g.ep.build(ack))
		return
	}
	rx := newRxStream()
	g.pool.listen(media.Remote.Port(), rx)
	defer g.pool.listen(media.Remote.Port(), nil)
	if err := g.ep.send(g.ep.build(ack)); err != nil {
		t.fail("ack")
		return
	}
	tx := &txStream{conn: conn, to: media.Remote, ssrc: rand.Uint32(), every: max(1, o.every), tagged: o.tagged}
	defer tx.stop.Store(true)
	ended := false // the server hung up
	byeSeen := func(r *sipmsg.Request) {
		if r.Method == sipmsg.BYE {
			ended = true
		}
	}
	waitFor := func(cond func() bool, limit time.Duration) bool {
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return false
			}
			select {
			case m := <-ch:
				if r, ok := m.(*sipmsg.Request); ok {
					byeSeen(r)
				}
				if ended {
					return false
				}
			case <-time.After(20 * time.Millisecond):
			}
		}
		return true
	}
	heard := func(n int) func() bool {
		return func() bool { rx.mu.Lock(); defer rx.mu.Unlock(); return rx.total >= n }
	}
	if o.digits != "" {
		if !waitFor(heard(10), 5*time.Second) {
			t.fail("no greeting")
			g.hangup(inv, toTag, ch, ended, t)
			return
		}
		for _, d := range o.digits {
			if err := sendDigit(tx, 101, byte(d-'0')); err != nil {
				t.fail("dtmf")
			}
		}
	}
	if o.every > 0 {
		g.snd.add(tx)
	}
	if o.digits != "" {
		bridged := func() bool { rx.mu.Lock(); defer rx.mu.Unlock(); return rx.tagged > 0 }
		if !waitFor(bridged, 60*time.Second) {
			t.fail("not bridged")
			g.hangup(inv, toTag, ch, ended, t)
			return
		}
		t.bridged.Add(1)
	}
	t.mu.Lock()
	t.rx = append(t.rx, rx)
	t.mu.Unlock()
	t.up.Add(1)
	defer t.up.Add(-1)
	var hold <-chan time.Time
	if o.hold > 0 {
		tm := time.NewTimer(o.hold)
		defer tm.Stop()
		hold = tm.C
	}
	for !ended {
		select {
		case m := <-ch:
			if r, ok := m.(*sipmsg.Request); ok {
				byeSeen(r)
			}
		case <-o.abandon:
			tx.stop.Store(true)
			return
		case <-hold:
			g.hangup(inv, toTag, ch, ended, t)
			return
		case <-ctx.Done():
			g.hangup(inv, toTag, ch, ended, t)
			return
		}
	}
	t.byServer.Add(1)
}

// hangup sends BYE in the dialog of inv unless the server already ended it.
func (g *gen) hangup(inv req, toTag string, ch chan sipmsg.Message, ended bool, t *tally) {
	if ended {
		return
	}
	bye := inv
	bye.method, bye.toTag, bye.body, bye.cseq, bye.branch = "BYE", toTag, "", 2, "z9hG4bK"+randHex(6)
	res, err := g.ep.transact(ch, g.ep.build(bye), "BYE", 16*time.Second, nil)
	switch {
	case err != nil:
		t.fail("bye timeout")
	case res.StatusCode != 200 && res.StatusCode != 481:
		t.fail(fmt.Sprintf("bye %d", res.StatusCode))
	}
}

// advocate is an advocate's phone: registered with digest, answering every INVITE.
type advocate struct {
	id, pw    string
	contact   string
	regCallID string
}

// advocatePassword is the password the generated configuration gives advocate id.
func advocatePassword(id string) string { return "pw-" + id }

func advocateID(i int) string { return fmt.Sprintf("adv%05d", i) }

// register registers a with the server, answering its digest challenge.
func (g *gen) register(a *advocate) error {
	a.contact = fmt.Sprintf("sip:%s@%s", a.id, g.ep.local)
	a.regCallID = randHex(8) + "@loadgen-reg"
	g.mu.Lock()
	g.advs[a.id] = a
	g.mu.Unlock()
	ch := g.ep.dialog(a.regCallID)
	defer g.ep.drop(a.regCallID)
	aor := fmt.Sprintf("sip:%s@%s", a.id, g.ep.server)
	r := req{method: "REGISTER", ruri: "sip:" + g.ep.server.String(), from: aor, fromTag: randHex(4), to: aor,
		callID: a.regCallID, branch: "z9hG4bK" + randHex(6), cseq: 1, contact: a.contact, hdrs: []string{"Expires: 3600"}}
	res, err := g.ep.transact(ch, g.ep.build(r), "REGISTER", 8*time.Second, nil)
	if err != nil {
		return fmt.Errorf("register %s: %w", a.id, err)
	}
	if res.StatusCode != 401 {
		return fmt.Errorf("register %s: got %d, want a 401 challenge", a.id, res.StatusCode)
	}
	chal, err := icholy.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		return fmt.Errorf("register %s: challenge: %w", a.id, err)
	}
	cred, err := icholy.Digest(chal, icholy.Options{Method: "REGISTER", URI: r.ruri, Username: a.id, Password: a.pw, Count: 1})
	if err != nil {
		return fmt.Errorf("register %s: digest: %w", a.id, err)
	}
	r.cseq, r.branch = 2, "z9hG4bK"+randHex(6)
	r.hdrs = append(r.hdrs, "Authorization: "+cred.String())
	if res, err = g.ep.transact(ch, g.ep.build(r), "REGISTER", 8*time.Second, nil); err != nil {
		return fmt.Errorf("register %s: %w", a.id, err)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("register %s: got %d %s, want 200", a.id, res.StatusCode, res.Reason)
	}
	return nil
}

// answer is an advocate's phone taking the server's INVITE: 200 with SDP at once, then a
// tagged 50 packets/s stream until the server's BYE.
func (g *gen) answer(inv *sipmsg.Request) {
	g.mu.Lock()
	a := g.advs[inv.Recipient.User]
	g.mu.Unlock()
	toTag := "lg" + randHex(3)
	if a == nil {
		_ = g.ep.reply(inv, 404, "Not Found", "", toTag, "")
		return
	}
	offer, err := sdp.NegotiateOffer(inv.Body())
	if err != nil {
		_ = g.ep.reply(inv, 488, "Not Acceptable Here", "", toTag, "")
		return
	}
	callID := inv.CallID().Value()
	ch := g.ep.dialog(callID)
	defer g.ep.drop(callID)
	conn := g.pool.pick()
	rx := newRxStream()
	g.pool.listen(offer.Remote.Port(), rx)
	defer g.pool.listen(offer.Remote.Port(), nil)
	g.mu.Lock()
	g.advRx = append(g.advRx, rx)
	g.mu.Unlock()
	if err := g.ep.reply(inv, 200, "OK", sdpOffer(conn.LocalAddr().(*net.UDPAddr).Port), toTag, a.contact); err != nil {
		g.log.Warn("advocate answer", "id", a.id, "err", err)
		return
	}
	g.answers.Add(1)
	tx := &txStream{conn: conn, to: offer.Remote, ssrc: rand.Uint32(), every: 1, tagged: true}
	g.snd.add(tx)
	defer tx.stop.Store(true)
	for m := range ch {
		if r, ok := m.(*sipmsg.Request); ok && r.Method == sipmsg.BYE {
			return
		}
	}
}

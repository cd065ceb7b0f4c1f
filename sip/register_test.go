package sip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	icholy "github.com/icholy/digest"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/sip/defence"
	"github.com/hotline-project/hotline/sip/digest"
)

const testRealm = "hotline"

// authFixture is a Server on loopback with two advocates, alice and bob, a settable clock,
// and recorders for presence, feature codes and metrics.
type authFixture struct {
	t      *testing.T
	srv    *Server
	addr   *net.UDPAddr
	now    atomic.Int64 // unix ns
	obs    *authObs
	mu     sync.Mutex
	events []string // "alice+" / "alice-"
	feats  []string // "alice *11"
	calls  chan *Call
}

type authObs struct {
	nopObserver
	mu       sync.Mutex
	failures []string
	regs     []int
}

func (o *authObs) AuthFailure(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures = append(o.failures, reason)
}

func (o *authObs) Registrations(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.regs = append(o.regs, n)
}

func (o *authObs) snapshot() ([]string, []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.failures), slices.Clone(o.regs)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	return newAuthFixtureWith(t, nil)
}

// newAuthFixtureWith is newAuthFixture with the server's options changed by set.
func newAuthFixtureWith(t *testing.T, set func(*Options)) *authFixture {
	t.Helper()
	f := &authFixture{t: t, obs: &authObs{}, calls: make(chan *Call, 4)}
	f.now.Store(t0.UnixNano())
	accounts := map[string]digest.HA1{}
	for id, pw := range map[string]string{"alice": "alice-pw", "bob": "bob-pw"} {
		s, _ := digest.ComputeHA1(digest.SHA256, id, testRealm, pw)
		m, _ := digest.ComputeHA1(digest.MD5, id, testRealm, pw)
		accounts[id] = digest.HA1{SHA256: s, MD5: m}
	}
	// carol has only an SHA-256 HA1.
	s, _ := digest.ComputeHA1(digest.SHA256, "carol", testRealm, "carol-pw")
	accounts["carol"] = digest.HA1{SHA256: s}
	auth, err := digest.New(digest.Options{Realm: testRealm, Algorithms: []string{digest.MD5, digest.SHA256}, Lookup: func(id string) (digest.HA1, bool) {
		h, ok := accounts[id]
		return h, ok
	}, Decoy: func() digest.HA1 { return digest.Typical(accounts) }})
	if err != nil {
		t.Fatal(err)
	}
	sched := media.NewScheduler(media.SchedulerOptions{Workers: 1})
	lo := freePort(t)
	opts := Options{
		Lines: func(d string) (string, bool) { return "main", d == "18883737888" },
		Handler: func(ctx context.Context, c *Call) {
			f.calls <- c
		},
		Scheduler:         sched,
		Ports:             media.NewPorts(netip.MustParseAddr("127.0.0.1"), lo, lo+100),
		InactivityTimeout: 30 * time.Second,
		AckTimeout:        2 * time.Second,
		Observer:          f.obs,
		Auth:              auth,
		Registrar:         registrar.New(registrar.Options{}),
		Presence: func(id string, online bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.events = append(f.events, id+map[bool]string{true: "+", false: "-"}[online])
		},
		Feature: func(ctx context.Context, id, code string) error {
			if code != "*11" && code != "*12" {
				return ErrUnknownFeature
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.feats = append(f.feats, id+" "+code)
			return nil
		},
		FeatureHandler: func(ctx context.Context, c *Call) { f.calls <- c },
		Now:            func() time.Time { return time.Unix(0, f.now.Load()).UTC() },
	}
	if set != nil {
		set(&opts)
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.addr = conn.LocalAddr().(*net.UDPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = sched.Run(ctx); done <- struct{}{} }()
	go func() { _ = srv.Serve(ctx, conn, nil); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	return f
}

// freePort returns an even port the kernel just handed out as free, to start an RTP range.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return min(max(c.LocalAddr().(*net.UDPAddr).Port&^1, 1024), 65400)
}

func (f *authFixture) advance(d time.Duration) { f.now.Add(int64(d)) }

func (f *authFixture) presence() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

func (f *authFixture) features() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.feats)
}

// regPhone is a hand-built SIP user agent on its own UDP socket.
type regPhone struct {
	t      *testing.T
	conn   *net.UDPConn
	server *net.UDPAddr
	user   string
	callID string
	cseq   uint32
	msgs   chan sipmsg.Message
}

func newRegPhone(t *testing.T, server *net.UDPAddr, user string) *regPhone {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &regPhone{t: t, conn: conn, server: server, user: user, callID: randHex(8) + "@regPhone", msgs: make(chan sipmsg.Message, 32)}
	go func() {
		defer close(p.msgs)
		buf := make([]byte, 65535)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...)); err == nil {
				p.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return p
}

func (p *regPhone) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

// registrarURI is the Request-URI of our REGISTERs.
func (p *regPhone) registrarURI() string { return "sip:" + p.server.String() }

// request builds a request; to is the To user, ruri the Request-URI.
func (p *regPhone) request(method, ruri, to string, hdrs []string, body string) string {
	p.cseq++
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s\r\n", p.port(), randHex(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", p.user, p.server, randHex(4))
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", to, p.server)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", p.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", p.cseq, method)
	for _, h := range hdrs {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

func (p *regPhone) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDP([]byte(msg), p.server); err != nil {
		p.t.Fatal(err)
	}
}

// response waits for the final response to method.
func (p *regPhone) response(method string) *sipmsg.Response {
	p.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatal("socket closed")
			}
			if res, isRes := m.(*sipmsg.Response); isRes && res.StatusCode >= 200 && string(res.CSeq().MethodName) == method {
				return res
			}
		case <-deadline:
			p.t.Fatalf("no final response to %s", method)
			return nil
		}
	}
}

// register sends a REGISTER for the To user to with extra headers and returns the answer.
func (p *regPhone) register(to string, hdrs ...string) *sipmsg.Response {
	p.t.Helper()
	p.send(p.request("REGISTER", p.registrarURI(), to, hdrs, ""))
	return p.response("REGISTER")
}

func headerValues(m sipmsg.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

// answer signs the first challenge of res with algorithm alg (the first offered if "").
func digestAnswer(t *testing.T, res *sipmsg.Response, alg, method, uri, user, pw string, nc int) string {
	t.Helper()
	for _, v := range headerValues(res, "WWW-Authenticate") {
		c, err := icholy.ParseChallenge(v)
		if err != nil {
			t.Fatal(err)
		}
		if alg != "" && c.Algorithm != alg {
			continue
		}
		cred, err := icholy.Digest(c, icholy.Options{Method: method, URI: uri, Username: user, Password: pw, Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: " + cred.String()
	}
	t.Fatalf("no %q challenge in %v", alg, res)
	return ""
}

func wantStatus(t *testing.T, step string, res *sipmsg.Response, code int) {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("%s: got %d %s, want %d\n%s", step, res.StatusCode, res.Reason, code, res)
	}
}

// challengeShape is a 401's challenges with the nonces blanked out.
func challengeShape(res *sipmsg.Response) []string {
	var out []string
	for _, v := range headerValues(res, "WWW-Authenticate") {
		c, _ := icholy.ParseChallenge(v)
		c.Nonce = "N"
		out = append(out, c.String())
	}
	return out
}

func TestRegister(t *testing.T) {
	f := newAuthFixture(t)
	p := newRegPhone(t, f.addr, "alice")
	// The Contact names a private address; the REGISTER comes from the phone's socket.
	contact := "Contact: <sip:alice@192.168.1.20:5062>;expires=600"

	res := p.register("alice", contact)
	wantStatus(t, "no credentials", res, 401)
	chals := headerValues(res, "WWW-Authenticate")
	if len(chals) != 2 || !strings.Contains(chals[0], "algorithm=MD5") || !strings.Contains(chals[1], "algorithm=SHA-256") ||
		!strings.Contains(chals[0], `qop="auth"`) || strings.Contains(chals[0], "stale") {
		t.Fatalf("challenges %q, want MD5 then SHA-256 with qop auth", chals)
	}
	first := res

	auth := digestAnswer(t, first, digest.SHA256, "REGISTER", p.registrarURI(), "alice", "alice-pw", 1)
	res = p.register("alice", contact, auth)
	wantStatus(t, "right password", res, 200)
	if got := headerValues(res, "Contact"); len(got) != 1 || got[0] != "<sip:alice@192.168.1.20:5062>;expires=600" {
		t.Errorf("200 contacts %q", got)
	}
	b := f.srv.Contacts("alice")
	if len(b) != 1 || b[0].Contact != "sip:alice@192.168.1.20:5062" || b[0].Source.Port() != uint16(p.port()) || b[0].Transport != "udp" {
		t.Errorf("Contacts(alice) = %+v, want the contact with source port %d over udp", b, p.port())
	}
	if got := f.presence(); !slices.Equal(got, []string{"alice+"}) {
		t.Errorf("presence %v, want [alice+]", got)
	}

	// The same Authorization again (nc 1) is a replay, even on a new transaction.
	res = p.register("alice", contact, auth)
	wantStatus(t, "replayed nc", res, 401)
	// The next count on the same nonce is fine (phones reuse nonces).
	res = p.register("alice", contact, digestAnswer(t, first, digest.MD5, "REGISTER", p.registrarURI(), "alice", "alice-pw", 2))
	wantStatus(t, "md5, nc 2", res, 200)

	// Wrong password and unknown user: the same 401.
	res = p.register("alice", contact, digestAnswer(t, first, digest.SHA256, "REGISTER", p.registrarURI(), "alice", "guess", 3))
	wantStatus(t, "wrong password", res, 401)
	wrong := res
	mallory := newRegPhone(t, f.addr, "mallory")
	res = mallory.register("mallory", contact, digestAnswer(t, first, digest.SHA256, "REGISTER", p.registrarURI(), "mallory", "guess", 1))
	wantStatus(t, "unknown user", res, 401)
	if a, b := challengeShape(wrong), challengeShape(res); !slices.Equal(a, b) || res.Reason != wrong.Reason {
		t.Errorf("unknown user's 401 %q %q differs from wrong password's %q %q", res.Reason, b, wrong.Reason, a)
	}

	// Credentials signed for another Request-URI are refused.
	res = p.register("alice", contact, digestAnswer(t, first, digest.SHA256, "REGISTER", "sip:other.example.org", "alice", "alice-pw", 4))
	wantStatus(t, "other uri", res, 401)

	// Alice's credentials cannot register bob's phone.
	res = p.register("bob", contact, digestAnswer(t, first, digest.SHA256, "REGISTER", p.registrarURI(), "alice", "alice-pw", 5))
	wantStatus(t, "other advocate's AOR", res, 403)

	// Too short an expiry.
	res = p.register("alice", "Contact: <sip:alice@192.168.1.20:5062>;expires=10",
		digestAnswer(t, first, digest.SHA256, "REGISTER", p.registrarURI(), "alice", "alice-pw", 6))
	wantStatus(t, "too brief", res, 423)
	if got := headerValues(res, "Min-Expires"); len(got) != 1 || got[0] != "60" {
		t.Errorf("Min-Expires %q, want 60", got)
	}

	// After the nonce lifetime a correct answer gets a stale challenge.
	f.advance(digest.DefaultNonceLifetime + time.Second)
	res = p.register("alice", contact, digestAnswer(t, first, digest.SHA256, "REGISTER", p.registrarURI(), "alice", "alice-pw", 7))
	wantStatus(t, "stale nonce", res, 401)
	if v := headerValues(res, "WWW-Authenticate"); len(v) != 2 || !strings.Contains(v[0], "stale=true") {
		t.Fatalf("challenges %q, want stale=true", v)
	}
	fresh := res
	// A malformed Authorization is challenged too.
	res = p.register("alice", contact, "Authorization: Digest username=alice, ===")
	wantStatus(t, "malformed", res, 401)

	// Unregister every contact.
	res = p.register("alice", "Contact: *", "Expires: 0",
		digestAnswer(t, fresh, digest.SHA256, "REGISTER", p.registrarURI(), "alice", "alice-pw", 1))
	wantStatus(t, "unregister", res, 200)
	if got := headerValues(res, "Contact"); len(got) != 0 {
		t.Errorf("contacts after unregister %q", got)
	}
	if b := f.srv.Contacts("alice"); len(b) != 0 {
		t.Errorf("Contacts(alice) after unregister = %+v", b)
	}
	if got := f.presence(); !slices.Equal(got, []string{"alice+", "alice-"}) {
		t.Errorf("presence %v, want [alice+ alice-]", got)
	}
	failures, regs := f.obs.snapshot()
	wantFailures := []string{"replay", "bad_credentials", "bad_credentials", "mismatch", "stale", "malformed"}
	if !slices.Equal(failures, wantFailures) {
		t.Errorf("auth failures %v, want %v", failures, wantFailures)
	}
	if !slices.Equal(regs, []int{1, 1, 0}) {
		t.Errorf("registration counts %v, want [1 1 0]", regs)
	}
}

// Issue 13: phones that read only the first challenge of a 401 and speak only MD5 (baresip
// 1.0, SIPp 3.6) register, because MD5 comes first; an advocate with only an SHA-256 HA1 is
// offered only SHA-256; and a user name with no account gets the challenges most accounts
// get, so a 401 does not tell which names exist.
func TestChallengePerAdvocate(t *testing.T) {
	f := newAuthFixture(t)
	contact := "Contact: <sip:x@127.0.0.1:5062>;expires=600"
	algs := func(res *sipmsg.Response) []string {
		var out []string
		for _, v := range headerValues(res, "WWW-Authenticate") {
			c, err := icholy.ParseChallenge(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c.Algorithm)
		}
		return out
	}

	alice := newRegPhone(t, f.addr, "alice")
	res := alice.register("alice", contact)
	wantStatus(t, "alice, no credentials", res, 401)
	if got := algs(res); !slices.Equal(got, []string{"MD5", "SHA-256"}) {
		t.Fatalf("alice is offered %v, want [MD5 SHA-256]", got)
	}
	// An MD5-only phone answers the first challenge.
	res = alice.register("alice", contact, digestAnswer(t, res, "", "REGISTER", alice.registrarURI(), "alice", "alice-pw", 1))
	wantStatus(t, "alice answers the first challenge", res, 200)

	carol := newRegPhone(t, f.addr, "carol")
	res = carol.register("carol", contact)
	wantStatus(t, "carol, no credentials", res, 401)
	if got := algs(res); !slices.Equal(got, []string{"SHA-256"}) {
		t.Fatalf("carol is offered %v, want [SHA-256]", got)
	}
	res = carol.register("carol", contact, digestAnswer(t, res, "", "REGISTER", carol.registrarURI(), "carol", "carol-pw", 1))
	wantStatus(t, "carol answers", res, 200)

	known := alice.register("alice", contact)
	mallory := newRegPhone(t, f.addr, "mallory")
	unknown := mallory.register("mallory", contact)
	wantStatus(t, "mallory", unknown, 401)
	if a, b := challengeShape(known), challengeShape(unknown); !slices.Equal(a, b) {
		t.Errorf("unknown user's challenges %q differ from alice's %q", b, a)
	}
}

// A registration that is not refreshed lapses, and the advocate goes offline.
func TestRegistrationExpires(t *testing.T) {
	f := newAuthFixture(t)
	p := newRegPhone(t, f.addr, "bob")
	res := p.register("bob")
	res = p.register("bob", "Contact: <sip:bob@127.0.0.1:5070>", "Expires: 60",
		digestAnswer(t, res, digest.MD5, "REGISTER", p.registrarURI(), "bob", "bob-pw", 1))
	wantStatus(t, "register", res, 200)
	f.advance(61 * time.Second)
	deadline := time.Now().Add(5 * time.Second) // the server expires lapsed bindings every second
	for !slices.Equal(f.presence(), []string{"bob+", "bob-"}) {
		if time.Now().After(deadline) {
			t.Fatalf("presence %v, want [bob+ bob-]", f.presence())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b := f.srv.Contacts("bob"); len(b) != 0 {
		t.Errorf("Contacts(bob) after expiry = %+v", b)
	}
}

// TestRegisterPath: a REGISTER through an edge proxy (RFC 3327) is accepted with Require:
// path, its Path is kept with the binding (in order, several in one header or many) and
// echoed in the 200 when the phone lists path in Supported; a malformed Path gets 400 and
// changes nothing.
func TestRegisterPath(t *testing.T) {
	f := newAuthFixtureWith(t, func(o *Options) {
		// The edge proxy (here the phone's own address) is listed in trusted_sources.
		l, err := defence.New(defence.Config{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		if err != nil {
			t.Fatal(err)
		}
		o.Defences = l
	})
	p := newRegPhone(t, f.addr, "bob")
	chal := p.register("bob")
	path := []string{"<sip:127.0.0.5:5070;lr;received=sip:127.0.0.9%3A4000>", "<sip:outer.example.org;lr>"}
	nc := 0
	reg := func(hdrs ...string) *sipmsg.Response {
		nc++
		hdrs = append(hdrs, "Contact: <sip:bob@10.0.0.7:5060>", "Expires: 60",
			digestAnswer(t, chal, digest.MD5, "REGISTER", p.registrarURI(), "bob", "bob-pw", nc))
		return p.register("bob", hdrs...)
	}

	res := reg("Path: "+path[0]+", "+path[1], "Supported: path, gruu", "Require: path")
	wantStatus(t, "register with path", res, 200)
	if got := headerValues(res, "Path"); len(got) != 1 || got[0] != path[0]+", "+path[1] {
		t.Errorf("200 Path %q, want %q", got, path)
	}
	if b := f.srv.Contacts("bob"); len(b) != 1 || !slices.Equal(b[0].Path, path) {
		t.Errorf("Contacts(bob) = %+v, want Path %q", b, path)
	}

	// Not echoed to a phone that does not say it supports Path; one header per entry.
	res = reg("Path: "+path[0], "Path: "+path[1])
	wantStatus(t, "register, no Supported", res, 200)
	if got := headerValues(res, "Path"); len(got) != 0 {
		t.Errorf("200 Path %q to a phone without Supported: path", got)
	}
	if b := f.srv.Contacts("bob"); len(b) != 1 || !slices.Equal(b[0].Path, path) {
		t.Errorf("Contacts(bob) = %+v, want Path %q", b, path)
	}

	res = reg("Path: sip:no-brackets.example.org;lr")
	wantStatus(t, "malformed path", res, 400)
	if b := f.srv.Contacts("bob"); len(b) != 1 || !slices.Equal(b[0].Path, path) {
		t.Errorf("Contacts(bob) after a refused REGISTER = %+v, want it unchanged", b)
	}
}

// TestRegisterPathUntrusted: a Path from a source not in trusted_sources is refused (403),
// with the right credentials: else a phone could make the node send its INVITEs to any
// address by naming it in a Path of its own.
func TestRegisterPathUntrusted(t *testing.T) {
	f := newAuthFixture(t)
	p := newRegPhone(t, f.addr, "bob")
	chal := p.register("bob")
	res := p.register("bob", "Contact: <sip:bob@127.0.0.1:5070>", "Path: <sip:203.0.113.9:5060;lr>",
		digestAnswer(t, chal, digest.MD5, "REGISTER", p.registrarURI(), "bob", "bob-pw", 1))
	wantStatus(t, "path from an untrusted source", res, 403)
	if b := f.srv.Contacts("bob"); len(b) != 0 {
		t.Errorf("Contacts(bob) = %+v, want none", b)
	}
}

const testSDP = "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"

// invite sends an INVITE to user and returns its final response; the phone ACKs it.
func (p *regPhone) invite(user string, hdrs ...string) *sipmsg.Response {
	p.t.Helper()
	ruri := "sip:" + user + "@" + p.server.String()
	hdrs = append(hdrs, fmt.Sprintf("Contact: <sip:%s@127.0.0.1:%d>", p.user, p.port()))
	msg := p.request("INVITE", ruri, user, hdrs, testSDP)
	p.send(msg)
	res := p.response("INVITE")
	// ACK: for a non-2xx in the INVITE's transaction (same branch), for a 2xx a new one.
	m, err := sipmsg.ParseMessage([]byte(msg))
	if err != nil {
		p.t.Fatal(err)
	}
	inv := m.(*sipmsg.Request)
	branch, _ := inv.Via().Params.Get("branch")
	target := inv.Recipient.String()
	if res.StatusCode < 300 {
		branch = "z9hG4bK" + randHex(6)
		if c := res.Contact(); c != nil {
			target = c.Address.String()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ACK %s SIP/2.0\r\n", target)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s\r\n", p.port(), branch)
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\n", inv.From().Value(), res.To().Value(), p.callID)
	fmt.Fprintf(&b, "CSeq: %d ACK\r\nContent-Length: 0\r\n\r\n", inv.CSeq().SeqNo)
	p.send(b.String())
	return res
}

// expectBye waits for the server's BYE and answers 200.
func (p *regPhone) expectBye() {
	p.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if req, ok := m.(*sipmsg.Request); ok && req.Method == sipmsg.BYE {
				p.send(sipmsg.NewResponseFromRequest(req, 200, "OK", nil).String())
				return
			}
		case <-deadline:
			p.t.Fatal("no BYE")
		}
	}
}

func TestFeatureCode(t *testing.T) {
	f := newAuthFixture(t)
	p := newRegPhone(t, f.addr, "alice")
	res := p.invite("*11")
	wantStatus(t, "feature code without credentials", res, 401)
	if len(f.features()) != 0 {
		t.Fatalf("feature ran without authentication: %v", f.features())
	}
	uri := "sip:*11@" + p.server.String()
	res = p.invite("*11", digestAnswer(t, res, "", "INVITE", uri, "alice", "wrong", 1))
	wantStatus(t, "wrong password", res, 401)
	res = p.invite("*11", digestAnswer(t, res, "", "INVITE", uri, "alice", "alice-pw", 1))
	wantStatus(t, "feature code", res, 200)
	var c *Call
	select {
	case c = <-f.calls:
	case <-time.After(5 * time.Second):
		t.Fatal("feature handler not run")
	}
	if c.Advocate != "alice" || c.Feature != "*11" || c.Line != featureLine {
		t.Errorf("call advocate %q feature %q line %q", c.Advocate, c.Feature, c.Line)
	}
	p.expectBye()
	if got := f.features(); !slices.Equal(got, []string{"alice *11"}) {
		t.Errorf("features %v, want [alice *11]", got)
	}

	// Credentials for *11 do not open *12 (the digest-uri is bound to the Request-URI).
	res = p.invite("*12")
	wantStatus(t, "*12 without credentials", res, 401)
	res = p.invite("*12", digestAnswer(t, res, "", "INVITE", uri, "alice", "alice-pw", 1))
	wantStatus(t, "*12 with *11's uri", res, 401)

	// An unknown code: 404, but only after authentication.
	res = p.invite("*99")
	wantStatus(t, "unknown code without credentials", res, 401)
	res = p.invite("*99", digestAnswer(t, res, "", "INVITE", "sip:*99@"+p.server.String(), "alice", "alice-pw", 1))
	wantStatus(t, "unknown code", res, 404)
}

// Callers dialling a line are never challenged.
func TestLineNotChallenged(t *testing.T) {
	f := newAuthFixture(t)
	p := newRegPhone(t, f.addr, "+15551234567")
	res := p.invite("18883737888")
	wantStatus(t, "caller", res, 200)
	select {
	case c := <-f.calls:
		if c.Advocate != "" || c.Feature != "" {
			t.Errorf("caller's call has advocate %q feature %q", c.Advocate, c.Feature)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not run")
	}
	p.expectBye()
}

func TestFeatureCodeSyntax(t *testing.T) {
	tests := []struct {
		user string
		want string
		ok   bool
	}{
		{"*11", "*11", true},
		{"%2A12", "*12", true},
		{"%2a13", "*13", true},
		{"*", "", false},
		{"11", "", false},
		{"18883737888", "", false},
		{"*1a", "", false},
		{"*12345678901234567", "", false},
		{"*#*", "*#*", true},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := featureCode(tt.user)
		if got != tt.want || ok != tt.ok {
			t.Errorf("featureCode(%q) = %q, %v; want %q, %v", tt.user, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSameURI(t *testing.T) {
	var r sipmsg.Uri
	if err := sipmsg.ParseUri("sip:*11@Example.org;transport=udp", &r); err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]bool{
		"sip:*11@example.org":      true,
		"sip:*11@example.org:5060": true,
		"sip:*12@example.org":      false,
		"sip:*11@example.com":      false,
		"sips:*11@example.org":     false,
		"sip:*11@example.org:5070": false,
		"not a uri":                false,
		"":                         false,
	} {
		if got := sameURI(u, r); got != want {
			t.Errorf("sameURI(%q) = %v, want %v", u, got, want)
		}
	}
}

func FuzzRegisterRequest(f *testing.F) {
	base := "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKx\r\n" +
		"From: <sip:alice@h>;tag=1\r\nTo: <sip:alice@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n"
	for _, extra := range []string{
		"Contact: <sip:alice@10.0.0.1:5060>;expires=60\r\n",
		"Contact: *\r\nExpires: 0\r\n",
		"Contact: <sip:a@h>, <sip:b@h>;expires=x\r\nExpires: 99999999999\r\n",
		"Contact: \"A\" <sip:a@h;transport=tcp>;q=0.5;expires=4294967295\r\n",
		"Expires: -1\r\n",
	} {
		f.Add(base+extra+"Content-Length: 0\r\n\r\n", "*11")
	}
	f.Fuzz(func(t *testing.T, msg, user string) {
		if code, ok := featureCode(user); ok && (code[0] != '*' || len(code) > 16) {
			t.Fatalf("featureCode(%q) = %q", user, code)
		}
		m, err := sipmsg.ParseMessage([]byte(msg))
		if err != nil {
			return
		}
		req, ok := m.(*sipmsg.Request)
		if !ok || req.CallID() == nil || req.CSeq() == nil {
			return
		}
		rr, ok := registerRequest(req)
		if !ok {
			return
		}
		if rr.Expires < -1 {
			t.Fatalf("Expires %d", rr.Expires)
		}
		for _, c := range rr.Contacts {
			if c.Expires < -1 || strings.ContainsAny(c.URI, "<>\r\n") {
				t.Fatalf("contact %+v", c)
			}
		}
	})
}

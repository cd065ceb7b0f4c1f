package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/hotline-project/hotline/internal/sipagent"
	"github.com/hotline-project/hotline/media"
)

// testCert returns a self-signed certificate for 127.0.0.1 and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	c := sipagent.SelfSigned(t, t.TempDir())
	return c.Certificate, c.Roots
}

// TestDialTLS: a phone with no open connection to us is reached over TLS, trusting its
// certificate through Options.TLSClient; the INVITE, ACK and our BYE share that connection,
// and our Via and Contact say TLS (sips: for a sips: target).
func TestDialTLS(t *testing.T) {
	serverCert, _ := testCert(t)
	phoneCert, phoneRoots := testCert(t)
	s := startDialServerTLS(t, &tls.Config{Certificates: []tls.Certificate{serverCert}}, &tls.Config{RootCAs: phoneRoots})
	p := newPhoneTLS(t, "tls", &tls.Config{Certificates: []tls.Certificate{phoneCert}})
	res := dialAsync(context.Background(), s, DialRequest{Target: "sips:alice@" + p.addr(), Line: "main"})
	answer(t, p)
	r := waitDial(t, res)
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	inv := p.invite
	if v := inv.Via(); v == nil || v.Transport != "TLS" || v.Port != s.tlsAddr.Port {
		t.Errorf("INVITE Via = %v, want TLS with the TLS port %d", v, s.tlsAddr.Port)
	}
	if ct := inv.Contact(); ct == nil || ct.Address.Scheme != "sips" || ct.Address.Port != s.tlsAddr.Port {
		t.Errorf("INVITE Contact = %v, want sips: on port %d", ct, s.tlsAddr.Port)
	}
	p.mu.Lock()
	conn := p.tcp
	p.mu.Unlock()
	if st := conn.(*tls.Conn).ConnectionState(); st.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x, want 1.2 or later", st.Version)
	}
	hung := make(chan error, 1)
	go func() { hung <- r.call.Hangup(context.Background(), "test") }()
	bye := p.expectRequest("BYE")
	p.respond(bye, 200, "OK", "")
	if err := <-hung; err != nil {
		t.Errorf("Hangup: %v", err)
	}
	waitUntil(t, "call released", func() bool { return s.ActiveCalls() == 0 && s.ports.InUse() == 0 })
}

// TestDialTLSUntrusted: a phone whose certificate the server does not trust is not called.
func TestDialTLSUntrusted(t *testing.T) {
	serverCert, _ := testCert(t)
	phoneCert, _ := testCert(t)
	_, otherRoots := testCert(t)
	s := startDialServerTLS(t, &tls.Config{Certificates: []tls.Certificate{serverCert}}, &tls.Config{RootCAs: otherRoots})
	p := newPhoneTLS(t, "tls", &tls.Config{Certificates: []tls.Certificate{phoneCert}})
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	c, err := s.Dial(ctx, DialRequest{Target: "sip:alice@" + p.addr() + ";transport=tls", Line: "main"})
	if err == nil {
		c.Hangup(context.Background(), "test")
		t.Fatal("Dial succeeded to a phone with an untrusted certificate")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Dial error = %v, want a certificate error", err)
	}
	waitUntil(t, "ports released", func() bool { return s.ports.InUse() == 0 })
}

// TestServeTLSNeedsCertificate: a TLS listener without a certificate is refused at once.
func TestServeTLSNeedsCertificate(t *testing.T) {
	srv, err := NewServer(Options{
		Lines:     func(string) (string, bool) { return "", false },
		Handler:   func(context.Context, *Call) {},
		Scheduler: media.NewScheduler(media.SchedulerOptions{Workers: 1}),
		Ports:     media.NewPorts(netip.MustParseAddr("127.0.0.1"), 40000, 40010),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.ServeListeners(context.Background(), Listeners{TLS: ln}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("ServeListeners = %v, want an error asking for a certificate", err)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	icholy "github.com/icholy/digest"

	"github.com/hotline-project/hotline/internal/sipagent"
)

// selfSigned writes a self-signed ECDSA certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool trusting the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	c := sipagent.SelfSigned(t, dir)
	return c.CertFile, c.KeyFile, c.Roots
}

// tlsConfig is testConfig with SIP over TLS on a port chosen at run time.
func tlsConfig(certFile, keyFile, extra string) string {
	return strings.Replace(testConfig, "  ack_timeout: 2s\n", "  ack_timeout: 2s\n  tls:\n    listen: 127.0.0.1:0\n"+
		"    cert_file: "+certFile+"\n    key_file: "+keyFile+"\n"+extra, 1)
}

// newTLSUAC is a UAC speaking SIP over TLS to server, trusting roots, with sips: URIs.
func newTLSUAC(t *testing.T, server string, roots *x509.CertPool) *uac {
	t.Helper()
	return wrapCaller(t, sipagent.NewTLSCaller(t, server, roots))
}

// A call over TLS: INVITE, 200 with SDP and a sips: Contact on the TLS port, ACK, the
// greeting's audio, BYE and its 200, all on the one TLS connection.
func TestTLSCall(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	ts := startServer(t, tlsConfig(certFile, keyFile, ""))
	if ts.addrs.SIPTLS == "" || !strings.Contains(ts.logs.String(), "sip_tls="+ts.addrs.SIPTLS) {
		t.Fatalf("TLS address %q not reported in Addrs and the listening log:\n%s", ts.addrs.SIPTLS, ts.logs.String())
	}
	u := newTLSUAC(t, ts.addrs.SIPTLS, roots)
	if v := u.stream.(*tls.Conn).ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x, want 1.2 or later", v)
	}
	stream := u.receiveRTP()
	u.invite(hotlineNumber, sdpOffer(u.rtpPort(), "0 101", ""))
	res := u.expectResponse("INVITE", 200, 3*time.Second)
	_, port, _ := net.SplitHostPort(ts.addrs.SIPTLS)
	if c := res.GetHeader("Contact"); c == nil || !strings.HasPrefix(c.Value(), "<sips:") || !strings.Contains(c.Value(), ":"+port+">") {
		t.Errorf("Contact of the 200 over TLS = %v, want a sips: URI on port %s", c, port)
	}
	if v := res.Via(); v == nil || v.Transport != "TLS" {
		t.Errorf("Via of the 200 = %v, want transport TLS", v)
	}
	u.ack(hotlineNumber, "")
	greeting := mustPrompt(t, "en", "greeting")
	stream.waitFor(t, "the English greeting", greeting.PCMU[:1600], 10*time.Second)
	u.hangup()
	ts.waitMetric(t, `hotline_calls_total{line="main",outcome="caller_hangup"}`, 1)
}

// registerTLS registers u, a TLS UAC, as advocate id with password pw (digest, with a
// wrong password first) and returns the 200.
func registerTLS(t *testing.T, u *uac, id, pw string) *sipmsg.Response {
	t.Helper()
	u.from = id
	uri := "sips:" + id + "@" + u.server.String()
	u.nextRequest("REGISTER", id, "", "")
	chal := u.expectResponse("REGISTER", 401, 3*time.Second)
	c, err := icholy.ParseChallenge(chal.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	sign := func(pw string, nc int) string {
		cred, err := icholy.Digest(c, icholy.Options{Method: "REGISTER", URI: uri, Username: id, Password: pw, Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: " + cred.String()
	}
	u.nextRequest("REGISTER", id, "", "", sign("wrong", 1))
	u.expectResponse("REGISTER", 401, 3*time.Second)
	u.nextRequest("REGISTER", id, "", "", sign(pw, 2), "Expires: 120")
	return u.expectResponse("REGISTER", 200, 3*time.Second)
}

// An advocate's phone registers over TLS with digest authentication; a caller (over UDP)
// queues for the advocate, and the phone is rung over TLS on the connection it registered
// over: INVITE, its 200, the server's ACK, and the BYE when the caller hangs up.
func TestTLSAdvocateRungOverTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	cfg := strings.Replace(queueTestConfig(t, "", "ana:es:pw-ana"), "  ack_timeout: 2s\n", "  ack_timeout: 2s\n  tls:\n    listen: 127.0.0.1:0\n"+
		"    cert_file: "+certFile+"\n    key_file: "+keyFile+"\n", 1)
	ts := startServer(t, cfg)
	ana := newTLSUAC(t, ts.addrs.SIPTLS, roots)
	res := registerTLS(t, ana, "ana", "pw-ana")
	if ct := res.GetHeader("Contact"); ct == nil || !strings.Contains(ct.Value(), "sips:ana@") {
		t.Errorf("200 Contact = %v, want the sips: contact registered", ct)
	}
	ts.waitMetric(t, "hotline_sip_registrations", 1)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)

	c := callIn(t, ts, "21", 440)
	inv := ana.nextMessageRequest(t, "INVITE", 20*time.Second)
	if v := inv.Via(); v == nil || v.Transport != "TLS" {
		t.Errorf("INVITE to the phone has Via %v, want transport TLS", v)
	}
	if inv.Recipient.Scheme != "sips" {
		t.Errorf("INVITE to the phone is for %s, want the registered sips: contact", inv.Recipient.String())
	}
	if ct := inv.GetHeader("Contact"); ct == nil || !strings.HasPrefix(ct.Value(), "<sips:") {
		t.Errorf("INVITE Contact = %v, want sips:", ct)
	}
	ok := sipmsg.NewResponseFromRequest(inv, 200, "OK", []byte(sdpOffer(ana.rtpPort(), "0 101", "")))
	ok.To().Params.Add("tag", "ph"+randHex(3))
	ok.AppendHeader(sipmsg.NewHeader("Contact", "<sips:ana@"+ana.stream.LocalAddr().String()+";transport=tls>"))
	ok.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	ana.send(ok.String())
	ana.nextMessageRequest(t, "ACK", 5*time.Second)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="on_call"}`, 1)
	c.hangup()
	ana.expectRequest("BYE", 10*time.Second)
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
}

// nextMessageRequest waits for a request with method, skipping responses, and returns it
// unanswered.
func (u *uac) nextMessageRequest(t *testing.T, method string, timeout time.Duration) *sipmsg.Request {
	t.Helper()
	return u.agent().NextRequestFrom(method, timeout)
}

// A client that connects to the TLS port and never starts the handshake is disconnected
// after handshake_timeout; so is one that sends something other than TLS. The server goes on
// answering.
func TestTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	ts := startServer(t, tlsConfig(certFile, keyFile, "    handshake_timeout: 1s\n"))
	for _, tc := range []struct {
		name, send string
	}{
		{"silent", ""},
		{"plain sip", "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\r\n"},
		{"half a client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.addrs.SIPTLS)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if tc.send != "" {
				if _, err := conn.Write([]byte(tc.send)); err != nil {
					t.Fatal(err)
				}
			}
			// The bound is far beyond the 1s timeout: it only stops a broken server from
			// hanging the test. Any bytes read (a TLS alert) are fine; the close is the point.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = io.ReadAll(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept a connection that never completed a TLS handshake")
			}
		})
	}
	u := newTLSUAC(t, ts.addrs.SIPTLS, roots)
	u.nextRequest("OPTIONS", hotlineNumber, "", "")
	u.expectResponse("OPTIONS", 200, 3*time.Second)
}

// A missing or unusable certificate or key stops start-up with an error naming the file.
func TestTLSBadFilesStopStartUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	garbage := writeFile(t, dir, "garbage.pem", "not a pem file\n")
	otherDir := filepath.Join(dir, "other")
	if err := os.Mkdir(otherDir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := selfSigned(t, otherDir)
	missing := filepath.Join(dir, "missing.crt")
	for _, tc := range []struct {
		name, cert, key, extra, want string
	}{
		{"missing cert", missing, keyFile, "", missing},
		{"missing key", certFile, filepath.Join(dir, "missing.key"), "", filepath.Join(dir, "missing.key")},
		{"garbage cert", garbage, keyFile, "", garbage},
		{"key of another certificate", certFile, otherKey, "", otherKey},
		{"garbage ca file", certFile, keyFile, "    ca_file: " + garbage + "\n", garbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.NewReplacer("PORT_MIN", "30000", "PORT_MAX", "30100", "RECORDS_PATH", filepath.Join(t.TempDir(), "r.db")).
				Replace(tlsConfig(tc.cert, tc.key, tc.extra))
			p := writeFile(t, t.TempDir(), "hotline.yaml", cfg)
			// A server that starts anyway is stopped by the timeout and exits 0: a failure.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var errb bytes.Buffer
			code := run(ctx, []string{"serve", "-config", p}, io.Discard, &errb, nil)
			errOut := errb.String()
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr does not name %s:\n%s", code, tc.want, errOut)
			}
			code, _, errOut = runCmd(t, "check", "-config", p)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("check: exit %d, stderr does not name %s:\n%s", code, tc.want, errOut)
			}
		})
	}
}

// TestConsoleOverHTTPS: with http.cert_file and http.key_file the console, the admin API
// and /metrics are served over HTTPS only; the console's session cookie is Secure; plain
// HTTP on the port gets no page. Bad files stop start-up and `hotline check`, naming them.
func TestConsoleOverHTTPS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	cfg := strings.Replace(consoleTestConfig(t), "http:\n  listen: 127.0.0.1:0\n",
		"http:\n  listen: 127.0.0.1:0\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n", 1)
	ts := startServer(t, cfg)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	base := "https://" + ts.addrs.HTTP
	for _, path := range []string{"/console/", "/metrics"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s over HTTPS: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s over HTTPS: %s", path, resp.Status)
		}
	}
	resp, err := client.Post(base+"/console/api/signin", "application/json", strings.NewReader(`{"id":"ana","password":"ana-pw"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in over HTTPS: %s", resp.Status)
	}
	var secure bool
	for _, c := range resp.Cookies() {
		secure = secure || c.Secure && c.HttpOnly
	}
	if !secure {
		t.Errorf("the session cookie over HTTPS is not Secure and HttpOnly: %v", resp.Header["Set-Cookie"])
	}
	plain, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ts.addrs.HTTP + "/console/")
	if err == nil {
		body, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK || strings.Contains(string(body), "<html") {
			t.Errorf("plain HTTP on the HTTPS port: %s %q", plain.Status, body)
		}
	}

	garbage := writeFile(t, dir, "garbage.pem", "not a pem file\n")
	for _, tc := range []struct{ name, cert, key, want string }{
		{"missing cert", filepath.Join(dir, "missing.crt"), keyFile, "missing.crt"},
		{"garbage key", certFile, garbage, garbage},
		{"cert without key", certFile, "", "http.cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := strings.NewReplacer("PORT_MIN", "30000", "PORT_MAX", "30100", "RECORDS_PATH", filepath.Join(t.TempDir(), "r.db")).
				Replace(strings.Replace(testConfig, "http:\n  listen: 127.0.0.1:0\n",
					"http:\n  listen: 127.0.0.1:0\n  cert_file: \""+tc.cert+"\"\n  key_file: \""+tc.key+"\"\n", 1))
			p := writeFile(t, t.TempDir(), "hotline.yaml", c)
			code, _, errOut := runCmd(t, "check", "-config", p)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("check: exit %d, stderr does not name %s:\n%s", code, tc.want, errOut)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var errb bytes.Buffer
			if code := run(ctx, []string{"serve", "-config", p}, io.Discard, &errb, nil); code != 1 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("serve: exit %d, stderr does not name %s:\n%s", code, tc.want, errb.String())
			}
		})
	}
}

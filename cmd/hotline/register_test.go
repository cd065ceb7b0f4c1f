package main

import (
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	icholy "github.com/icholy/digest"

	"github.com/hotline-project/hotline/sip/digest"
)

// An advocate configured with `hotline passwd`'s output registers with their password; the
// registration shows in the metrics, and a wrong password is counted as a failure.
func TestAdvocateRegisters(t *testing.T) {
	t.Parallel()
	sha, _ := digest.ComputeHA1(digest.SHA256, "maria", "hotline", "s3cret")
	md5, _ := digest.ComputeHA1(digest.MD5, "maria", "hotline", "s3cret")
	cfg := testConfig + "advocates:\n  - id: maria\n    languages: [en]\n    ha1_sha256: " + sha + "\n    ha1_md5: " + md5 + "\n"
	ts := startServer(t, cfg)
	u := newUAC(t, ts.addrs.SIPUDP)
	uri := "sip:maria@" + u.server.String()
	sign := func(res *sipmsg.Response, pw string, nc int) string {
		t.Helper()
		chal, err := icholy.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
		if err != nil {
			t.Fatal(err)
		}
		cred, err := icholy.Digest(chal, icholy.Options{Method: "REGISTER", URI: uri, Username: "maria", Password: pw, Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: " + cred.String()
	}
	u.nextRequest("REGISTER", "maria", "", "")
	chal := u.expectResponse("REGISTER", 401, 2*time.Second)
	u.nextRequest("REGISTER", "maria", "", "", sign(chal, "wrong", 1))
	u.expectResponse("REGISTER", 401, 2*time.Second)
	u.nextRequest("REGISTER", "maria", "", "", sign(chal, "s3cret", 2), "Expires: 120")
	res := u.expectResponse("REGISTER", 200, 2*time.Second)
	if c := res.GetHeader("Contact"); c == nil || !strings.HasSuffix(c.Value(), ";expires=120") {
		t.Errorf("200 Contact = %v", c)
	}
	ts.waitMetric(t, "hotline_sip_registrations", 1)
	ts.waitMetric(t, `hotline_sip_auth_failures_total{reason="bad_credentials"}`, 1)
}

package config

import "testing"

func TestLineSRTPErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{{"srtp-bad.yaml", `testdata/srtp-bad.yaml:3: lines[0].srtp: "always" is not one of off, optional, required
testdata/srtp-bad.yaml:5: lines[1].srtp: "required" needs sip.tls.listen: sdes keys over plain sip can be read by anyone on the path (set srtp_allow_plain_sip to allow)`},
	})
}

func TestLineSRTP(t *testing.T) {
	c, err := Load("testdata/srtp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		srtp  string
		plain bool
	}{{"", false}, {SRTPOptional, true}}
	for i, tt := range tests {
		if l := c.Lines[i]; l.SRTP != tt.srtp || l.SRTPAllowPlainSIP != tt.plain {
			t.Errorf("lines[%d]: srtp %q allow plain %v, want %q %v", i, l.SRTP, l.SRTPAllowPlainSIP, tt.srtp, tt.plain)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// tortureDir holds the RFC 4475 messages, byte for byte, with index.tsv (see its README).
const tortureDir = "../../sip/gate/testdata/rfc4475"

// tortureExpect is what the hotline must answer to each RFC 4475 message. An empty list means
// the message is dropped: no response at all (responses, and requests with no Via to answer).
// Every message is also followed by an OPTIONS that must get 200.
var tortureExpect = map[string][]int{
	// 3.1.1 valid: processed. The hotline serves one number, so INVITEs to other users are 404.
	"wsinv":      {404},      // processed like any INVITE, never 400
	"intmeth":    {501},      // unknown method
	"esc01":      {404},      // processed (user "sips:user@example.com" is no line of ours)
	"escnull":    {405, 401}, // REGISTER: 405 until the registrar lands, then its challenge
	"esc02":      {501},      // RE%47IST%45R is not REGISTER
	"lwsdisp":    {200},
	"longreq":    {404},      // the response is larger than the MTU and still sent
	"dblreq":     {405, 401}, // the REGISTER only; the trailing INVITE is never processed
	"semiuri":    {200},
	"transports": {200},
	"mpart01":    {405, 501},
	"unreason":   {}, // a response matching nothing: absorbed
	"noreason":   {},
	// 3.1.2 invalid.
	"badinv01":   {400},
	"clerr":      {400},
	"ncl":        {400},
	"scalar02":   {400},
	"scalarlg":   {}, // a response: dropped
	"quotbal":    {400},
	"ltgtruri":   {400},
	"lwsruri":    {400},
	"lwsstart":   {400},
	"trws":       {400},
	"escruri":    {404, 400}, // escaped headers ignored (never made real); no such user
	"baddate":    {404, 400}, // the Date is irrelevant to us
	"regbadct":   {400, 405, 401},
	"badaspec":   {400},
	"baddn":      {400},
	"badvers":    {505},
	"mismatch01": {400},
	"mismatch02": {501},
	"bigcode":    {}, // a response: dropped
	// 3.2.1 transaction.
	"badbranch": {200, 400},
	// 3.3 semantic.
	"insuf":    {400},
	"unkscm":   {416},
	"novelsc":  {416},
	"unksm2":   {400, 405},
	"bext01":   {420},
	"invut":    {415},
	"regaut01": {401, 405},
	"multi01":  {400},
	"mcl01":    {400},
	"bcast":    {}, // a response: dropped, nothing sent toward the broadcast address
	"zeromf":   {200},
	"cparam01": {405, 401, 200},
	"cparam02": {405, 401, 200},
	"regescrt": {405, 401, 200},
	"sdp01":    {406, 400},
	// 3.4.1 compat.
	"inv2543": {404}, // accepted: no branch, no From tag, no Content-Length
	// Unreferenced.
	"test": {}, // no SIP version and no Via: nowhere to answer
}

// tortureSecond are messages that share branch, sent-by and CSeq method with an earlier one
// (README: cparam01/cparam02, escnull/regescrt, baddate/mismatch01, novelsc/unkscm,
// bcast/unreason, bigcode/noreason). Sent to a second server, so that neither is taken for a
// retransmission of the other.
var tortureSecond = map[string]bool{
	"cparam02": true, "regescrt": true, "mismatch01": true, "unkscm": true, "unreason": true, "noreason": true,
}

// tortureException lists messages the hotline cannot handle as RFC 4475 expects, and why.
// It is empty: every message is handled. A message listed here is still sent (the server must
// survive it and answer the OPTIONS after it) but its response is not checked.
var tortureException = map[string]string{}

type tortureCase struct {
	name, file, section, class, expected string
}

func loadTortureIndex(t *testing.T) []tortureCase {
	t.Helper()
	f, err := os.Open(filepath.Join(tortureDir, "index.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cs []tortureCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) < 9 || fs[0] == "name" {
			continue
		}
		cs = append(cs, tortureCase{name: fs[0], file: fs[1], section: fs[4], class: fs[6], expected: fs[8]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestRFC4475Torture sends each RFC 4475 torture message as one UDP datagram to the real
// server, checks the answer against what the RFC expects (tortureExpect), then checks that the
// server answers OPTIONS with 200. Responses must come back to the packet's source: the
// messages' Via headers name other hosts and ports.
func TestRFC4475Torture(t *testing.T) {
	t.Parallel()
	cases := loadTortureIndex(t)
	if len(cases) != 50 {
		t.Fatalf("index has %d messages, want 50", len(cases))
	}
	first := startServer(t, testConfig)
	second := startServer(t, testConfig)
	handled := 0
	for _, tc := range cases {
		want, ok := tortureExpect[tc.name]
		if !ok {
			t.Errorf("%s: no expectation", tc.name)
			continue
		}
		data, err := os.ReadFile(filepath.Join(tortureDir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		ts := first
		if tortureSecond[tc.name] {
			ts = second
		}
		got := sendTorture(t, ts.addrs.SIPUDP, data, len(want) > 0)
		_, exception := tortureException[tc.name]
		switch {
		case len(want) == 0 && len(got) == 0, len(want) > 0 && len(got) == 1 && slices.Contains(want, got[0]):
			handled++
		case exception:
		default:
			t.Errorf("%s (%s %s, RFC: %s): got responses %v, want one of %v", tc.name, tc.section, tc.class, tc.expected, got, want)
		}
	}
	t.Logf("RFC 4475: %d/50 handled as the RFC expects; known exceptions: %v", handled, tortureException)
}

// sendTorture sends data from a fresh socket, then an OPTIONS from the same socket, and returns
// the status codes of the final responses to data. It returns once the OPTIONS got its 200 and,
// if answered is set, data got a final response (handlers answer on their own goroutines, so
// that may come second). The server reads its socket in order and answers or drops a rejected
// message before it reads the OPTIONS, so a message to be dropped has had every chance.
func sendTorture(t *testing.T, server string, data []byte, answered bool) []int {
	t.Helper()
	saddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDP(data, saddr); err != nil {
		t.Fatal(err)
	}
	optID := randHex(8) + "@torture"
	port := c.LocalAddr().(*net.UDPAddr).Port
	opt := fmt.Sprintf("OPTIONS sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\n"+
		"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", hotlineNumber, server, port, randHex(6), randHex(4), hotlineNumber, server, optID)
	if _, err := c.WriteToUDP([]byte(opt), saddr); err != nil {
		t.Fatal(err)
	}
	var got []int
	alive := false
	buf := make([]byte, 65535)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for !alive || (answered && len(got) == 0) {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			if !alive {
				t.Fatalf("no 200 to OPTIONS after the message (got %v): %v", got, err)
			}
			return got
		}
		status, id, ok := statusAndCallID(buf[:n])
		if !ok {
			t.Fatalf("server sent something that is not a response: %.120q", buf[:n])
		}
		switch {
		case id == optID:
			if status != 200 {
				t.Fatalf("OPTIONS after the message: %d, want 200", status)
			}
			alive = true
		case status >= 200:
			got = append(got, status)
		}
	}
	return got
}

// TestRFC4475OverTCP sends the framing torture messages over TCP: a negative, conflicting or
// missing-data Content-Length leaves no way to find the next message, so the server answers
// 400 where it can and closes the connection (RFC 4475 3.1.2.2, 3.1.2.3, 3.3.9). A valid
// message over TCP is answered on the same connection, which stays open.
func TestRFC4475OverTCP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig)
	for _, tc := range []struct {
		name   string
		status int  // 0: no response
		closed bool // the server closes the connection after it
	}{
		{"ncl", 400, true},
		{"mcl01", 400, true},
		{"lwsdisp", 200, false},
		{"longreq", 404, false},
		{"badvers", 505, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(tortureDir, tc.name+".dat"))
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", ts.addrs.SIPTCP)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(data); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(conn)
			res := readTCPResponse(t, r)
			if res == nil || res.StatusCode != tc.status {
				t.Fatalf("got %v, want %d", res, tc.status)
			}
			if tc.closed {
				if _, err := r.ReadByte(); err != io.EOF {
					t.Fatalf("connection not closed after the framing error: %v", err)
				}
				return
			}
			// Still open: the next message on it is answered.
			local := conn.LocalAddr().String()
			opt := fmt.Sprintf("OPTIONS sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"+
				"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
				hotlineNumber, ts.addrs.SIPTCP, local, randHex(6), hotlineNumber, ts.addrs.SIPTCP, randHex(8))
			if _, err := conn.Write([]byte(opt)); err != nil {
				t.Fatal(err)
			}
			if res := readTCPResponse(t, r); res == nil || res.StatusCode != 200 {
				t.Fatalf("OPTIONS on the same connection: %v, want 200", res)
			}
		})
	}
}

// readTCPResponse reads one response (headers and Content-Length body) from r, or nil at EOF.
func readTCPResponse(t *testing.T, r *bufio.Reader) *sipmsg.Response {
	t.Helper()
	var head bytes.Buffer
	cl := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if head.Len() == 0 {
				return nil
			}
			t.Fatalf("reading response: %v", err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "content-length") {
			fmt.Sscan(strings.TrimSpace(v), &cl)
		}
	}
	body := make([]byte, cl)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	m, err := sipmsg.ParseMessage(append(head.Bytes(), body...))
	if err != nil {
		t.Fatalf("bad response: %v", err)
	}
	res, ok := m.(*sipmsg.Response)
	if !ok {
		t.Fatal("not a response")
	}
	return res
}

// statusAndCallID reads the status code and Call-ID of a response without a full parse: a
// stateless rejection copies the request's Via, which may be the malformed thing it rejects.
func statusAndCallID(b []byte) (status int, callID string, ok bool) {
	lines := strings.Split(string(b), "\r\n")
	f := strings.Fields(lines[0])
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0, "", false
	}
	if _, err := fmt.Sscan(f[1], &status); err != nil {
		return 0, "", false
	}
	for _, l := range lines[1:] {
		if k, v, found := strings.Cut(l, ":"); found && (strings.EqualFold(strings.TrimSpace(k), "call-id") || strings.EqualFold(strings.TrimSpace(k), "i")) {
			return status, strings.TrimSpace(v), true
		}
	}
	return status, "", true
}

package callflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// midcallYAML turns the advocate's mid-call features on: ** then 1 34 # for the Spanish
// interpreter (access code 12#), 9 for 911 (shown the caller's number), 7 for a partner
// (shown the hotline's), 0 to drop the last party.
const midcallYAML = `
targets:
  - {name: partner, uri: "sip:partner@partner.test"}
  - {name: interp_es, uri: "sip:es@lang.test"}
  - {name: psap, uri: "sip:911@psap.test"}
midcall:
  prefix: "**"
  interpreters: [{code: "34", language: es, target: interp_es, access_code: "12#"}]
  parties:
    - {key: "9", kind: emergency, target: psap, present_caller: true}
    - {key: "7", kind: partner, target: partner}
`

// fakeMixer makes fakeConferences and keeps the last.
type fakeMixer struct {
	mu    sync.Mutex
	confs []*fakeConference
}

func (m *fakeMixer) new() Conference {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &fakeConference{}
	m.confs = append(m.confs, c)
	return c
}

// members returns who is in the newest conference still open, by leg name.
func (m *fakeMixer) members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.confs) - 1; i >= 0; i-- {
		c := m.confs[i]
		c.mu.Lock()
		closed, names := c.closed, []string{}
		for _, l := range c.legs {
			names = append(names, l.name)
		}
		c.mu.Unlock()
		if !closed {
			return names
		}
	}
	return nil
}

type fakeConference struct {
	mu     sync.Mutex
	legs   []*fakeLeg
	modes  map[*fakeLeg]string
	closed bool
}

func (c *fakeConference) Join(l Leg, mode string, to Leg) error {
	fl := l.(*fakeLeg)
	if fl.ended() {
		return fmt.Errorf("join %s: leg ended", fl.name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.legs = append(c.legs, fl)
	c.setModeLocked(fl, mode, to)
	return nil
}

func (c *fakeConference) SetMode(l Leg, mode string, to Leg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.legs, l.(*fakeLeg)) {
		return fmt.Errorf("not in the conference")
	}
	c.setModeLocked(l.(*fakeLeg), mode, to)
	return nil
}

func (c *fakeConference) setModeLocked(l *fakeLeg, mode string, to Leg) {
	if c.modes == nil {
		c.modes = map[*fakeLeg]string{}
	}
	if to != nil {
		mode += ">" + to.(*fakeLeg).name
	}
	c.modes[l] = mode
}

// modeOf returns how leg name takes part in the newest open conference.
func (m *fakeMixer) modeOf(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.confs) - 1; i >= 0; i-- {
		c := m.confs[i]
		c.mu.Lock()
		closed := c.closed
		for l, mode := range c.modes {
			if l.name == name && slices.Contains(c.legs, l) && !closed {
				c.mu.Unlock()
				return mode
			}
		}
		c.mu.Unlock()
	}
	return ""
}

func (c *fakeConference) Leave(l Leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.legs = slices.DeleteFunc(c.legs, func(o *fakeLeg) bool { return o == l })
}

func (c *fakeConference) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.legs, c.closed = nil, true
}

// fakeConfMetrics counts as metrics.Conferences does.
type fakeConfMetrics struct {
	mu                  sync.Mutex
	active, participant int
	joins               map[string]int // "kind/result"
}

func (m *fakeConfMetrics) Conferences(d int) { m.mu.Lock(); m.active += d; m.mu.Unlock() }
func (m *fakeConfMetrics) Participants(d int) {
	m.mu.Lock()
	m.participant += d
	m.mu.Unlock()
}
func (m *fakeConfMetrics) Joined(kind, result string) {
	m.mu.Lock()
	m.joins[kind+"/"+result]++
	m.mu.Unlock()
}
func (m *fakeConfMetrics) get() (int, int, map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active, m.participant, maps(m.joins)
}

func maps(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// partyRecorder begins records that also keep the parties (PartyRecord).
type partyRecorder struct {
	*fakeRecorder
	mu      sync.Mutex
	parties []string
}

type partyRecord struct {
	*fakeRecord
	r *partyRecorder
}

func (r *partyRecorder) Begin(callID, line, caller string, start time.Time) Record {
	return partyRecord{r.fakeRecorder.Begin(callID, line, caller, start).(*fakeRecord), r}
}

func (p partyRecord) Party(kind, name, presented, result string, t time.Time) {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	p.r.parties = append(p.r.parties, fmt.Sprintf("%s %s %s %s +%v", kind, name, presented, result, t.Sub(t0)))
}

func (r *partyRecorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.parties)
}

// destDialer records every Dest dialled.
type destDialer struct {
	*fakeNet
	mu    sync.Mutex
	dests []Dest
}

func (d *destDialer) Dial(ctx context.Context, to Dest) (Leg, error) {
	d.mu.Lock()
	d.dests = append(d.dests, to)
	d.mu.Unlock()
	return d.fakeNet.Dial(ctx, to)
}

func (d *destDialer) last() Dest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dests[len(d.dests)-1]
}

type midHarness struct {
	*harness
	mixer   *fakeMixer
	metrics *fakeConfMetrics
	parties *partyRecorder
	dialer  *destDialer
	c       *testCall
	adv     *fakeLeg
}

// newMidHarness connects a caller to ana, with mid-call features on.
func newMidHarness(t *testing.T) *midHarness {
	t.Helper()
	return newMidHarnessWith(t, midcallYAML, advocatesYAML(t, "ana:en"))
}

// newMidHarnessWith is newMidHarness with another midcall section and advocates (ana
// first, who takes the call).
func newMidHarnessWith(t *testing.T, midcall, advocates string) *midHarness {
	t.Helper()
	return newMidHarnessOn(t, testYAML, midcall, advocates)
}

// newMidHarnessOn is newMidHarnessWith on base instead of testYAML.
func newMidHarnessOn(t *testing.T, base, midcall, advocates string) *midHarness {
	t.Helper()
	h := &midHarness{harness: newHarness(t, strings.Replace(base, "targets:\n  - {name: partner, uri: \"sip:partner@partner.test\"}\n", "", 1)+midcall+advocates),
		mixer: &fakeMixer{}, metrics: &fakeConfMetrics{joins: map[string]int{}}}
	h.parties = &partyRecorder{fakeRecorder: h.recs}
	h.dialer = &destDialer{fakeNet: h.net}
	h.flow.mixer, h.flow.conferences, h.flow.records, h.flow.dialer = h.mixer.new, h.metrics, h.parties, h.dialer
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	h.c = h.call(helpNow())
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "the bridge", func() bool { return h.c.leg.isBridged() })
	h.adv = h.net.leg("sip:ana@phone")
	return h
}

// keys sends the advocate's key presses.
func (h *midHarness) keys(s string) {
	for _, d := range s {
		select {
		case h.adv.digits <- d:
		case <-time.After(3 * time.Second):
			h.t.Fatalf("digit %q not taken", d)
		}
	}
	settle()
}

func (h *midHarness) inConference(want ...string) func() bool {
	return func() bool { return slices.Equal(h.mixer.members(), want) }
}

// callerHeardNothing checks that no prompt was played to the caller after the menus.
func (h *midHarness) callerHeardNothing() {
	h.t.Helper()
	for _, p := range h.c.leg.plays() {
		if strings.HasPrefix(p, "party_") || p == "dtmf" {
			h.t.Errorf("the caller heard %q", p)
		}
	}
}

// TestMidCallInterpreter: the advocate keys ** 1 34 #; caller and advocate go on talking
// in a conference while the interpreter line rings; it answers, gets the access code
// (and only it does), joins, and the three talk; ** 0 drops it, and caller and advocate
// are bridged again.
func TestMidCallInterpreter(t *testing.T) {
	h := newMidHarness(t)
	h.net.set("sip:es@lang.test", phone{answerAfter: 3 * time.Second})
	h.keys("**134#")
	eventually(t, "caller and advocate in a conference", h.inConference("caller", "sip:ana@phone"))
	eventually(t, "the interpreter rung", func() bool { return h.net.isRinging("sip:es@lang.test") })
	if d := h.dialer.last(); d.URI != "sip:es@lang.test" || d.FromUser != "" || d.Line != "main" {
		t.Errorf("dialled %+v, want the interpreter, presenting the hotline on line main", d)
	}
	h.clk.Advance(3 * time.Second)
	eventually(t, "the interpreter answered", func() bool { return h.net.leg("sip:es@lang.test") != nil })
	in := h.net.leg("sip:es@lang.test")
	eventually(t, "the access code sent", func() bool { return in.hasPlayed("dtmf") })
	h.clk.Advance(time.Second) // the code's tones play
	eventually(t, "three in the conference", h.inConference("caller", "sip:ana@phone", "sip:es@lang.test"))
	if a, p, j := h.metrics.get(); a != 1 || p != 3 || j["interpreter/answered"] != 1 {
		t.Errorf("metrics active %d participants %d joins %v", a, p, j)
	}

	h.keys("**0")
	eventually(t, "the interpreter hung up", in.ended)
	eventually(t, "caller and advocate bridged again", h.c.leg.isBridged)
	if a, p, _ := h.metrics.get(); a != 0 || p != 0 {
		t.Errorf("after the drop: active %d participants %d, want 0 0", a, p)
	}
	h.callerHeardNothing()

	h.c.leg.remoteHangup()
	eventually(t, "the advocate's leg hung up", h.adv.ended)
	h.record(h.c)
	want := []string{"interpreter es hotline answered +4.6s", "interpreter es hotline dropped +5s"}
	if got := h.parties.get(); !slices.Equal(got, want) {
		t.Errorf("parties recorded %q, want %q", got, want)
	}
}

// TestMidCallPartyFails: a busy or unanswered line, or a code not set up, is told to the
// advocate alone; the caller hears nothing of it and stays with the advocate, who are
// bridged again after the message.
func TestMidCallPartyFails(t *testing.T) {
	for _, tc := range []struct {
		name, keys, uri string
		phone           phone
		advance         time.Duration
		prompt, join    string
	}{
		{"busy", "**134#", "sip:es@lang.test", phone{fail: ErrBusy}, 0, "party_busy", "interpreter/busy"},
		{"no answer", "**9", "sip:911@psap.test", phone{}, 30 * time.Second, "party_no_answer", "emergency/no_answer"},
		{"down", "**7", "sip:partner@partner.test", phone{fail: fmt.Errorf("503: %w", errTest), failAfter: time.Second}, time.Second, "party_failed", "partner/failed"},
		{"unknown interpreter", "**199#", "", phone{}, 0, "party_unknown", "interpreter/unknown"},
		{"unknown key", "**5", "", phone{}, 0, "party_unknown", "other/unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newMidHarness(t)
			if tc.uri != "" {
				h.net.set(tc.uri, tc.phone)
			}
			h.keys(tc.keys)
			if tc.uri != "" {
				eventually(t, "dialled", func() bool { return h.net.dialled(tc.uri) == 1 })
			}
			h.clk.Advance(tc.advance)
			eventually(t, "the advocate told "+tc.prompt, func() bool { return h.adv.hasPlayed(tc.prompt) })
			if got := h.mixer.members(); !slices.Equal(got, []string{"caller", "sip:ana@phone"}) {
				t.Errorf("while the advocate is told: conference %q, want caller and advocate", got)
			}
			h.clk.Advance(10 * time.Second) // the message ends
			eventually(t, "caller and advocate bridged again", h.c.leg.isBridged)
			h.callerHeardNothing()
			if h.c.leg.ended() || h.adv.ended() {
				t.Error("a failed party ended the call")
			}
			if a, p, j := h.metrics.get(); a != 0 || p != 0 || j[tc.join] != 1 {
				t.Errorf("metrics active %d participants %d joins %v, want %s", a, p, j, tc.join)
			}
			h.c.leg.remoteHangup()
			h.record(h.c)
		})
	}
}

var errTest = fmt.Errorf("test failure")

// TestMidCallEmergencyAndPartner: 911 is shown the caller's number, the partner the
// hotline's, and the record says which; a party that hangs up leaves the others talking;
// the caller hanging up ends every leg.
func TestMidCallEmergencyAndPartner(t *testing.T) {
	h := newMidHarness(t)
	h.net.set("sip:911@psap.test", phone{answerAfter: time.Second})
	h.net.set("sip:partner@partner.test", phone{answerAfter: time.Second})
	h.keys("**9")
	eventually(t, "911 rung", func() bool { return h.net.isRinging("sip:911@psap.test") })
	if d := h.dialer.last(); d.FromUser != "+15550001" {
		t.Errorf("911 was shown %q, want the caller's number", d.FromUser)
	}
	h.clk.Advance(time.Second)
	eventually(t, "911 joined", h.inConference("caller", "sip:ana@phone", "sip:911@psap.test"))
	h.keys("**7")
	eventually(t, "the partner rung", func() bool { return h.net.isRinging("sip:partner@partner.test") })
	if d := h.dialer.last(); d.FromUser != "" {
		t.Errorf("the partner was shown %q, want the hotline's", d.FromUser)
	}
	h.clk.Advance(time.Second)
	eventually(t, "four in the conference", h.inConference("caller", "sip:ana@phone", "sip:911@psap.test", "sip:partner@partner.test"))

	h.net.leg("sip:911@psap.test").remoteHangup()
	eventually(t, "911 left", h.inConference("caller", "sip:ana@phone", "sip:partner@partner.test"))
	if h.c.leg.ended() || h.adv.ended() {
		t.Fatal("a party hanging up ended the call")
	}
	partner := h.net.leg("sip:partner@partner.test")
	h.c.leg.remoteHangup()
	eventually(t, "every leg ended", func() bool { return h.adv.ended() && partner.ended() })
	h.record(h.c)
	if a, p, j := h.metrics.get(); a != 0 || p != 0 || j["emergency/answered"] != 1 || j["partner/answered"] != 1 {
		t.Errorf("metrics active %d participants %d joins %v", a, p, j)
	}
	want := []string{"emergency psap caller answered +2s", "partner partner hotline answered +3s"}
	if got := h.parties.get(); !slices.Equal(got, want) {
		t.Errorf("parties recorded %q, want %q", got, want)
	}
	h.callerHeardNothing()
}

// TestMidCallOffKeepsRelay: without a prefix the advocate's keys are nobody's business
// here and the call stays on the plain relay.
func TestMidCallOffKeepsRelay(t *testing.T) {
	h := newHarness(t, testYAML+advocatesYAML(t, "ana:en"))
	mixer := &fakeMixer{}
	h.flow.mixer = mixer.new
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	c := h.call(helpNow())
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "the bridge", c.leg.isBridged)
	c.leg.remoteHangup()
	h.record(c)
	if len(mixer.confs) != 0 {
		t.Errorf("%d conferences made with mid-call features off", len(mixer.confs))
	}
}

func TestCallingNumber(t *testing.T) {
	for in, want := range map[string]string{
		"sip:+15551234567@carrier.example": "+15551234567",
		"tel:+442071234567":                "+442071234567",
		"sips:5551234;user=phone":          "5551234",
		"sip:anonymous@anonymous.invalid":  "",
		"sip:alice@example.org":            "",
		"":                                 "",
		"sip:12@x":                         "",
		"sip:1+2345@x":                     "",
	} {
		if got := callingNumber(in); got != want {
			t.Errorf("callingNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSupervisor: a supervisor dials *14 and ana's extension: they join her call listening
// (heard by no one), 2 whispers to ana alone, 3 barges in; each change is recorded; when
// the supervisor hangs up, caller and advocate are bridged again. An advocate who is not a
// supervisor, or an extension nobody has, gets the unknown-feature answer.
func TestSupervisor(t *testing.T) {
	advocates := strings.Replace(advocatesYAML(t, "ana:en", "sue:fr"), "  - id: ana\n", "  - id: ana\n    extension: \"2041\"\n", 1)
	advocates = strings.Replace(advocates, "  - id: sue\n", "  - id: sue\n    role: supervisor\n", 1)
	h := newMidHarnessWith(t, midcallYAML+"  supervise_code: \"*14\"\n", advocates)
	ctx := context.Background()
	for _, bad := range []struct{ id, code string }{{"ana", "*142041"}, {"sue", "*149999"}, {"sue", "*14"}} {
		if err := h.flow.Feature(ctx, bad.id, bad.code); !errors.Is(err, ErrUnknownFeature) {
			t.Errorf("Feature(%s, %s) = %v, want ErrUnknownFeature", bad.id, bad.code, err)
		}
	}
	if err := h.flow.Feature(ctx, "sue", "*142041"); err != nil {
		t.Fatalf("Feature(sue, *142041) = %v", err)
	}
	sue := newLeg(h.clk, "sue")
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.flow.FeatureCall(ctx, sue, "sue", "*142041")
	}()
	eventually(t, "sue in the call", h.inConference("caller", "sip:ana@phone", "sue"))
	if got := h.mixer.modeOf("sue"); got != ModeListen {
		t.Errorf("sue joined as %q, want listen", got)
	}
	sue.digits <- '2'
	eventually(t, "sue whispering to ana", func() bool { return h.mixer.modeOf("sue") == "whisper>sip:ana@phone" })
	sue.digits <- '3'
	eventually(t, "sue barged in", func() bool { return h.mixer.modeOf("sue") == ModeNormal })
	sue.remoteHangup()
	<-done
	eventually(t, "caller and advocate bridged again", h.c.leg.isBridged)
	if a, p, j := h.metrics.get(); a != 0 || p != 0 || j["supervisor/answered"] != 1 {
		t.Errorf("metrics active %d participants %d joins %v", a, p, j)
	}

	// Listening again, then the caller hangs up: the supervisor's leg ends too.
	sue2 := newLeg(h.clk, "sue")
	go h.flow.FeatureCall(ctx, sue2, "sue", "*142041")
	eventually(t, "sue in the call again", h.inConference("caller", "sip:ana@phone", "sue"))
	h.c.leg.remoteHangup()
	eventually(t, "the supervisor's leg hung up", sue2.ended)
	h.record(h.c)
	want := []string{"supervisor sue  listen +1s", "supervisor sue  whisper +1s", "supervisor sue  normal +1s", "supervisor sue  left +1s", "supervisor sue  listen +1s"}
	if got := h.parties.get(); !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	if err := h.flow.Feature(ctx, "sue", "*142041"); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("Feature after the call ended = %v, want ErrUnknownFeature", err)
	}
}

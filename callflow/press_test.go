package callflow

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPress: a code pressed from the console does what the same keys on the phone do
// (here: add the interpreter, then drop it), and digits keyed on the phone before it do
// not mix with it; with no call, or no features, Press says so.
func TestPress(t *testing.T) {
	h := newMidHarness(t)
	ctx := context.Background()
	h.net.set("sip:es@lang.test", phone{answerAfter: time.Second})
	h.keys("*") // a stray key on the phone
	if err := h.flow.Press(ctx, "ana", "**134#"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the interpreter rung", func() bool { return h.net.isRinging("sip:es@lang.test") })
	h.clk.Advance(time.Second)
	eventually(t, "the interpreter answered", func() bool { return h.net.leg("sip:es@lang.test") != nil })
	in := h.net.leg("sip:es@lang.test")
	h.clk.Advance(time.Second) // the access code plays
	eventually(t, "three in the conference", h.inConference("caller", "sip:ana@phone", "sip:es@lang.test"))
	if err := h.flow.Press(ctx, "ana", "**0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the interpreter dropped", in.ended)
	eventually(t, "caller and advocate bridged again", h.c.leg.isBridged)

	if err := h.flow.Press(ctx, "nobody", "**0"); !errors.Is(err, ErrNoCall) {
		t.Errorf("press with no call: %v, want ErrNoCall", err)
	}
	h.c.leg.remoteHangup()
	h.record(h.c)
	eventually(t, "the call over", func() bool { return errors.Is(h.flow.Press(ctx, "ana", "**0"), ErrNoCall) })

	// Without mid-call features the call has none to press.
	h2 := newHarness(t, testYAML+advocatesYAML(t, "ana:en"))
	h2.flow.mixer = (&fakeMixer{}).new
	h2.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	c := h2.call(helpNow())
	eventually(t, "ana rung", func() bool { return h2.net.isRinging("sip:ana@phone") })
	h2.clk.Advance(time.Second)
	eventually(t, "the bridge", c.leg.isBridged)
	if err := h2.flow.Press(ctx, "ana", "**0"); !errors.Is(err, ErrNoFeatures) {
		t.Errorf("press without features: %v, want ErrNoFeatures", err)
	}
	c.leg.remoteHangup()
	h2.record(c)
}

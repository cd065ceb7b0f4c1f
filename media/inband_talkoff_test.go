package media_test

import (
	"testing"
	"time"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/prompts"
)

// TestInbandTalkOff is the talk-off figure: every built-in prompt (espeak-ng speech, en
// and es, prompts/default) and the hold music, each through PCMU and PCMA, must not turn
// into a single key press. It logs the amount of audio checked:
//
//	go test ./media -run TalkOff -v
func TestInbandTalkOff(t *testing.T) {
	cat, err := prompts.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	type source struct {
		name string
		p    *prompts.Prompt
	}
	var speech []source
	for _, lang := range cat.Languages() {
		for _, name := range cat.Names(lang) {
			p, _ := cat.Get(lang, name)
			speech = append(speech, source{lang + "/" + name, p})
		}
	}
	for _, set := range []struct {
		what    string
		sources []source
		repeat  int
	}{
		{"speech (espeak-ng)", speech, 1},
		{"hold music", []source{{"hold", prompts.Hold()}}, 20},
	} {
		var dur time.Duration
		hits := 0
		for _, pt := range []uint8{0, 8} {
			for _, s := range set.sources {
				var d media.InbandDetector
				audio := s.p.Payload(pt)
				for range set.repeat {
					for i := 0; i+160 <= len(audio); i += 160 {
						if k, ok := d.FeedPayload(pt, audio[i:i+160]); ok {
							hits++
							t.Errorf("%s (payload type %d): talk-off: detected %q at %v", s.name, pt, k, time.Duration(i/8)*time.Millisecond)
						}
					}
					dur += s.p.Duration()
				}
			}
		}
		t.Logf("%s: %v of audio (PCMU and PCMA, %d sources), %d false key presses", set.what, dur.Round(time.Second), len(set.sources), hits)
	}
}

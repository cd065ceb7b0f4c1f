package media_test

import (
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/internal/testtool"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/media/g711"
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

// TestInbandTalkOffLongSpeech is the larger talk-off figure: the README read aloud by
// espeak-ng in an English voice through PCMU and a Spanish one through PCMA (over three
// hours of speech). It needs espeak-ng and sox (prompts/render.sh's tools) and is skipped
// without them, or with -short:
//
//	go test ./media -run TalkOffLong -v
func TestInbandTalkOffLongSpeech(t *testing.T) {
	if testing.Short() {
		t.Skip("renders an hour of speech")
	}
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	testtool.Heavy(t) // a minute of espeak-ng and sox on every core
	text, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	clean := strings.Map(func(r rune) rune {
		if strings.ContainsRune("`|*#<>[]{}", r) {
			return ' '
		}
		return r
	}, string(text))
	var total time.Duration
	hits := 0
	for _, v := range []struct {
		voice string
		pt    uint8
	}{{"en-us", 0}, {"es-419", 8}} {
		voice, pt := v.voice, v.pt
		cmd := exec.Command("sh", "-c", "espeak-ng -v "+voice+" --stdout | sox -t wav - -r 8000 -b 16 -c 1 -e signed -t raw - 2>/dev/null")
		cmd.Stdin = strings.NewReader(clean)
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("render %s: %v", voice, err)
		}
		pcm := make([]int16, len(raw)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		var payload []byte
		if pt == 8 {
			payload = g711.AppendAlaw(nil, pcm)
		} else {
			payload = g711.AppendUlaw(nil, pcm)
		}
		var d media.InbandDetector
		for i := 0; i+160 <= len(payload); i += 160 {
			if k, ok := d.FeedPayload(pt, payload[i:i+160]); ok {
				hits++
				t.Logf("%s (payload type %d): talk-off: %q at %v", voice, pt, k, time.Duration(i/8)*time.Millisecond)
			}
		}
		total += time.Duration(len(pcm)/8) * time.Millisecond
	}
	t.Logf("speech: %v (README read by espeak-ng: en-us through PCMU, es-419 through PCMA), %d false key presses", total.Round(time.Minute), hits)
	if perHour := float64(hits) / total.Hours(); perHour > 1 {
		t.Errorf("%.1f false key presses per hour of speech, want at most 1", perHour)
	}
}

package config

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestMidCallErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"midcall-bad.yaml", `testdata/midcall-bad.yaml:2: midcall.prefix: "*7x" must be 1 to 4 of 0-9 * #
testdata/midcall-bad.yaml:3: midcall.digit_timeout: must be 1s..10s, got 0s
testdata/midcall-bad.yaml:4: midcall.ring_timeout: must be 5s..120s, got 10m0s
testdata/midcall-bad.yaml:5: midcall.interpreter_key: "12" must be one digit 0-9
testdata/midcall-bad.yaml:8: midcall.interpreters[0].target: undefined target "interp_es"
testdata/midcall-bad.yaml:8: midcall.interpreters[0].access_code: "12a" must be at most 32 of 0-9 * # ,
testdata/midcall-bad.yaml:9: midcall.interpreters[1].code: code "34" is already interpreters[0]'s
testdata/midcall-bad.yaml:9: midcall.interpreters[1].language: "Spanish" is not a language tag such as es or zh-yue
testdata/midcall-bad.yaml:10: midcall.supervise_code: "*1" clashes with the state code *11
testdata/midcall-bad.yaml:12: midcall.parties[0].kind: "police" is not one of emergency, partner
testdata/midcall-bad.yaml:12: midcall.parties[0].target: undefined target "psap"
testdata/midcall-bad.yaml:13: midcall.parties[1].key: key "9" is already midcall.parties[0].key`},
	})
}

func TestMidCallGood(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
lines: [{number: "1"}]
targets: [{name: interp_es, uri: "sip:es@lang.example.org"}, {name: psap, uri: "sip:911@psap.example.org"}]
midcall:
  prefix: "**"
  interpreters: [{code: "34", language: es, target: interp_es, access_code: "1234#,2"}]
  parties: [{key: "9", kind: emergency, target: psap, present_caller: true}]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := MidCall{Prefix: "**", DigitTimeout: 3 * time.Second, RingTimeout: 30 * time.Second, InterpreterKey: "1", DropKey: "0",
		Interpreters: []Interpreter{{Code: "34", Language: "es", Target: "interp_es", AccessCode: "1234#,2"}},
		Parties:      []Party{{Key: "9", Kind: PartyEmergency, Target: "psap", PresentCaller: true}}}
	if !reflect.DeepEqual(c.MidCall, want) || !c.MidCall.Enabled() {
		t.Errorf("got %+v\nwant %+v", c.MidCall, want)
	}
}

func TestSuperviseConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{`{lines: [{number: "1"}], midcall: {supervise_code: "*14"}}`, ""},
		{`{lines: [{number: "1"}], midcall: {supervise_code: "*12"}}`, `t.yaml:1: midcall.supervise_code: "*12" clashes with the state code *12`},
		{`{lines: [{number: "1"}], midcall: {supervise_code: "14"}}`, `t.yaml:1: midcall.supervise_code: "14" must be * and 1 to 3 digits`},
	} {
		_, err := Parse("t.yaml", []byte(tc.yaml))
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

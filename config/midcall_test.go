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
		Interpreters:   []Interpreter{{Code: "34", Language: "es", Target: "interp_es", AccessCode: "1234#,2"}},
		Parties:        []Party{{Key: "9", Kind: PartyEmergency, Target: "psap", PresentCaller: true}},
		TransferQueues: []TransferQueue{}, StayWithInterpreterLines: []string{}}
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

// TestTransferConfig: the warm transfer's and the hang-up's keys are checked by file, line
// and field (issue 18).
func TestTransferConfig(t *testing.T) {
	const base = `lines: [{number: "1", name: main}]
queues: [{name: en, languages: [en]}, {name: es, languages: [es]}]
targets: [{name: interp_es, uri: "sip:es@lang.example.org"}]
advocates: [{id: ana, name: Ana, languages: [en], extension: "20", ha1_md5: 0123456789abcdef0123456789abcdef}]
`
	for _, tc := range []struct{ yaml, want string }{
		{`midcall: {prefix: "**", transfer_key: "2", transfer_queues: [{code: "1", queue: en}],
  interpreters: [{code: "34", language: es, target: interp_es, stay_with_caller: true}], stay_with_interpreter_lines: [main]}`, ""},
		{`midcall: {prefix: "**", transfer_key: "0"}`, `t.yaml:5: midcall.transfer_key: key "0" is already midcall.drop_key`},
		{`midcall: {transfer_key: "2"}`, `t.yaml:5: midcall.transfer_key: set, but midcall.prefix is not: no transfer can be made`},
		{`midcall: {prefix: "**", transfer_queues: [{code: "1", queue: en}]}`, `t.yaml:5: midcall.transfer_queues: set, but midcall.transfer_key is not: no transfer can be made`},
		{`midcall: {prefix: "**", transfer_key: "2", transfer_queues: [{code: "1", queue: fr}]}`, `t.yaml:5: midcall.transfer_queues[0].queue: undefined queue "fr"`},
		{`midcall: {prefix: "**", transfer_key: "2", transfer_queues: [{code: "20", queue: en}]}`, `t.yaml:5: midcall.transfer_queues[0].code: code "20" is also advocates[0]'s extension`},
		{`midcall: {prefix: "**", transfer_key: "2", transfer_queues: [{code: "1", queue: en}, {code: "1", queue: en}]}`, `t.yaml:5: midcall.transfer_queues[1].code: code "1" is already transfer_queues[0]'s`},
		{`midcall: {prefix: "**", transfer_key: "2", transfer_queues: [{code: "x", queue: en}]}`, `t.yaml:5: midcall.transfer_queues[0].code: "x" must be 1 to 4 digits`},
		{`midcall: {prefix: "**", interpreters: [{code: "34", language: es, target: interp_es}], stay_with_interpreter_lines: [other]}`, `t.yaml:5: midcall.stay_with_interpreter_lines[0]: undefined line "other"`},
		{`midcall: {prefix: "**", stay_with_interpreter_lines: [main]}`, `t.yaml:5: midcall.stay_with_interpreter_lines: set, but no midcall.interpreters are configured`},
		{`midcall: {interpreters: [{code: "34", language: es, target: interp_es, stay_with_caller: true}]}`, `t.yaml:5: midcall.stay_with_interpreter_lines: staying with an interpreter is set, but midcall.prefix is not: no interpreter can be added`},
	} {
		_, err := Parse("t.yaml", []byte(base+tc.yaml))
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("%s:\n error %v\n want  %q", tc.yaml, err, tc.want)
		}
	}
	c, err := Parse("t.yaml", []byte(base+`midcall: {prefix: "**", interpreters: [{code: "34", language: es, target: interp_es, stay_with_caller: true}, {code: "35", language: es, target: interp_es}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.MidCall.StaysWithInterpreter("main", "34") || c.MidCall.StaysWithInterpreter("main", "35") {
		t.Error("StaysWithInterpreter: want 34 only")
	}
}

package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MidCall configures what an advocate can do from their own phone while talking to a
// caller: keys the caller never hears (the advocate's RFC 4733 digits are not passed to
// the caller while features are on), beginning with Prefix.
//
//	Prefix InterpreterKey <language code> #   add the interpreter for that language
//	Prefix <party key>                        add that party (911, a partner agency)
//	Prefix DropKey                            drop the party added last
//	Prefix TransferKey <code or extension> #  warm transfer to a queue or an advocate
//
// The server dials the party's target (a name from targets), and caller, advocate and
// party talk in a conference; a line that fails is told to the advocate alone, and the
// caller stays with the advocate throughout.
type MidCall struct {
	// Prefix starts a feature code: 1 to 4 of 0-9 * #; "" turns mid-call features off
	// (the default), and the advocate's digits then reach the caller as before.
	Prefix string `yaml:"prefix"`
	// DigitTimeout ends an unfinished code: the digits so far are discarded; 1s..10s,
	// default 3s.
	DigitTimeout time.Duration `yaml:"digit_timeout"`
	// RingTimeout is how long a party's line may ring before the attempt fails; 5s..120s,
	// default 30s.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// InterpreterKey follows the prefix to add an interpreter: one of 0-9; default "1".
	InterpreterKey string `yaml:"interpreter_key"`
	// DropKey follows the prefix to drop the party added last: one of 0-9; default "0".
	DropKey string `yaml:"drop_key"`
	// Interpreters are the interpreter lines by language code.
	Interpreters []Interpreter `yaml:"interpreters"`
	// Parties are the other parties an advocate can add, one key each.
	Parties []Party `yaml:"parties"`
	// SuperviseCode, then an advocate's extension, is what a supervisor (advocates[].
	// role: supervisor) dials to join that advocate's call in progress, listening (heard by no
	// one); on the supervisor's phone 1 then listens, 2 whispers (heard by the advocate
	// alone), 3 barges in (heard by all). "*" and 1 to 3 digits, not one of (nor a prefix
	// of) the state codes *11, *12, *13; "" turns supervision off (the default).
	SuperviseCode string `yaml:"supervise_code"`
	// TransferKey follows the prefix for a warm transfer: then a queue's code (in
	// TransferQueues) or an advocate's extension, then #. One of 0-9, not another key;
	// "" (the default) offers no transfer. There is no cold transfer.
	TransferKey string `yaml:"transfer_key"`
	// TransferQueues are the queues an advocate can transfer to, by code.
	TransferQueues []TransferQueue `yaml:"transfer_queues"`
	// StayWithInterpreterLines are the lines (by name) on which a caller stays with the
	// interpreter alone when the advocate hangs up, instead of going back to the queue
	// (the default and the safe choice: a caller is never left alone with a stranger).
	StayWithInterpreterLines []string `yaml:"stay_with_interpreter_lines"`
}

// TransferQueue is a queue an advocate can transfer a caller to.
type TransferQueue struct {
	// Code is what the advocate keys after the transfer key: 1 to 4 digits, unique, and
	// not an advocate's extension.
	Code string `yaml:"code"`
	// Queue names the queue (in queues).
	Queue string `yaml:"queue"`
}

// Interpreter is the interpreter service's line for one language.
type Interpreter struct {
	// Code is what the advocate keys after the interpreter key: 1 to 4 digits, unique.
	Code string `yaml:"code"`
	// Language is the language's tag (es, fr, zh-yue), for the record and the logs.
	Language string `yaml:"language"`
	// Target names the target (in targets) that the server dials.
	Target string `yaml:"target"`
	// AccessCode is sent as DTMF once the line answers, such as the account and language
	// menu choices of an interpreter service: 0-9 * # and "," for a one-second pause, at
	// most 32; "" sends none.
	AccessCode string `yaml:"access_code"`
	// StayWithCaller lets the caller stay with this interpreter alone when the advocate
	// hangs up (on every line; see MidCall.StayWithInterpreterLines for some lines only).
	// false (the default) sends the caller back to the queue instead.
	StayWithCaller bool `yaml:"stay_with_caller"`
}

// Party is another party an advocate can bring onto a live call.
type Party struct {
	// Key follows the prefix: one of 0-9, unique, not the interpreter or drop key.
	Key string `yaml:"key"`
	// Kind is emergency (911 or the local emergency number) or partner (a partner
	// agency): the label of the record and the metrics.
	Kind string `yaml:"kind"`
	// Target names the target (in targets) that the server dials.
	Target string `yaml:"target"`
	// PresentCaller sends the caller's own number as the calling number (an emergency
	// service may require it); false presents the hotline's. Either way the record says
	// which.
	PresentCaller bool `yaml:"present_caller"`
}

// Party kinds.
const (
	PartyEmergency = "emergency"
	PartyPartner   = "partner"
)

var (
	reFeatureDigits = regexp.MustCompile(`^[0-9*#]{1,4}$`)
	reKey           = regexp.MustCompile(`^[0-9]$`)
	reCode          = regexp.MustCompile(`^[0-9]{1,4}$`)
	reAccessCode    = regexp.MustCompile(`^[0-9*#,]{0,32}$`)
	reSuperviseCode = regexp.MustCompile(`^\*[0-9]{1,3}$`)
	reExtension     = regexp.MustCompile(`^[0-9]{2,6}$`)
)

// defaultMidCall are the midcall section's defaults: off.
func defaultMidCall() MidCall {
	return MidCall{DigitTimeout: 3 * time.Second, RingTimeout: 30 * time.Second, InterpreterKey: "1", DropKey: "0",
		Interpreters: []Interpreter{}, Parties: []Party{}, TransferQueues: []TransferQueue{}, StayWithInterpreterLines: []string{}}
}

// Enabled reports whether mid-call features are on.
func (m *MidCall) Enabled() bool { return m.Prefix != "" }

func (p *parser) validateMidCall(c *Config) {
	m := &c.MidCall
	if m.Prefix != "" && !reFeatureDigits.MatchString(m.Prefix) {
		p.errorf("midcall.prefix", "%q must be 1 to 4 of 0-9 * #", m.Prefix)
	}
	if m.DigitTimeout < time.Second || m.DigitTimeout > 10*time.Second {
		p.errorf("midcall.digit_timeout", "must be 1s..10s, got %s", m.DigitTimeout)
	}
	if m.RingTimeout < 5*time.Second || m.RingTimeout > 120*time.Second {
		p.errorf("midcall.ring_timeout", "must be 5s..120s, got %s", m.RingTimeout)
	}
	keys := map[string]string{}
	key := func(path, k string) {
		if !reKey.MatchString(k) {
			p.errorf(path, "%q must be one digit 0-9", k)
			return
		}
		if other, ok := keys[k]; ok {
			p.errorf(path, "key %q is already %s", k, other)
			return
		}
		keys[k] = path
	}
	key("midcall.interpreter_key", m.InterpreterKey)
	key("midcall.drop_key", m.DropKey)
	if m.TransferKey != "" {
		key("midcall.transfer_key", m.TransferKey)
	}
	target := func(path, name string) {
		for _, t := range c.Targets {
			if t.Name == name {
				return
			}
		}
		p.errorf(path, "undefined target %q", name)
	}
	codes := map[string]int{}
	for i, in := range m.Interpreters {
		path := fmt.Sprintf("midcall.interpreters[%d]", i)
		if !reCode.MatchString(in.Code) {
			p.errorf(path+".code", "%q must be 1 to 4 digits", in.Code)
		} else if j, ok := codes[in.Code]; ok {
			p.errorf(path+".code", "code %q is already interpreters[%d]'s", in.Code, j)
		} else {
			codes[in.Code] = i
		}
		if !reLanguage.MatchString(in.Language) {
			p.errorf(path+".language", "%q is not a language tag such as es or zh-yue", in.Language)
		}
		target(path+".target", in.Target)
		if !reAccessCode.MatchString(in.AccessCode) {
			p.errorf(path+".access_code", "%q must be at most 32 of 0-9 * # ,", in.AccessCode)
		}
	}
	if sc := m.SuperviseCode; sc != "" {
		if !reSuperviseCode.MatchString(sc) {
			p.errorf("midcall.supervise_code", "%q must be * and 1 to 3 digits", sc)
		}
		for _, state := range []string{"*11", "*12", "*13"} {
			if strings.HasPrefix(sc, state) || strings.HasPrefix(state, sc) {
				p.errorf("midcall.supervise_code", "%q clashes with the state code %s", sc, state)
				break
			}
		}
	}
	exts := map[string]int{}
	for i, a := range c.Advocates {
		if a.Extension == "" {
			continue
		}
		path := fmt.Sprintf("advocates[%d].extension", i)
		if !reExtension.MatchString(a.Extension) {
			p.errorf(path, "%q must be 2 to 6 digits", a.Extension)
		} else if j, ok := exts[a.Extension]; ok {
			p.errorf(path, "extension %q is already advocates[%d]'s", a.Extension, j)
		} else {
			exts[a.Extension] = i
		}
	}
	for i, pt := range m.Parties {
		path := fmt.Sprintf("midcall.parties[%d]", i)
		key(path+".key", pt.Key)
		if pt.Kind != PartyEmergency && pt.Kind != PartyPartner {
			p.errorf(path+".kind", "%q is not one of emergency, partner", pt.Kind)
		}
		target(path+".target", pt.Target)
	}
	p.validateTransfer(c, exts)
}

// validateTransfer checks the warm transfer's and the advocate hang-up's settings; exts
// are the advocates' extensions.
func (p *parser) validateTransfer(c *Config, exts map[string]int) {
	m := &c.MidCall
	if len(m.TransferQueues) > 0 && m.TransferKey == "" {
		p.errorf("midcall.transfer_queues", "set, but midcall.transfer_key is not: no transfer can be made")
	}
	if m.TransferKey != "" && m.Prefix == "" {
		p.errorf("midcall.transfer_key", "set, but midcall.prefix is not: no transfer can be made")
	}
	codes := map[string]int{}
	for i, tq := range m.TransferQueues {
		path := fmt.Sprintf("midcall.transfer_queues[%d]", i)
		if !reCode.MatchString(tq.Code) {
			p.errorf(path+".code", "%q must be 1 to 4 digits", tq.Code)
		} else if j, ok := codes[tq.Code]; ok {
			p.errorf(path+".code", "code %q is already transfer_queues[%d]'s", tq.Code, j)
		} else if j, ok := exts[tq.Code]; ok {
			p.errorf(path+".code", "code %q is also advocates[%d]'s extension", tq.Code, j)
		} else {
			codes[tq.Code] = i
		}
		found := false
		for _, q := range c.Queues {
			found = found || q.Name == tq.Queue
		}
		if !found {
			p.errorf(path+".queue", "undefined queue %q", tq.Queue)
		}
	}
	stays := len(m.StayWithInterpreterLines) > 0
	for _, in := range m.Interpreters {
		stays = stays || in.StayWithCaller
	}
	if stays && m.Prefix == "" {
		p.errorf("midcall.stay_with_interpreter_lines", "staying with an interpreter is set, but midcall.prefix is not: no interpreter can be added")
	}
	if len(m.StayWithInterpreterLines) > 0 && len(m.Interpreters) == 0 {
		p.errorf("midcall.stay_with_interpreter_lines", "set, but no midcall.interpreters are configured")
	}
	seen := map[string]bool{}
	for i, name := range m.StayWithInterpreterLines {
		path := fmt.Sprintf("midcall.stay_with_interpreter_lines[%d]", i)
		found := false
		for _, l := range c.Lines {
			found = found || l.Name == name
		}
		switch {
		case !found:
			p.errorf(path, "undefined line %q", name)
		case seen[name]:
			p.errorf(path, "line %q is listed twice", name)
		}
		seen[name] = true
	}
}

// StaysWithInterpreter reports whether a caller on line may stay with interpreter in
// (its code) alone when the advocate hangs up.
func (m *MidCall) StaysWithInterpreter(line, code string) bool {
	for _, l := range m.StayWithInterpreterLines {
		if l == line {
			return true
		}
	}
	for _, in := range m.Interpreters {
		if in.Code == code && in.StayWithCaller {
			return true
		}
	}
	return false
}

package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Advocate is a person who takes calls, and the SIP account their phones register with.
type Advocate struct {
	// ID identifies the advocate in logs, metrics and the admin API, and is the SIP user
	// name their phones authenticate as: [a-z0-9_.-]+, unique. Required.
	ID string `yaml:"id"`
	// Name is shown to supervisors; optional.
	Name string `yaml:"name"`
	// Languages are the language tags the advocate speaks (en, es, fr-CA).
	Languages []string `yaml:"languages"`
	// HA1SHA256 and HA1MD5 are H(id ":" realm ":" password) in hex, as `hotline passwd`
	// prints them: SHA-256 (64 hex digits) and MD5 (32). At least one is required; a phone
	// that only does MD5 digest needs HA1MD5. Passwords themselves are never stored.
	HA1SHA256 string `yaml:"ha1_sha256"`
	HA1MD5    string `yaml:"ha1_md5"`
	// Role is what the browser console lets them do: RoleAdvocate (the default) sees and
	// changes their own state; RoleSupervisor also sees the wallboard and every advocate,
	// and changes any advocate's state.
	Role string `yaml:"role"`
}

// The roles advocates[].role may name.
const (
	RoleAdvocate   = "advocate"
	RoleSupervisor = "supervisor"
)

// The digest algorithms sip.digest_algorithms may list.
const (
	DigestMD5    = "MD5"
	DigestSHA256 = "SHA-256"
)

// DefaultPauseReasons are advocate_pause_reasons unless the file sets them: *121 break,
// *122 meal, *123 training, *124 meeting, *125 supervision.
var DefaultPauseReasons = []string{"break", "meal", "training", "meeting", "supervision"}

// PauseUnspecified is the pause reason recorded for *12 dialled without a reason's number.
const PauseUnspecified = "unspecified"

// maxPauseReasons is how many reasons one digit after *12 can choose from.
const maxPauseReasons = 9

var (
	rePauseReason = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	reAdvocateID  = regexp.MustCompile(`^[a-z0-9_.-]+$`)
	reHex         = regexp.MustCompile(`^[0-9a-fA-F]*$`)
)

// fillAdvocateDefaults writes HA1 values in lowercase, the form digest responses hash, and
// empty lists as decoding a printed config gives them back.
func (c *Config) fillAdvocateDefaults() {
	if c.Advocates == nil {
		c.Advocates = []Advocate{}
	}
	for i := range c.Advocates {
		a := &c.Advocates[i]
		nilIfEmpty(&a.Languages)
		a.HA1SHA256 = strings.ToLower(a.HA1SHA256)
		a.HA1MD5 = strings.ToLower(a.HA1MD5)
		if a.Role == "" {
			a.Role = RoleAdvocate
		}
	}
}

func (p *parser) validateRealm(realm string) {
	switch {
	case realm == "":
		p.errorf("sip.realm", "must not be empty")
	case strings.ContainsAny(realm, "\"\\\r\n\x00"):
		p.errorf("sip.realm", "must not contain quotes, backslashes or line breaks")
	}
}

// validateDigestAlgorithms checks sip.digest_algorithms and writes the names as the digest
// package spells them (MD5, SHA-256), whatever their case in the file.
func (p *parser) validateDigestAlgorithms(algs []string) {
	if len(algs) == 0 {
		p.errorf("sip.digest_algorithms", "must list at least one of %s, %s", DigestMD5, DigestSHA256)
	}
	seen := map[string]int{}
	for i, a := range algs {
		path := fmt.Sprintf("sip.digest_algorithms[%d]", i)
		var canon string
		switch strings.ToUpper(a) {
		case DigestMD5:
			canon = DigestMD5
		case DigestSHA256:
			canon = DigestSHA256
		default:
			p.errorf(path, "%q is not a digest algorithm hotline speaks: %s or %s", a, DigestMD5, DigestSHA256)
			continue
		}
		if j, dup := seen[canon]; dup {
			p.errorf(path, "duplicate of sip.digest_algorithms[%d] (%s)", j, canon)
			continue
		}
		seen[canon] = i
		algs[i] = canon
	}
}

func (p *parser) validateAdvocates(advocates []Advocate, algs []string) {
	usable := func(a Advocate) bool {
		for _, alg := range algs {
			if alg == DigestMD5 && a.HA1MD5 != "" || alg == DigestSHA256 && a.HA1SHA256 != "" {
				return true
			}
		}
		return false
	}
	ids := map[string]int{}
	for i, a := range advocates {
		path := fmt.Sprintf("advocates[%d]", i)
		j, dup := ids[a.ID]
		switch {
		case a.ID == "":
			p.errorf(path+".id", "required")
		case !reAdvocateID.MatchString(a.ID):
			p.errorf(path+".id", "%q may only have lowercase letters, digits, _, . and -", a.ID)
		case dup:
			p.errorf(path+".id", "duplicate of advocates[%d] (%s)", j, a.ID)
		default:
			ids[a.ID] = i
		}
		if strings.ContainsAny(a.Name, "\r\n\x00") {
			p.errorf(path+".name", "must be a single line")
		}
		if len(a.Languages) == 0 {
			p.errorf(path+".languages", "at least one language is required: the queues ring advocates by language")
		}
		for k, l := range a.Languages {
			if !reLanguage.MatchString(l) {
				p.errorf(fmt.Sprintf("%s.languages[%d]", path, k), "%q is not a language tag like en, es or fr-CA", l)
			}
		}
		if a.HA1SHA256 == "" && a.HA1MD5 == "" {
			p.errorf(path, "needs ha1_sha256 or ha1_md5 (run hotline passwd -id %s)", a.ID)
		} else if !usable(a) {
			p.errorf(path, "has no HA1 for any algorithm of sip.digest_algorithms %v, so their phone could never authenticate: add the ha1 lines hotline passwd -id %s prints, or list the algorithm there", algs, a.ID)
		}
		if a.Role != RoleAdvocate && a.Role != RoleSupervisor {
			p.errorf(path+".role", "%q is not a role: %s or %s", a.Role, RoleAdvocate, RoleSupervisor)
		}
		p.checkHex(path+".ha1_sha256", a.HA1SHA256, 64)
		p.checkHex(path+".ha1_md5", a.HA1MD5, 32)
	}
}

// validatePauseReasons checks advocate_pause_reasons: names like metric label values (they
// are shown to supervisors and in logs), unique, at most nine (one digit after *12).
func (p *parser) validatePauseReasons(reasons []string) {
	if len(reasons) > maxPauseReasons {
		p.errorf("advocate_pause_reasons", "at most %d reasons (*121 to *129), got %d", maxPauseReasons, len(reasons))
	}
	seen := map[string]int{}
	for i, r := range reasons {
		path := fmt.Sprintf("advocate_pause_reasons[%d]", i)
		j, dup := seen[r]
		switch {
		case !rePauseReason.MatchString(r) || len(r) > 40:
			p.errorf(path, "%q must be a lowercase word of letters, digits and _ (at most 40), such as break", r)
		case r == PauseUnspecified:
			p.errorf(path, "%q is what *12 without a number records; choose another name", r)
		case dup:
			p.errorf(path, "duplicate of advocate_pause_reasons[%d] (%s)", j, r)
		default:
			seen[r] = i
		}
	}
}

// PauseReason returns the reason a pause feature code records: code is what follows *12
// ("" or one digit 1-9 naming an entry of reasons). ok is false for anything else.
func PauseReason(reasons []string, code string) (reason string, ok bool) {
	switch {
	case code == "":
		return PauseUnspecified, true
	case len(code) == 1 && code[0] >= '1' && code[0] <= '9' && int(code[0]-'1') < len(reasons):
		return reasons[code[0]-'1'], true
	}
	return "", false
}

// checkHex reports s unless it is empty or n hex digits.
func (p *parser) checkHex(path, s string, n int) {
	if s != "" && (len(s) != n || !reHex.MatchString(s)) {
		p.errorf(path, "must be %d hex digits (the HA1 hotline passwd prints, not a password)", n)
	}
}

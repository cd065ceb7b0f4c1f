package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotline-project/hotline/routing"
)

// defaults returns the configuration a file with no keys at all describes, except that
// it has no lines. Parse decodes over it, so a key left out keeps its default while one
// written explicitly (even as 0 or "") is validated as written.
func defaults() *Config {
	c := &Config{
		SIP: SIP{
			Listen:           "0.0.0.0:5060",
			Transports:       []string{"udp", "tcp"},
			UserAgent:        "hotline",
			AckTimeout:       32 * time.Second,
			DrainTimeout:     30 * time.Minute,
			Realm:            "hotline",
			DigestAlgorithms: []string{DigestMD5},
			TLS:              SIPTLS{HandshakeTimeout: 10 * time.Second},
			Overload:         defaultOverload(),
		},
		HTTP: HTTP{Listen: "0.0.0.0:9095"},
		Media: Media{
			BindAddress:       "0.0.0.0",
			PortMin:           10000,
			PortMax:           20000,
			InactivityTimeout: 30 * time.Second,
			InbandDTMF:        "auto",
		},
		IVR:                  defaultIVR(),
		Advocates:            []Advocate{}, // none: a default password would be open to anyone
		AdvocatePauseReasons: slices.Clone(DefaultPauseReasons),
	}
	c.setRoutingDefaults()
	c.QueueDefaults = defaultQueueSettings()
	c.Security = defaultSecurity()
	c.Records = defaultRecords()
	c.MidCall = defaultMidCall()
	c.Safety = defaultSafety()
	c.Callback = defaultCallback()
	c.Console = Console{Enabled: true, IdleTimeout: 30 * time.Minute, Phone: true}
	c.State.Cluster = Cluster{Join: []string{}, QuorumGrace: 3 * time.Second}
	return c
}

// fillDefaults sets what decoding over defaults() cannot: lists written as null (which
// yaml.v3 decodes as nil), and each line's name, which depends on its number.
func (c *Config) fillDefaults() {
	d := defaults()
	if c.SIP.Transports == nil {
		c.SIP.Transports = d.SIP.Transports
	}
	if c.State.Cluster.Join == nil {
		c.State.Cluster.Join = []string{}
	}
	if c.AdvocatePauseReasons == nil {
		c.AdvocatePauseReasons = []string{}
	}
	if c.SIP.DigestAlgorithms == nil {
		c.SIP.DigestAlgorithms = d.SIP.DigestAlgorithms
	}
	if c.Security.TrustedSources == nil {
		c.Security.TrustedSources = d.Security.TrustedSources
	}
	if c.MidCall.Interpreters == nil {
		c.MidCall.Interpreters = []Interpreter{}
	}
	if c.MidCall.Parties == nil {
		c.MidCall.Parties = []Party{}
	}
	if c.MidCall.TransferQueues == nil {
		c.MidCall.TransferQueues = []TransferQueue{}
	}
	if c.MidCall.StayWithInterpreterLines == nil {
		c.MidCall.StayWithInterpreterLines = []string{}
	}
	c.IVR.fillDefaults()
	nilIfEmpty(&c.Safety.Prompts)
	c.fillRoutingDefaults()
	c.fillAdvocateDefaults()
	for i := range c.Lines {
		l := &c.Lines[i]
		if n := routing.NormalizeNumber(l.Number); l.Name == "" && n != "" {
			l.Name = "line-" + n
		}
	}
}

var (
	reLanguage = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]+)*$`)
	reName     = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

// checkWholeNumbers reports a fraction written for an int field, which yaml.v3 would
// silently truncate (port_min: 10000.5 becomes 10000).
func (p *parser) checkWholeNumbers() {
	for _, path := range slices.Concat([]string{"sip.max_calls", "media.port_min", "media.port_max", "records.retention_days", "records.spool_max_mb"}, securityWholeNumbers, overloadWholeNumbers) {
		if n, _ := p.find(path); n != nil && n.ShortTag() == "!!float" {
			p.errorf(path, "%q is not a whole number", n.Value)
		}
	}
}

// validate records every problem with c.
func (p *parser) validate(c *Config) {
	p.checkHostPort("sip.listen", c.SIP.Listen)
	p.validateSIP(&c.SIP)
	p.checkHostPort("http.listen", c.HTTP.Listen)
	if (c.HTTP.CertFile == "") != (c.HTTP.KeyFile == "") {
		p.errorf("http.cert_file", "cert_file and key_file go together (PEM files; both empty serves plain HTTP)")
	}
	p.validateMedia(&c.Media)
	p.validateIVR(c)
	p.validateLines(c.Lines)
	p.validateLineSRTP(c)
	p.validateRouting(c)
	p.validateQueueSettings(c)
	p.validateRealm(c.SIP.Realm)
	p.validateDigestAlgorithms(c.SIP.DigestAlgorithms)
	p.validateAdvocates(c.Advocates, c.SIP.DigestAlgorithms)
	p.validatePauseReasons(c.AdvocatePauseReasons)
	p.validateSecurity(&c.Security)
	p.validateCallLimits(c)
	p.validateRecords(&c.Records)
	p.validateMidCall(c)
	p.validateState(&c.State)
	p.validateSafety(c)
	p.validateCallback(c)
	if c.Console.IdleTimeout < time.Minute || c.Console.IdleTimeout > 24*time.Hour {
		p.errorf("console.idle_timeout", "%s must be between 1m and 24h", c.Console.IdleTimeout)
	}
}

func (p *parser) validateSIP(s *SIP) {
	if len(s.Transports) == 0 {
		p.errorf("sip.transports", "must name at least one of udp, tcp")
	}
	seen := map[string]int{}
	for i, t := range s.Transports {
		path := fmt.Sprintf("sip.transports[%d]", i)
		if t != "udp" && t != "tcp" {
			p.errorf(path, "%q is not one of udp, tcp", t)
			continue
		}
		if j, dup := seen[t]; dup {
			p.errorf(path, "duplicate of sip.transports[%d] (%s)", j, t)
			continue
		}
		seen[t] = i
	}
	if s.UserAgent == "" {
		p.errorf("sip.user_agent", "must not be empty")
	} else if strings.ContainsAny(s.UserAgent, "\r\n\x00") {
		p.errorf("sip.user_agent", "must be a single line")
	}
	if s.AckTimeout <= 0 {
		p.errorf("sip.ack_timeout", "must be greater than 0, got %v", s.AckTimeout)
	}
	if s.DrainTimeout < 0 {
		p.errorf("sip.drain_timeout", "must not be negative, got %v", s.DrainTimeout)
	}
	if s.AnswerDelay < 0 || s.AnswerDelay > 30*time.Second {
		p.errorf("sip.answer_delay", "must be between 0 and 30s, got %v", s.AnswerDelay)
	}
	p.validateSIPTLS(&s.TLS)
	p.validateOverload(&s.Overload)
}

func (p *parser) validateMedia(m *Media) {
	if _, err := netip.ParseAddr(m.BindAddress); err != nil {
		p.errorf("media.bind_address", "%q is not an IP address", m.BindAddress)
	}
	if m.AdvertiseAddress != "" {
		switch a, err := netip.ParseAddr(m.AdvertiseAddress); {
		case err != nil:
			p.errorf("media.advertise_address", "%q is not an IP address", m.AdvertiseAddress)
		case a.IsUnspecified() || a.IsMulticast():
			p.errorf("media.advertise_address", "%s cannot be sent to; give the address callers reach this server at, or leave it empty", a)
		}
	}
	switch {
	case m.PortMin < 1024 || m.PortMin > 65534:
		p.errorf("media.port_min", "must be in 1024..65534, got %d", m.PortMin)
	case m.PortMin%2 != 0:
		p.errorf("media.port_min", "must be even (RTP takes even ports), got %d", m.PortMin)
	}
	switch {
	case m.PortMax > 65535:
		p.errorf("media.port_max", "must be at most 65535, got %d", m.PortMax)
	case m.PortMax <= m.PortMin:
		p.errorf("media.port_max", "must be greater than port_min (%d)", m.PortMin)
	}
	if m.InactivityTimeout < time.Second {
		p.errorf("media.inactivity_timeout", "must be at least 1s, got %v", m.InactivityTimeout)
	}
	switch m.InbandDTMF {
	case "auto", "always", "off":
	default:
		p.errorf("media.inband_dtmf", "%q is not one of auto, always, off", m.InbandDTMF)
	}
}

func (p *parser) validateLines(lines []Line) {
	if len(lines) == 0 {
		p.errorf("lines", "at least one line is required")
	}
	names := map[string]int{}
	numbers := map[string]int{} // normalised number -> index of the first line with it
	for i, l := range lines {
		path := fmt.Sprintf("lines[%d]", i)
		n := routing.NormalizeNumber(l.Number)
		switch {
		case l.Number == "":
			p.errorf(path+".number", "required")
		case n == "":
			p.errorf(path+".number", "%q is not a phone number (digits, an optional leading +, and separators \" -.()\")", l.Number)
		default:
			p.checkUniqueNumber(lines, numbers, i, path+".number", n)
		}
		j, dup := names[l.Name]
		switch {
		case l.Name == "":
			// Only when the number is bad, which is reported already.
		case !reName.MatchString(l.Name):
			p.errorf(path+".name", "%q may only have lowercase letters, digits, _ and -", l.Name)
		case dup && l.Name == "line-"+n:
			// A default name repeats only when the number does, which is reported already.
		case dup:
			p.errorf(path+".name", "duplicate of lines[%d] (%s)", j, l.Name)
		default:
			names[l.Name] = i
		}
	}
}

// checkUniqueNumber reports lines[i], whose normalised number is n, if a dialled number
// could reach both it and an earlier line: LookupLine would be ambiguous. numbers maps the
// earlier lines' normalised numbers to their index; checkUniqueNumber adds n.
func (p *parser) checkUniqueNumber(lines []Line, numbers map[string]int, i int, path, n string) {
	if j, dup := numbers[n]; dup {
		p.errorf(path, "duplicate of lines[%d] (%s)", j, n)
		return
	}
	numbers[n] = i
	// The same number in national and international form: look both up.
	if j, ok := numbers[CountryCode+n]; ok && routing.NumberMatches(lines[j].Number, n, CountryCode) {
		p.errorf(path, "same number as lines[%d] (%s) without country code %s", j, CountryCode+n, CountryCode)
		return
	}
	if national, ok := strings.CutPrefix(n, CountryCode); ok {
		if j, ok := numbers[national]; ok && routing.NumberMatches(lines[i].Number, national, CountryCode) {
			p.errorf(path, "same number as lines[%d] (%s) with country code %s", j, national, CountryCode)
		}
	}
}

// checkHostPort records an error unless s is host:port with a port number in 0..65535
// (0 asks the system for a free port, which tests use) and a host that is empty, an IP
// address or a host name.
func (p *parser) checkHostPort(path, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		p.errorf(path, "%q is not host:port", s)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.errorf(path, "port %q is not a number in 0..65535", port)
	}
	if host == "" {
		return
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return
	}
	if !isHostName(host) {
		p.errorf(path, "%q is not an IP address or host name", host)
	}
}

// isHostName reports whether s is a syntactically valid DNS host name.
func isHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func (p *parser) validateSIPTLS(t *SIPTLS) {
	const path = "sip.tls"
	if t.Listen == "" {
		if t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" {
			p.errorf(path+".listen", "required with cert_file, key_file or ca_file (host:port, such as 0.0.0.0:5061)")
		}
		return
	}
	p.checkHostPort(path+".listen", t.Listen)
	if t.CertFile == "" {
		p.errorf(path+".cert_file", "required with sip.tls.listen (a PEM certificate file)")
	}
	if t.KeyFile == "" {
		p.errorf(path+".key_file", "required with sip.tls.listen (a PEM private key file)")
	}
	if t.HandshakeTimeout < time.Second || t.HandshakeTimeout > 2*time.Minute {
		p.errorf(path+".handshake_timeout", "must be between 1s and 2m, got %v", t.HandshakeTimeout)
	}
}

// validateLineSRTP checks each line's srtp mode, and that a line using SRTP can receive
// keys safely: over sip.tls, or with srtp_allow_plain_sip set.
func (p *parser) validateLineSRTP(c *Config) {
	for i, l := range c.Lines {
		path := fmt.Sprintf("lines[%d].srtp", i)
		switch l.SRTP {
		case "", SRTPOff:
		case SRTPOptional, SRTPRequired:
			if c.SIP.TLS.Listen == "" && !l.SRTPAllowPlainSIP {
				p.errorf(path, "%q needs sip.tls.listen: sdes keys over plain sip can be read by anyone on the path (set srtp_allow_plain_sip to allow)", l.SRTP)
			}
		default:
			p.errorf(path, "%q is not one of off, optional, required", l.SRTP)
		}
	}
}

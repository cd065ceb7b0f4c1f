package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hotline-project/hotline/routing"
)

// Config is the whole configuration file.
type Config struct {
	SIP     SIP     `yaml:"sip"`
	HTTP    HTTP    `yaml:"http"`
	Media   Media   `yaml:"media"`
	Prompts Prompts `yaml:"prompts"`
	IVR     IVR     `yaml:"ivr"`
	Lines   []Line  `yaml:"lines"`

	// Routing: see routing.go.
	Queues []Queue `yaml:"queues"`
	// QueueDefaults are every queue's settings unless it sets its own: see queue.go.
	QueueDefaults QueueSettings `yaml:"queue_defaults"`
	Targets       []Target      `yaml:"targets"`
	Schedules     []Schedule    `yaml:"schedules"`
	Routes        []Route       `yaml:"routes"`
	Admin         Admin         `yaml:"admin"`

	// Advocates: see advocates.go.
	Advocates []Advocate `yaml:"advocates"`
	// AdvocatePauseReasons are the reasons an advocate can give when pausing from the
	// phone: *12 followed by the reason's number (*121 is the first), at most 9; *12 alone
	// records PauseUnspecified. See advocates.go.
	AdvocatePauseReasons []string `yaml:"advocate_pause_reasons"`

	// Security: per-source limits, see security.go.
	Security Security `yaml:"security"`
	// Records: see records.go.
	Records Records `yaml:"records"`
	// MidCall: the advocate's mid-call features (interpreters, 911, partners), see
	// midcall.go.
	MidCall MidCall `yaml:"midcall"`
	// State: what survives a restart, see state.go.
	State State `yaml:"state"`
	// Safety: the quick-exit key, the safety step and keeping one's place; see safety.go.
	Safety Safety `yaml:"safety"`
	// Console is the advocates' and supervisors' console in the browser.
	Console Console `yaml:"console"`
	// Callback: safe callbacks, offered per queue (queues[].callback); see callback.go.
	Callback Callback `yaml:"callback"`
}

// Console configures the browser console served under /console/ on the HTTP listener.
type Console struct {
	// Enabled serves the console; default true. Sign-in uses the advocates' accounts.
	Enabled bool `yaml:"enabled"`
	// IdleTimeout signs a session out after this long without the person using the page;
	// default 30m, 1m..24h.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Phone lets advocates take calls in the page (WebRTC: PCMU over DTLS-SRTP, ICE host
	// candidates on media.advertise_address, else media.bind_address, else every address
	// of the host, on UDP ports of media.port_min..port_max); default true.
	Phone bool `yaml:"phone"`
}

// SIP configures the SIP server.
type SIP struct {
	Listen     string        `yaml:"listen"`      // host:port, default "0.0.0.0:5060"
	Transports []string      `yaml:"transports"`  // subset of udp, tcp; default [udp, tcp]
	UserAgent  string        `yaml:"user_agent"`  // default "hotline"
	AckTimeout time.Duration `yaml:"ack_timeout"` // default 32s; >0
	// AnswerDelay rings (180) this long before answering; 0 answers at once. Some carriers
	// want ringback before answer; it also lets a caller who misdialled hang up for free.
	AnswerDelay time.Duration `yaml:"answer_delay"` // default 0; 0..30s
	// MaxCalls is the most calls handled at once; further INVITEs get 503. 0 follows from
	// the media port range (Config.CallLimits); more than the range can carry is refused.
	MaxCalls int `yaml:"max_calls"`
	// Realm is the digest authentication realm advocates' phones authenticate in; default
	// "hotline". HA1 values depend on it: changing it invalidates every advocate's hash.
	Realm string `yaml:"realm"`
	// DigestAlgorithms are the digest algorithms the 401 challenges offer advocates' phones,
	// in this order: MD5 and SHA-256; default [MD5] (see digest.DefaultAlgorithms: stock
	// phones fail on anything else). Each advocate is offered those it has an HA1 value
	// for; credentials with an unlisted algorithm are refused.
	DigestAlgorithms []string `yaml:"digest_algorithms"`
	// DrainTimeout is how long a draining server (the first SIGTERM) waits for the calls in
	// progress to end before it stops anyway; default 30m; >= 0.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// TLS is SIP over TLS, on an address of its own; off unless TLS.Listen is set.
	TLS SIPTLS `yaml:"tls"`
	// Overload is overload control for call set-up: see overload.go.
	Overload Overload `yaml:"overload"`
}

// SIPTLS configures SIP over TLS. The certificate and key are PEM files, read at start-up
// (a bad or missing file stops the server with an error naming it), not by config checks.
type SIPTLS struct {
	Listen   string `yaml:"listen"`    // host:port, such as "0.0.0.0:5061"; "" is off (the default)
	CertFile string `yaml:"cert_file"` // PEM certificate chain, leaf first; required with listen
	KeyFile  string `yaml:"key_file"`  // PEM private key of the certificate; required with listen
	// HandshakeTimeout is how long a client has to complete the TLS handshake after
	// connecting; default 10s; 1s..2m.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// CAFile, if set, is a PEM bundle of the certificates trusted when the server must connect
	// to an advocate's phone over TLS (its registered connection having closed); "" trusts the
	// system's roots. Phones with self-signed certificates need it.
	CAFile string `yaml:"ca_file"`
}

// HTTP configures the metrics and health-check server.
type HTTP struct {
	Listen string `yaml:"listen"` // host:port, default "0.0.0.0:9095"
	// CertFile and KeyFile (PEM, both or neither) serve the listener over HTTPS: the
	// console (browsers give the microphone of the phone in the page only to HTTPS pages or
	// localhost, and its session cookies are then Secure), the admin API's bearer tokens and
	// /metrics. Read at start-up; a bad or missing file stops the server naming it.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Media configures RTP.
type Media struct {
	BindAddress       string        `yaml:"bind_address"`       // default "0.0.0.0", must parse as IP
	AdvertiseAddress  string        `yaml:"advertise_address"`  // optional IP put in SDP; "" = pick per call
	PortMin           int           `yaml:"port_min"`           // default 10000, even, 1024..65534
	PortMax           int           `yaml:"port_max"`           // default 20000, > PortMin, <= 65535
	InactivityTimeout time.Duration `yaml:"inactivity_timeout"` // default 30s, >= 1s
	// InbandDTMF is when callers' key presses sent as tones in the audio are detected:
	// auto (the default) on calls that negotiated no telephone-event, always (also on
	// calls with it: for gateways that negotiate it and send tones anyway; a phone that
	// sends both may then type every key twice), or off.
	InbandDTMF string `yaml:"inband_dtmf"`
}

// Prompts configures the audio prompts.
type Prompts struct {
	// Dir is an optional directory of operator recordings, <lang>/<name>.wav, overlaying
	// the embedded defaults. A relative path is relative to the working directory.
	Dir string `yaml:"dir"`
}

// IVR (the languages and menus) is in ivr.go.

// Line is a number the hotline answers.
type Line struct {
	// Number is required; it must normalise (routing.NormalizeNumber) to digits, and no
	// two lines may be reached by the same dialled number.
	Number string `yaml:"number"`
	// Name labels the line in logs and metrics (it never names the caller); [a-z0-9_-]+,
	// unique, default "line-<number digits>".
	Name string `yaml:"name"`
	// SRTP is the line's policy for callers' media (SDES, RFC 4568): "off" (the default)
	// takes only plain RTP/AVP offers; "optional" also takes RTP/SAVP with a=crypto and
	// answers with our own key; "required" takes only RTP/SAVP with a usable a=crypto and
	// refuses anything else with 488. Keys travel in the SDP, so a=crypto is used only on
	// calls that arrive over SIP over TLS (sip.tls) unless SRTPAllowPlainSIP is set.
	// Empty is off.
	SRTP string `yaml:"srtp,omitempty"`
	// SRTPAllowPlainSIP lets SDES keys be exchanged over SIP on UDP or TCP, where anyone on
	// the path can read them. Only for a trunk on a private, trusted network.
	SRTPAllowPlainSIP bool `yaml:"srtp_allow_plain_sip,omitempty"`
	// QuickExitInBridge lets the quick-exit key (safety.quick_exit_key) end a call that is
	// connected to an advocate or target too, hanging up both legs. Default false: once a
	// person is on the line, a key pressed by mistake must not cut a caller off from help
	// (the caller can always hang up, and the advocate can end the call).
	QuickExitInBridge bool `yaml:"quick_exit_in_bridge,omitempty"`
}

// SRTP modes of a line.
const (
	SRTPOff      = "off"
	SRTPOptional = "optional"
	SRTPRequired = "required"
)

// CountryCode is the country code LookupLine lets callers leave out: a number configured
// as 18883737888 is also reached by dialling 8883737888.
const CountryCode = "1"

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded default configuration file: the documented starting point
// operators copy. The caller may modify the returned slice.
func Default() []byte {
	return bytes.Clone(defaultYAML)
}

// MustDefault parses Default. It panics only if the embedded file is broken, which the
// package's tests rule out.
func MustDefault() *Config {
	return mustParse("default.yaml", defaultYAML)
}

func mustParse(filename string, data []byte) *Config {
	c, err := Parse(filename, data)
	if err != nil {
		panic(fmt.Sprintf("config: embedded %v", err))
	}
	return c
}

// Load reads the file at path and parses it with Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data, read from filename, into a Config: strictly (unknown keys are
// errors), with defaults for missing keys, and validated. On failure it returns a nil
// Config and an Errors holding every problem found, each with filename and line.
// Only the first YAML document is allowed; later non-empty documents are an error.
func Parse(filename string, data []byte) (*Config, error) {
	p := &parser{file: filename}

	// First pass: the node tree, to check the syntax and to find lines for errors later.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// Empty or only comments: all defaults, and validation asks for lines.
	case err != nil:
		p.addYAMLError(err)
		return nil, p.errs
	default:
		p.root = &doc
		var extra yaml.Node
		switch err := dec.Decode(&extra); {
		case errors.Is(err, io.EOF):
		case err != nil:
			p.addYAMLError(err)
			return nil, p.errs
		case !isEmptyDocument(&extra):
			p.errs = append(p.errs, &Error{File: filename, Line: extra.Line, Msg: "only one YAML document is allowed"})
			return nil, p.errs
		}
	}

	// Second pass: strict decoding over the defaults, so that keys left out keep them.
	c := defaults()
	if p.root != nil {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			p.addYAMLError(err)
			return nil, p.errs
		}
	}
	p.checkWholeNumbers()
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	c.fillDefaults()
	p.validate(c)
	if len(p.errs) > 0 {
		p.errs.sort()
		return nil, p.errs
	}
	return c, nil
}

// isEmptyDocument reports whether n is a document with nothing but a null in it, as a
// trailing "---" produces.
func isEmptyDocument(n *yaml.Node) bool {
	if n.Kind != yaml.DocumentNode || len(n.Content) != 1 {
		return false
	}
	v := n.Content[0]
	return v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" && v.Value == ""
}

// LookupLine returns the line that dialled reaches, as matched by routing.NumberMatches
// with CountryCode. Validation guarantees at most one line matches.
func (c *Config) LookupLine(dialled string) (*Line, bool) {
	for i := range c.Lines {
		if routing.NumberMatches(c.Lines[i].Number, dialled, CountryCode) {
			return &c.Lines[i], true
		}
	}
	return nil, false
}

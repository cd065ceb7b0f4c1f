package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"unknown.yaml", `testdata/unknown.yaml:3: sip.lisen: unknown field`},
		{"unknown-nested.yaml", `testdata/unknown-nested.yaml:3: lines[0].nmae: unknown field
testdata/unknown-nested.yaml:8: ivr.languages[0].lang: unknown field`},
		{"calllimits.yaml", `testdata/calllimits.yaml:3: sip.max_calls: 60 calls need up to 120 RTP ports (a call bridged to an advocate takes two), but media.port_min..port_max holds 100; at most 50, or 0 for 40
testdata/calllimits.yaml:10: security.untrusted_calls: must be at most max_calls (60), got 70
testdata/calllimits.yaml:11: security.unacked_calls: must be at most untrusted_calls (70), got 80
testdata/calllimits.yaml:12: security.unacked_timeout: must be between 1s and 5m, got 6m0s
testdata/calllimits.yaml:14: security.no_rtp_window: must be greater than 0 and at most 24h, got 0s`},
		{"badport.yaml", `testdata/badport.yaml:7: media.port_max: must be greater than port_min (10000)`},
		{"ports.yaml", `testdata/ports.yaml:2: media.port_min: must be even (RTP takes even ports), got 10001
testdata/ports.yaml:3: media.port_max: must be at most 65535, got 70000`},
		{"portmin-low.yaml", `testdata/portmin-low.yaml:2: media.port_min: must be in 1024..65534, got 80`},
		{"fraction.yaml", `testdata/fraction.yaml:3: sip.max_calls: "100.5" is not a whole number
testdata/fraction.yaml:5: media.port_min: "10000.0" is not a whole number`},
		{"duplicate-line.yaml", `testdata/duplicate-line.yaml:12: lines[1].number: duplicate of lines[0] (18883737888)`},
		{"national.yaml", `testdata/national.yaml:3: lines[1].number: same number as lines[0] (8883737888) with country code 1
testdata/national.yaml:5: lines[3].number: same number as lines[2] (18005550100) without country code 1`},
		{"default-language.yaml", `testdata/default-language.yaml:4: ivr.default_language: "fr" is not one of ivr.languages`},
		{"syntax.yaml", `testdata/syntax.yaml:5: yaml: did not find expected ',' or ']'`},
		{"syntax-flow.yaml", `testdata/syntax-flow.yaml:2: yaml: did not find expected ',' or '}'`},
		{"syntax-indent.yaml", `testdata/syntax-indent.yaml:3: yaml: did not find expected key`},
		{"syntax-tab.yaml", `testdata/syntax-tab.yaml:2: yaml: found a tab character that violates indentation`},
		{"duration.yaml", `testdata/duration.yaml:2: sip.ack_timeout: invalid duration "30 seconds": write a number with a unit, like 30s or 500ms
testdata/duration.yaml:4: media.inactivity_timeout: invalid duration "30": write a number with a unit, like 30s or 500ms
testdata/duration.yaml:7: ivr.first_digit_timeout: expected a duration, like 30s, got a mapping`},
		{"types.yaml", `testdata/types.yaml:2: sip.transports: expected a list, got a string
testdata/types.yaml:3: sip.max_calls: "lots" is not a whole number
testdata/types.yaml:4: sip.user_agent: expected a string, got a list
testdata/types.yaml:6: media.port_min: "true" is not a whole number
testdata/types.yaml:8: lines: expected a list, got a mapping`},
		{"no-lines.yaml", `testdata/no-lines.yaml:3: lines: at least one line is required`},
		{"empty.yaml", `testdata/empty.yaml: lines: at least one line is required`},
		{"missing-number.yaml", `testdata/missing-number.yaml:3: lines[1].number: required
testdata/missing-number.yaml:4: lines[2].number: "1-800-HOTLINE" is not a phone number (digits, an optional leading +, and separators " -.()")`},
		{"languages.yaml", `testdata/languages.yaml:6: ivr.languages[1].fallback: "fr" is not one of ivr.languages
testdata/languages.yaml:7: ivr.languages[2].language: "English" is not a language tag like en, es or fr-CA
testdata/languages.yaml:8: ivr.languages[3].language: duplicate of ivr.languages[0] (en)
testdata/languages.yaml:9: ivr.languages[4].language: required
testdata/languages.yaml:11: ivr.languages[5].fallback: a language cannot fall back to itself
testdata/languages.yaml:13: ivr.languages[6].fallback: fallback cycle fr-CA -> it -> fr-CA`},
		{"no-languages.yaml", `testdata/no-languages.yaml:2: ivr.languages: must offer at least one language`},
		{"addresses.yaml", `testdata/addresses.yaml:2: sip.listen: "5060" is not host:port
testdata/addresses.yaml:4: http.listen: port "http" is not a number in 0..65535
testdata/addresses.yaml:6: media.bind_address: "example.org" is not an IP address
testdata/addresses.yaml:7: media.advertise_address: 0.0.0.0 cannot be sent to; give the address callers reach this server at, or leave it empty`},
		{"sip.yaml", `testdata/sip.yaml:3: sip.transports[1]: duplicate of sip.transports[0] (udp)
testdata/sip.yaml:3: sip.transports[2]: "tls" is not one of udp, tcp
testdata/sip.yaml:4: sip.user_agent: must not be empty
testdata/sip.yaml:5: sip.ack_timeout: must be greater than 0, got 0s
testdata/sip.yaml:6: sip.max_calls: must be 0 (follow the port range) or more, got -1`},
		{"timeouts.yaml", `testdata/timeouts.yaml:2: media.inactivity_timeout: must be at least 1s, got 500ms
testdata/timeouts.yaml:4: ivr.first_digit_timeout: must be greater than 0, got -1s`},
		{"names.yaml", `testdata/names.yaml:3: lines[0].name: "Main Line" may only have lowercase letters, digits, _ and -
testdata/names.yaml:8: lines[3].name: duplicate of lines[2] (spanish)
testdata/names.yaml:10: lines[4].name: duplicate of lines[1] (line-18005550100)`},
		{"sip-tls.yaml", `testdata/sip-tls.yaml:2: sip.tls.cert_file: required with sip.tls.listen (a PEM certificate file)
testdata/sip-tls.yaml:2: sip.tls.key_file: required with sip.tls.listen (a PEM private key file)
testdata/sip-tls.yaml:3: sip.tls.listen: "0.0.0.0" is not host:port
testdata/sip-tls.yaml:4: sip.tls.handshake_timeout: must be between 1s and 2m, got 0s`},
		{"sip-tls-nolisten.yaml", `testdata/sip-tls-nolisten.yaml:2: sip.tls.listen: required with cert_file, key_file or ca_file (host:port, such as 0.0.0.0:5061)`},
		{"duplicate-key.yaml", `testdata/duplicate-key.yaml:4: sip.listen: duplicate key (first set on line 2)`},
		{"two-documents.yaml", `testdata/two-documents.yaml:3: only one YAML document is allowed`},
		{"list.yaml", `testdata/list.yaml:1: expected a mapping, got a list`},
		{"advocates.yaml", `testdata/advocates.yaml:2: sip.realm: must not contain quotes, backslashes or line breaks
testdata/advocates.yaml:11: advocates[1].id: "Maria Lopez" may only have lowercase letters, digits, _, . and -
testdata/advocates.yaml:14: advocates[2].id: duplicate of advocates[0] (maria)
testdata/advocates.yaml:15: advocates[2].ha1_md5: must be 32 hex digits (the HA1 hotline passwd prints, not a password)
testdata/advocates.yaml:17: advocates[3]: needs ha1_sha256 or ha1_md5 (run hotline passwd -id jo)
testdata/advocates.yaml:18: advocates[3].languages[0]: "English" is not a language tag like en, es or fr-CA
testdata/advocates.yaml:19: advocates[4].id: required
testdata/advocates.yaml:20: advocates[4].ha1_sha256: must be 64 hex digits (the HA1 hotline passwd prints, not a password)
testdata/advocates.yaml:22: advocates[5].languages: at least one language is required: the queues ring advocates by language`},
		// Issue 19: the console's roles and idle timeout are checked.
		{"console.yaml", `testdata/console.yaml:7: advocates[0].role: "boss" is not a role: advocate or supervisor
testdata/console.yaml:9: console.idle_timeout: 10s must be between 1m and 24h`},
		{"advocates-unknown.yaml", `testdata/advocates-unknown.yaml:5: advocates[0].password: unknown field`},
		// Issue 13: the order of the digest challenges is configured; names are checked.
		{"digest-algorithms.yaml", `testdata/digest-algorithms.yaml:3: sip.digest_algorithms[1]: "SHA-512" is not a digest algorithm hotline speaks: MD5 or SHA-256
testdata/digest-algorithms.yaml:3: sip.digest_algorithms[2]: duplicate of sip.digest_algorithms[0] (MD5)
testdata/digest-algorithms.yaml:6: advocates[0]: has no HA1 for any algorithm of sip.digest_algorithms [MD5 SHA-512 MD5], so their phone could never authenticate: add the ha1 lines hotline passwd -id ana prints, or list the algorithm there`},
		// With the default [MD5], an advocate with only an SHA-256 HA1 could never log in.
		{"advocates-sha-only.yaml", `testdata/advocates-sha-only.yaml:3: advocates[0]: has no HA1 for any algorithm of sip.digest_algorithms [MD5], so their phone could never authenticate: add the ha1 lines hotline passwd -id ana prints, or list the algorithm there`},
		// Issue 13: *12 plus a digit picks a configured pause reason.
		{"pause-reasons.yaml", `testdata/pause-reasons.yaml:2: advocate_pause_reasons: at most 9 reasons (*121 to *129), got 10
testdata/pause-reasons.yaml:2: advocate_pause_reasons[1]: "Lunch Break" must be a lowercase word of letters, digits and _ (at most 40), such as break
testdata/pause-reasons.yaml:2: advocate_pause_reasons[2]: "unspecified" is what *12 without a number records; choose another name
testdata/pause-reasons.yaml:2: advocate_pause_reasons[3]: duplicate of advocate_pause_reasons[0] (break)`},
		{"digest-algorithms-empty.yaml", `testdata/digest-algorithms-empty.yaml:2: sip.digest_algorithms: must list at least one of MD5, SHA-256`},
	}
	checkLoadErrors(t, tests)
}

func TestLoadGood(t *testing.T) {
	withLines := func(lines ...Line) *Config {
		c := defaults()
		c.Lines = lines
		return c
	}
	tests := []struct {
		file string
		want *Config
	}{
		{"minimal.yaml", withLines(Line{Number: "+1 (888) 373-7888", Name: "line-18883737888"})},
		{"anchors.yaml", withLines(Line{Number: "18883737888", Name: "main"}, Line{Number: "18005550100", Name: "sms"})},
		{"full.yaml", &Config{
			SIP: SIP{
				Listen:      "127.0.0.1:5080",
				Transports:  []string{"tcp"},
				UserAgent:   "hotline-test/1.0",
				AckTimeout:  10 * time.Second,
				AnswerDelay: 2 * time.Second,
				TLS: SIPTLS{Listen: "127.0.0.1:5081", CertFile: "/etc/hotline/sip.crt", KeyFile: "/etc/hotline/sip.key",
					HandshakeTimeout: 5 * time.Second, CAFile: "/etc/hotline/phones.pem"},
				MaxCalls:         500,
				Realm:            "hotline.example.org",
				DigestAlgorithms: []string{"SHA-256", "MD5"}, // as the digest package spells them
				DrainTimeout:     30 * time.Minute,
				Overload:         defaultOverload(),
			},
			HTTP: HTTP{Listen: "[::1]:0"},
			Media: Media{
				BindAddress:       "::",
				AdvertiseAddress:  "203.0.113.7",
				PortMin:           30000,
				PortMax:           31999,
				InactivityTimeout: 90 * time.Second,
				InbandDTMF:        "auto",
			},
			Prompts: Prompts{Dir: "/var/lib/hotline/prompts"},
			IVR: IVR{
				Languages:         []Language{{"es", ""}, {"en", "es"}, {"fr-CA", "en"}},
				DefaultLanguage:   "es",
				Start:             "main",
				FirstDigitTimeout: 2500 * time.Millisecond,
				InterDigitTimeout: 4 * time.Second,
				Retries:           2,
				Invalid:           "",
				Operator:          &Action{SetReason: "operator", To: "en"},
				Menus: []Menu{{
					Name:    "main",
					Prompts: []string{"greeting"},
					Keys:    map[string]Action{"1": {SetLanguage: "fr-CA", Goto: "main"}},
					NoInput: &Action{Route: true},
				}},
			},
			Lines: []Line{
				{Number: "18883737888", Name: "main"},
				{Number: "+1 800 555 0100;user=phone", Name: "line-18005550100"},
				{Number: "988", Name: "lifeline_988"},
			},
			// full.yaml has no routing: it keeps the default.
			Queues:        defaults().Queues,
			Targets:       defaults().Targets,
			Schedules:     defaults().Schedules,
			Routes:        defaults().Routes,
			QueueDefaults: defaultQueueSettings(),
			Advocates: []Advocate{
				{ID: "maria.lopez", Name: "María López", Languages: []string{"es", "en"},
					HA1SHA256: "5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e", // lowercased
					HA1MD5:    "0c2f9a0c2f9a0c2f9a0c2f9a0c2f9a0c", Role: RoleSupervisor},
				{ID: "jo", Languages: []string{"en"}, HA1MD5: "0c2f9a0c2f9a0c2f9a0c2f9a0c2f9a0d", Role: RoleAdvocate},
			},
			AdvocatePauseReasons: []string{"lunch", "debrief"},
			Security:             defaultSecurity(),
			Records: Records{Driver: "postgres", Path: "/var/lib/hotline/records.db",
				DSN: "host=db.internal dbname=hotline user=hotline", HashKeyFile: "/etc/hotline/records.key",
				RetentionDays: 730, Node: "hotline-1", SpoolMaxMB: 256},
			MidCall:  defaultMidCall(),
			Safety:   defaultSafety(),
			Console:  Console{Enabled: false, IdleTimeout: 10 * time.Minute, Phone: true},
			Callback: defaultCallback(),
			State:    State{Cluster: Cluster{Join: []string{}, QuorumGrace: 3 * time.Second}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Load(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "load config: ") {
		t.Errorf("Load of a missing file: %v, want a wrapped fs.ErrNotExist", err)
	}
}

func TestParseTrailingDocument(t *testing.T) {
	if _, err := Parse("x.yaml", []byte("lines: [{number: \"988\"}]\n---\n")); err != nil {
		t.Errorf("Parse with a trailing empty document: %v", err)
	}
}

func TestMustDefault(t *testing.T) {
	want := defaults()
	want.Lines = []Line{{Number: "18883737888", Name: "main"}}
	if got := MustDefault(); !reflect.DeepEqual(got, want) {
		t.Errorf("MustDefault:\n got %+v\nwant %+v", got, want)
	}
	// The file and the defaults in code must agree, so the file documents what leaving a
	// key out means.
	c, err := Parse("lines-only.yaml", []byte("lines: [{number: \"18883737888\", name: main}]"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, MustDefault()) {
		t.Errorf("default.yaml and defaults() differ:\n file %+v\n code %+v", MustDefault(), c)
	}
}

func TestDefaultIsCopy(t *testing.T) {
	b := Default()
	for i := range b {
		b[i] = '!'
	}
	if _, err := Parse("default.yaml", Default()); err != nil {
		t.Errorf("changing Default's result changed the embedded file: %v", err)
	}
}

// TestDefaultDocumentsEveryKey checks that the file operators copy shows every setting.
func TestDefaultDocumentsEveryKey(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Default(), &doc); err != nil {
		t.Fatal(err)
	}
	p := &parser{root: &doc}
	var check func(path string, typ reflect.Type)
	check = func(path string, typ reflect.Type) {
		if path == "advocates" {
			// Shipped empty on purpose (a default account would be a hole); the example
			// is a comment, which must show every key.
			for f := range typ.Elem().Fields() {
				key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !strings.Contains(string(Default()), "#   "+key+":") && !strings.Contains(string(Default()), "# - "+key+":") {
					t.Errorf("default.yaml's commented advocate does not show %s", key)
				}
			}
			return
		}
		if path == "midcall.interpreters" || path == "midcall.parties" || path == "midcall.transfer_queues" {
			// Shipped empty (mid-call features are off); the example is a comment.
			for f := range typ.Elem().Fields() {
				key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if d := string(Default()); !strings.Contains(d, " "+key+": ") && !strings.Contains(d, "{"+key+": ") {
					t.Errorf("default.yaml's commented %s does not show %s", path, key)
				}
			}
			return
		}
		if typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.Struct {
			check(path+"[0]", typ.Elem())
			return
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Duration]() {
			return
		}
		for f := range typ.Fields() {
			key, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				check(path, f.Type)
				continue
			}
			sub := joinPath(path, key)
			if opts == "omitempty" {
				// Optional, such as a menu's own timeout: shown at least in a comment.
				if !strings.Contains(string(Default()), key+":") {
					t.Errorf("default.yaml does not mention %s", sub)
				}
				continue
			}
			if n, _ := p.find(sub); n == nil {
				t.Errorf("default.yaml does not show %s", sub)
				continue
			}
			check(sub, f.Type)
		}
	}
	check("", reflect.TypeFor[Config]())
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, "broken.yaml:2: yaml: ") {
			t.Errorf("mustParse panicked with %v, want the file's error", r)
		}
	}()
	mustParse("broken.yaml", []byte("sip: [\n"))
	t.Error("mustParse did not panic on a broken file")
}

func TestLookupLine(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dialled string
		want    string // line name; "" for no match
	}{
		{"18883737888", "main"},
		{"+18883737888", "main"},
		{"8883737888", "main"},
		{"+1 (888) 373-7888", "main"},
		{"18883737888;user=phone", "main"},
		{"8005550100", "line-18005550100"},
		{"+18005550100", "line-18005550100"},
		{"988", "lifeline_988"},
		{"1988", ""}, // "988" is configured in national form only
		{"8883737889", ""},
		{"28883737888", ""},
		{"", ""},
		{"main", ""},
	}
	for _, tt := range tests {
		l, ok := c.LookupLine(tt.dialled)
		var got string
		if ok {
			got = l.Name
		}
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("LookupLine(%q) = %q, %v; want %q", tt.dialled, got, ok, tt.want)
		}
	}
	// The result points into the config, not a copy.
	if l, _ := c.LookupLine("988"); l != &c.Lines[2] {
		t.Errorf("LookupLine returned a copy")
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{"x.yaml", 12, "lines[1].number", "duplicate"}, "x.yaml:12: lines[1].number: duplicate"},
		{Error{"x.yaml", 0, "lines", "required"}, "x.yaml: lines: required"},
		{Error{"x.yaml", 5, "", "yaml: bad"}, "x.yaml:5: yaml: bad"},
		{Error{"x.yaml", 0, "", "bad"}, "x.yaml: bad"},
		{Error{"", 3, "sip", "bad"}, "line 3: sip: bad"},
		{Error{"", 0, "", "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
	es := Errors{&tests[0].err, &tests[1].err}
	if got, want := es.Error(), "x.yaml:12: lines[1].number: duplicate\nx.yaml: lines: required"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(es), &e) || e != es[0] {
		t.Errorf("errors.As(Errors, *Error) did not find the first error")
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		path string
		want []segment
	}{
		{"", nil},
		{"sip", []segment{{key: "sip"}}},
		{"sip.listen", []segment{{key: "sip"}, {key: "listen"}}},
		{"lines[2].number", []segment{{key: "lines"}, {index: 2}, {key: "number"}}},
		{"a[1][0]", []segment{{key: "a"}, {index: 1}, {index: 0}}},
	}
	for _, tt := range tests {
		if got := splitPath(tt.path); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// loadErrorCase is a file in testdata/ that Load must refuse with exactly the error want,
// one line per problem.
type loadErrorCase = struct {
	file string
	want string
}

// checkLoadErrors loads each file and compares the error with want.
func checkLoadErrors(t *testing.T, tests []loadErrorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatalf("Load succeeded, want error:\n%s", tt.want)
			}
			if c != nil {
				t.Errorf("Load returned a config along with the error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Load error:\n%s\nwant:\n%s", got, tt.want)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != strings.Count(tt.want, "\n")+1 {
				t.Errorf("Load error is %T with %d entries, want Errors with one per line", err, len(es))
			}
		})
	}
}

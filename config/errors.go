package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file.
type Error struct {
	File string // the file name given to Parse
	Line int    // 1-based; 0 when unknown
	Path string // the field, e.g. "lines[1].number"; "" for the file as a whole
	Msg  string
}

// Error formats e as "FILE:LINE: path: msg", leaving out ":LINE" when the line is unknown
// and "path: " when there is no path.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in line order.
type Errors []*Error

// Error joins the errors' messages, one a line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, so errors.As finds an *Error in an Errors.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

var (
	_ error = (*Error)(nil)
	_ error = Errors(nil)
)

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
}

// yaml.v3's error texts, which addYAMLError turns into Errors with a field path.
var (
	reSyntax    = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)
	reLine      = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
	reUnknown   = regexp.MustCompile(`(?s)^field (.*) not found in type \S+$`)
	reDuplicate = regexp.MustCompile(`(?s)^mapping key (.*) already defined at line (\d+)$`)
	reUnmarshal = regexp.MustCompile(`(?s)^cannot unmarshal (!!?\S*)(?: ` + "`" + `(.*)` + "`" + `)? into (\S+)$`)
	// parserProblems are the messages of yaml.v3's parser, as opposed to its scanner:
	// libyaml's parserc.go, calls to yaml_parser_set_parser_error(_context).
	parserProblems = map[string]bool{
		"did not find expected ',' or ']'":       true,
		"did not find expected ',' or '}'":       true,
		"did not find expected '-' indicator":    true,
		"did not find expected <document start>": true,
		"did not find expected <stream-start>":   true,
		"did not find expected key":              true,
		"did not find expected node content":     true,
		"found duplicate %TAG directive":         true,
		"found duplicate %YAML directive":        true,
		"found incompatible YAML document":       true,
		"found undefined tag handle":             true,
	}
	// kindArticles names YAML's tags in messages.
	kindArticles = map[string]string{
		"!!map":       "a mapping",
		"!!seq":       "a list",
		"!!str":       "a string",
		"!!int":       "an integer",
		"!!float":     "a number",
		"!!bool":      "a boolean",
		"!!null":      "nothing",
		"!!timestamp": "a timestamp",
		"!!binary":    "binary data",
	}
)

// addYAMLError records an error from yaml.v3: a syntax error (one line), or a
// *yaml.TypeError listing every field that did not decode.
func (p *parser) addYAMLError(err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		e := &Error{File: p.file, Msg: err.Error()}
		if m := reSyntax.FindStringSubmatch(e.Msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = "yaml: " + m[2]
		}
		if parserProblems[strings.TrimPrefix(e.Msg, "yaml: ")] {
			// yaml.v3 reports the parser's (not the scanner's) errors with 0-based line
			// numbers, and with none at all on the first line.
			e.Line++
		}
		p.errs = append(p.errs, e)
		return
	}
	var idx map[int][]indexed
	if p.root != nil {
		idx = index(p.root)
	}
	for _, s := range te.Errors {
		e := &Error{File: p.file, Msg: s}
		if m := reLine.FindStringSubmatch(s); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
			e.Path, e.Msg = translate(idx[e.Line], e.Line, e.Msg)
		}
		p.errs = append(p.errs, e)
	}
}

// translate rewrites one of yaml.v3's per-field messages found at line, returning the
// path of the field it is about (found among the nodes idx on that line) and a message in
// this package's words.
func translate(idx []indexed, line int, msg string) (path, newMsg string) {
	if m := reUnknown.FindStringSubmatch(msg); m != nil {
		for _, x := range idx {
			if x.key != nil && x.key.Line == line && x.key.Value == m[1] {
				return x.path, "unknown field"
			}
		}
		return m[1], "unknown field"
	}
	if m := reDuplicate.FindStringSubmatch(msg); m != nil {
		key := m[1]
		if k, err := strconv.Unquote(key); err == nil {
			key = k
		}
		for _, x := range idx {
			if x.key != nil && x.key.Line == line && x.key.Value == key {
				return x.path, "duplicate key (first set on line " + m[2] + ")"
			}
		}
		return key, "duplicate key (first set on line " + m[2] + ")"
	}
	if m := reUnmarshal.FindStringSubmatch(msg); m != nil {
		tag, shown, into := m[1], m[2], m[3]
		for _, x := range idx {
			if x.val.Line == line && strings.HasPrefix(msg, "cannot unmarshal "+describeLikeYAML(x.val)+" into ") {
				return x.path, typeMismatch(tag, x.val.Value, into)
			}
		}
		return "", typeMismatch(tag, shown, into)
	}
	return "", msg
}

// describeLikeYAML renders n as yaml.v3's "cannot unmarshal" message does, so that the
// node a message is about can be told apart from others on the same line.
func describeLikeYAML(n *yaml.Node) string {
	tag := n.ShortTag()
	if tag == "!!seq" || tag == "!!map" {
		return tag
	}
	v := n.Value
	if len(v) > 10 {
		v = v[:7] + "..."
	}
	return tag + " `" + v + "`"
}

// typeMismatch explains that a value tagged tag, written value, cannot be a Go type into.
func typeMismatch(tag, value, into string) string {
	got, ok := kindArticles[tag]
	if !ok {
		got = tag
	}
	scalar := tag != "!!map" && tag != "!!seq"
	switch {
	case into == "time.Duration" && scalar:
		return fmt.Sprintf("invalid duration %q: write a number with a unit, like 30s or 500ms", value)
	case into == "time.Duration":
		return "expected a duration, like 30s, got " + got
	case into == "int" && scalar:
		return fmt.Sprintf("%q is not a whole number", value)
	case into == "int":
		return "expected a whole number, got " + got
	case into == "string":
		return "expected a string, got " + got
	case strings.HasPrefix(into, "[]"):
		return "expected a list, got " + got
	case strings.HasPrefix(into, "config."):
		return "expected a mapping, got " + got
	}
	return fmt.Sprintf("cannot decode %s as %s", got, into)
}

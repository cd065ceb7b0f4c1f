package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func FuzzParse(f *testing.F) {
	f.Add(Default())
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", c != nil, err)
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("Parse error %T %q is not a non-empty Errors", err, err)
			}
			maxLine := countLines(data) + 1 // the end of the file may be on the line after

			for _, e := range es {
				if e.File != "fuzz.yaml" || e.Msg == "" || e.Line < 0 || e.Line > maxLine {
					t.Fatalf("malformed error %#v for a file of %d lines", e, maxLine-1)
				}
			}
			return
		}
		for i := range c.Lines {
			if l, ok := c.LookupLine(c.Lines[i].Number); !ok || l != &c.Lines[i] {
				t.Fatalf("LookupLine(%q) did not find lines[%d]", c.Lines[i].Number, i)
			}
		}
		// Print and parse again: the config must survive unchanged.
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := Parse("again.yaml", out)
		if err != nil {
			t.Fatalf("Parse of marshalled config: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, c2)
		}
	})
}

// countLines counts the lines of data as YAML does: \r\n, \r, \n, NEL, LS and PS each
// end one.
func countLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, br := range []string{"\r", "\n", "\u0085", "\u2028", "\u2029"} {
		n += strings.Count(s, br)
	}
	return n
}

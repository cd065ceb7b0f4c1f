package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parser holds what Parse knows about one file while it reports errors.
type parser struct {
	file string
	root *yaml.Node // the document node; nil for an empty file
	errs Errors
}

// errorf records an error about the field at path, on the line where that field is
// written (or, when it is absent, where its nearest written parent is).
func (p *parser) errorf(path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: p.lineOf(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of the field at path, such as "lines[2].number". When the field
// is absent it returns the line of the closest ancestor that is present; 0 for an empty
// file.
func (p *parser) lineOf(path string) int {
	_, line := p.find(path)
	return line
}

// find returns the value node of the field at path, or nil when it is absent, and the
// line lineOf reports for it. Aliases are not followed on the way, so the walk stays
// linear however much aliasing the file has: the alias's line stands for everything
// inside it. The value itself may be an alias; find returns what it refers to.
func (p *parser) find(path string) (*yaml.Node, int) {
	if p.root == nil || len(p.root.Content) == 0 {
		return nil, 0
	}
	n := p.root.Content[0]
	line := n.Line
	for _, seg := range splitPath(path) {
		switch {
		case seg.key != "" && n.Kind == yaml.MappingNode:
			k, v := lookupKey(n, seg.key)
			if k == nil {
				return nil, line
			}
			line = k.Line
			if v.Kind == yaml.ScalarNode || v.Kind == yaml.AliasNode {
				// The value is what is wrong; it may sit on a line of its own.
				line = v.Line
			}
			n = v
		case seg.key == "" && n.Kind == yaml.SequenceNode && seg.index < len(n.Content):
			n = n.Content[seg.index]
			line = n.Line
		default:
			return nil, line
		}
	}
	if n.Kind == yaml.AliasNode {
		return n.Alias, line
	}
	return n, line
}

// lookupKey finds key in mapping node m, returning the key and value nodes.
func lookupKey(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// segment is one step of a field path: a mapping key, or (when key is "") a list index.
type segment struct {
	key   string
	index int
}

// splitPath splits "ivr.languages[1].digit" into ivr, languages, [1], digit.
func splitPath(path string) []segment {
	var segs []segment
	if path == "" {
		return nil
	}
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			segs = append(segs, segment{key: name})
		}
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if err != nil {
				break
			}
			segs = append(segs, segment{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return segs
}

// indexed is one node of the tree with the field path it is at; key is nil for list items
// and the root.
type indexed struct {
	path     string
	key, val *yaml.Node
}

// index lists every node under the document node doc with its path, in document order,
// by line (the key's line for a mapping value). Aliases are not followed, so the walk is
// linear in the size of the file however much aliasing it contains.
func index(doc *yaml.Node) map[int][]indexed {
	out := make(map[int][]indexed)
	var walk func(path string, key, n *yaml.Node)
	walk = func(path string, key, n *yaml.Node) {
		x := indexed{path: path, key: key, val: n}
		out[n.Line] = append(out[n.Line], x)
		if key != nil && key.Line != n.Line {
			out[key.Line] = append(out[key.Line], x)
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				walk(joinPath(path, k.Value), k, n.Content[i+1])
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				walk(fmt.Sprintf("%s[%d]", path, i), nil, item)
			}
		}
	}
	for _, n := range doc.Content {
		walk("", nil, n)
	}
	return out
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

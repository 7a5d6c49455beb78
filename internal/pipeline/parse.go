package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

const (
	// maxProblems bounds the error so it fits in a status condition message.
	maxProblems = 20
	// maxDepth is far deeper than any valid file (5 levels) and shallow
	// enough that walking the tree can never exhaust the stack.
	maxDepth = 20
	// maxShown bounds user-controlled text quoted back in problems.
	maxShown = 64
)

// Parse parses and validates the contents of build/flow-ci.yaml. The
// returned error is always an *Error.
func Parse(data []byte) (*Definition, error) {
	if len(data) > MaxFileSize {
		return nil, single(Problem{Msg: fmt.Sprintf("file is %d bytes, larger than the limit of %d", len(data), MaxFileSize)})
	}
	top, p := decodeDocument(data)
	if p != nil {
		return nil, single(*p)
	}
	// An unsafe shape stops parsing outright: validation must never see an
	// alias, and problems found below an unsafe node would only be noise.
	if p := checkShape(top, "", 1); p != nil {
		return nil, single(*p)
	}
	v := &validator{}
	pl := v.pipeline(top)
	if len(v.problems) > 0 {
		return nil, v.err()
	}
	sum := sha256.Sum256(data)
	return &Definition{Pipeline: pl, Digest: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

func single(p Problem) *Error { return &Error{Problems: []Problem{p}} }

// decodeDocument returns the top-level mapping of the file's only document.
func decodeDocument(data []byte) (*yaml.Node, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Problem{Msg: "file is empty"}
		}
		return nil, syntaxProblem(err)
	}
	// A second document would be silently ignored by a plain Unmarshal; a
	// file that means two different things is refused instead.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err)
	default:
		return nil, &Problem{Line: extra.Line, Msg: "multiple YAML documents are not supported"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Problem{Line: doc.Line, Msg: "file is not a single YAML document"}
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, &Problem{Line: top.Line, Msg: "top level must be a mapping, got " + describe(top)}
	}
	return top, nil
}

// syntaxProblem turns a yaml.v3 error ("yaml: line 3: msg") into a Problem
// with the line split out so it formats like every other problem.
func syntaxProblem(err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, tail
			}
		}
	}
	return &Problem{Line: line, Msg: "invalid YAML: " + shorten(msg, 200)}
}

// checkShape rejects anchors, aliases and deep nesting anywhere in the
// tree, including under fields validation would reject anyway. Refusing
// aliases outright (rather than bounding their expansion) makes "billion
// laughs" files cost no more than their size. It returns the first problem
// in document order.
func checkShape(n *yaml.Node, path string, depth int) *Problem {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return &Problem{Path: path, Line: n.Line, Msg: "anchors and aliases are not supported"}
	}
	if depth > maxDepth {
		return &Problem{Path: path, Line: n.Line, Msg: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kp := keyPath(path, k.Value)
			if p := checkShape(k, kp, depth+1); p != nil {
				return p
			}
			if p := checkShape(val, kp, depth+1); p != nil {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := checkShape(c, indexPath(path, i), depth+1); p != nil {
				return p
			}
		}
	}
	return nil
}

// validator collects problems while converting the tree into typed values.
type validator struct {
	problems []Problem
}

func (v *validator) add(n *yaml.Node, path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

// err sorts the problems by line and bounds their number, noting how many
// were dropped so the user knows to look again after fixing the first ones.
func (v *validator) err() *Error {
	ps := v.problems
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	if extra := len(ps) - maxProblems; extra > 0 {
		ps = append(ps[:maxProblems:maxProblems], Problem{Msg: fmt.Sprintf("%d more problems not shown", extra)})
	}
	return &Error{Problems: ps}
}

// keyPath appends a mapping key to path. Keys that are not plain
// identifiers are quoted and shortened so that problems stay one readable
// line whatever the file contains.
func keyPath(parent, key string) string {
	if !isPlainKey(key) {
		return parent + "[" + strconv.Quote(shorten(key, maxShown)) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func isPlainKey(s string) bool {
	if s == "" || len(s) > maxShown {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// shorten cuts s to at most n bytes plus an ellipsis, keeping the head, without splitting
// a UTF-8 sequence.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// quote formats user text for a message: quoted, escaped and shortened.
func quote(s string) string { return strconv.Quote(shorten(s, maxShown)) }

// describe names a node's kind for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!timestamp":
			return "a timestamp"
		default:
			return "a value tagged " + quote(tag)
		}
	}
	return "an unsupported node"
}

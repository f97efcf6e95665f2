package topology

import (
	"bytes"
	"errors"
	"io"

	"go.yaml.in/yaml/v3"
)

// MaxMappingKeys bounds the keys of any one YAML mapping in a spec: more
// than MaxNodes entries in nodes:, and far more than an env: needs.
const MaxMappingKeys = 4096

// checkShape parses data into YAML nodes only (no decoding into the spec's
// types, no alias expansion) and refuses the shapes that make the decoder
// blow up: yaml.v3 checks a mapping for duplicate keys by comparing every
// pair and records one message per duplicate pair, so 100,000 copies of one
// key (900 KB) took more than 2.7 GB and the OOM killer; and even distinct
// keys cost n² comparisons. Here each mapping is checked once with a set,
// and bounded in size, before the real decode.
func checkShape(data []byte) error {
	var root yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root)
	if errors.Is(err, io.EOF) {
		return nil // empty: Parse says so
	}
	if err != nil {
		return explainYAML(err)
	}
	type key struct {
		kind  yaml.Kind
		value string
	}
	stack := []*yaml.Node{&root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Kind == yaml.MappingNode {
			if len(n.Content)/2 > MaxMappingKeys {
				return specErr("(yaml)", "line %d: a mapping of %d keys: at most %d", n.Line, len(n.Content)/2, MaxMappingKeys)
			}
			seen := make(map[key]int, len(n.Content)/2)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if first, dup := seen[key{k.Kind, k.Value}]; dup {
					return specErr("(yaml)", "line %d: mapping key %q already defined at line %d", k.Line, short(k.Value), first)
				}
				seen[key{k.Kind, k.Value}] = k.Line
			}
		}
		// Aliases are not followed: their targets are walked where they
		// are defined.
		stack = append(stack, n.Content...)
	}
	return nil
}

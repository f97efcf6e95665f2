// Package cli holds vmux's cobra commands. It is deliberately thin: every
// command parses flags, calls a library package and renders the result as a
// table or JSON. Each command group lives in its own file and registers itself
// with register() from an init function, so groups can be added without
// touching the root command.
package cli

package topology

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/safefile"
	"github.com/vmux/vmux/rt/vclock"
)

// TestSpecsThatValidateButBreak reproduces issue 10, item 9: each of these
// compiled, then gave a broken experiment (every dilated exec failing, the
// node's init OOM-killed, pings answered by the node's own loopback, a
// node taking over localhost in every hosts file).
func TestSpecsThatValidateButBreak(t *testing.T) {
	two := "nodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\n"
	for _, c := range []struct{ name, spec, want string }{
		{"tdf 1e-9", "name: e\ntdf: 1e-9\n" + two, "tdf"},
		{"tdf below dilation's minimum", "name: e\ntdf: 0.0009\n" + two, "tdf"},
		{"tdf above the maximum", "name: e\ntdf: 10001\n" + two, "tdf"},
		{"tdf too precise for vmux run", "name: e\ntdf: 0.00123456789\n" + two, "tdf"},
		{"memory 1Mi", "name: e\nnodes: {a: {memory: 1Mi}, b: {}}\nlinks: [{ends: [a, b]}]\n", "nodes.a.memory"},
		{"memory 15Mi", "name: e\nnodes: {a: {memory: 15Mi}, b: {}}\nlinks: [{ends: [a, b]}]\n", "nodes.a.memory"},
		{"cpu below the kernel quota at tdf", "name: e\ntdf: 10\nnodes: {a: {cpu: 0.05}, b: {}}\nlinks: [{ends: [a, b]}]\n", "nodes.a.cpu"},
		{"disk below 1 B/s real", "name: e\ntdf: 100\nnodes: {a: {disk: {read: 50B/s}}, b: {}}\nlinks: [{ends: [a, b]}]\n", "nodes.a.disk.read"},
		{"loopback subnet", "name: e\nsubnet: 127.0.0.0/8\n" + two, "loopback"},
		{"inside loopback", "name: e\nsubnet: 127.5.0.0/16\n" + two, "loopback"},
		{"covering loopback", "name: e\nsubnet: 96.0.0.0/3\n" + two, "between /8 and /30"},
		{"link-local subnet", "name: e\nsubnet: 169.254.0.0/16\n" + two, "link-local"},
		{"multicast subnet", "name: e\nsubnet: 239.1.0.0/16\n" + two, "multicast"},
		{"this-network subnet", "name: e\nsubnet: 0.0.0.0/8\n" + two, "this network"},
		{"class E subnet", "name: e\nsubnet: 250.0.0.0/8\n" + two, "reserved"},
		{"node named localhost", "name: e\nnodes: {localhost: {}, b: {}}\nlinks: [{ends: [localhost, b]}]\n", "reserved"},
		{"node named ip6-localhost", "name: e\nnodes: {ip6-localhost: {}, b: {}}\nlinks: [{ends: [ip6-localhost, b]}]\n", "reserved"},
		{"numeric node name", "name: e\nnodes: {\"10\": {}, b: {}}\nlinks: [{ends: [\"10\", b]}]\n", "all digits"},
		{"switch named localhost", "name: e\nnodes: {a: {}, b: {}}\nswitches: [localhost]\nlinks: [{ends: [a, localhost]}, {ends: [b, localhost]}]\n", "reserved"},
		{"latency that overflows when scaled", "name: e\ntdf: 10000\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], latency: 2000000h}]\n", "latency"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.spec))
			if err == nil {
				t.Fatalf("accepted; want an error about %q", c.want)
			}
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q: want ErrInvalidSpec mentioning %q", err, c.want)
			}
		})
	}
	// The edges of what works stay accepted.
	for _, ok := range []string{
		"name: e\ntdf: 0.001\n" + two, "name: e\ntdf: 10000\n" + two, "name: e\ntdf: 2.5\n" + two,
		"name: e\nnodes: {a: {memory: 16Mi}, b: {}}\nlinks: [{ends: [a, b]}]\n",
		"name: e\ntdf: 10\nnodes: {a: {cpu: 0.1}, b: {}}\nlinks: [{ends: [a, b]}]\n",
		"name: e\nsubnet: 100.64.0.0/16\n" + two, "name: e\nsubnet: 198.18.0.0/15\n" + two,
		"name: e\nnodes: {localhost1: {}, b: {}}\nlinks: [{ends: [localhost1, b]}]\n",
		"name: e\nnodes: {web: {count: 3}}\nswitches: [s]\nlinks: [{ends: [web, s]}]\n",
	} {
		if _, err := Decode([]byte(ok)); err != nil {
			t.Errorf("spec %q rejected: %v", ok, err)
		}
	}
}

// TestTDFBoundsAreDilations: the spec's bounds on tdf are vclock's, the
// ones vmux run applies.
func TestTDFBoundsAreDilations(t *testing.T) {
	two := "\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\n"
	for _, k := range []string{vclock.MinTDF.String(), vclock.MaxTDF.String()} {
		if _, err := Decode([]byte("name: e\ntdf: " + k + two)); err != nil {
			t.Errorf("tdf %v (a bound of vmux run) refused: %v", k, err)
		}
	}
	for _, k := range []string{"0.000999", "10000.001"} {
		if _, err := Decode([]byte("name: e\ntdf: " + k + two)); err == nil {
			t.Errorf("tdf %v (outside vmux run's bounds) accepted", k)
		}
	}
}

// TestReadFileHostile reproduces issue 10, item 4: `vmux net up /dev/zero`
// read 24 GB before the size check, and `vmux net up FIFO` blocked in
// open. ReadFile refuses both at once, and a regular file over the bound
// after reading at most MaxSpecBytes+1 bytes.
func TestReadFileHostile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	f, _ := os.Create(big)
	f.Truncate(1 << 40) // a sparse terabyte
	f.Close()
	for _, p := range []string{"/dev/zero", "/dev/urandom", fifo, dir, big} {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		done := make(chan error, 1)
		go func() { _, err := Load(p); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("Load(%s): %v, want ErrInvalidSpec", p, err)
			}
			if !errors.Is(err, safefile.ErrNotRegular) && !errors.Is(err, safefile.ErrTooLarge) {
				t.Errorf("Load(%s): %v, want ErrNotRegular or ErrTooLarge", p, err)
			}
		case <-time.After(5 * time.Second):
			os.WriteFile(fifo, nil, 0)
			t.Fatalf("Load(%s) blocked", p)
		}
		runtime.ReadMemStats(&ms)
		if got := ms.TotalAlloc - before; got > 2*MaxSpecBytes {
			t.Errorf("Load(%s) allocated %d bytes", p, got)
		}
	}
}

// TestParseHostileSizes: inputs at the size bound built to blow up a YAML
// decoder (an alias bomb, deep nesting, huge counts and numbers) fail
// quickly with ErrInvalidSpec, never a panic or a huge allocation.
func TestParseHostileSizes(t *testing.T) {
	for name, spec := range hostileSpecs() {
		t.Run(name, func(t *testing.T) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			t0 := time.Now()
			_, err := Decode(spec)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error not ErrInvalidSpec: %.300v", err)
			}
			runtime.ReadMemStats(&ms)
			if d, got := time.Since(t0), ms.TotalAlloc-before; d > 20*time.Second || got > 256<<20 {
				t.Errorf("took %v and %d MiB", d, got>>20)
			}
			// The report is bounded too: a million mistakes are not a
			// million lines, and a 4 MiB name is not echoed whole.
			if len(err.Error()) > 16<<10 {
				t.Errorf("error of %d bytes", len(err.Error()))
			}
		})
	}
}

// hostileSpecs are specs of hostile sizes, also the fuzzer's seeds.
func hostileSpecs() map[string][]byte {
	// An alias bomb ("billion laughs") through the one recursive type of
	// the spec: 10 levels of 10 aliases each to the level below.
	bomb := "name: e\nnodes: {a: {}}\nworkload:\n  tolerances:\n    metrics:\n      l0: &l0 {ks: 0.5}\n"
	for i := 1; i < 10; i++ {
		bomb += fmt.Sprintf("      l%d: &l%d {metrics: {", i, i)
		for j := range 10 {
			bomb += fmt.Sprintf("m%d: *l%d, ", j, i-1)
		}
		bomb += "}}\n"
	}
	return map[string][]byte{
		"alias bomb":     []byte(bomb),
		"deep nesting":   []byte("name: e\nnodes: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n"),
		"deep maps":      []byte("name: e\nnodes: " + strings.Repeat("{a: ", 50000) + "1" + strings.Repeat("}", 50000) + "\n"),
		"huge count":     []byte("name: e\nnodes: {a: {count: 9223372036854775807}}\n"),
		"many groups":    []byte("name: e\nnodes: {" + strings.Repeat("g: {count: 1024}, ", 1) + "h: {count: 1024}}\nswitches: [s]\nlinks: [{ends: [g, s]}, {ends: [h, s]}]\n"),
		"huge size":      []byte("name: e\nnodes: {a: {memory: 99999999999999999999999Ei}}\n"),
		"huge bandwidth": []byte("name: e\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], bandwidth: 1e308Gbit}]\n"),
		"long name":      []byte("name: " + strings.Repeat("a", MaxSpecBytes-16) + "\n"),
		"too big":        []byte("name: e\n#" + strings.Repeat("x", MaxSpecBytes) + "\n"),
		"many links":     []byte("name: e\nnodes: {a: {}, b: {}}\nlinks: [" + strings.Repeat("{ends: [a, b]}, ", MaxSpecBytes/16-8) + "]\n"),
		"many ends":      []byte("name: e\nnodes: {a: {}, b: {}}\nlinks: [{ends: [" + strings.Repeat("a, ", MaxSpecBytes/3-20) + "b]}]\n"),
		"unknown keys":   []byte("name: e\n" + strings.Repeat("bogus: 1\n", MaxSpecBytes/9-4)),
		"bad values":     []byte("name: e\nnodes: {a: {}, b: {}}\nlinks: [" + strings.Repeat("{ends: [a, b], latency: x}, ", MaxSpecBytes/28-8) + "]\n"),
		"long node name": []byte("name: e\nnodes: {" + strings.Repeat("n", MaxSpecBytes-32) + ": {}}\n"),
	}
}

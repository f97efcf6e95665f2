package mem

import (
	"fmt"
	"strings"

	"github.com/vmux/vmux/mem/codec"
	"github.com/vmux/vmux/mem/similar"
)

// Defaults applied by NewEngine to zero Config fields.
const (
	DefaultDetector      = similar.DefaultName // "sketch"
	DefaultCodec         = "lz4"
	DefaultMaxPatch      = 2048
	DefaultMaxCompressed = 2048
	DefaultCandidates    = 2
)

// Config selects the engine's mechanisms. The zero value is the default.
type Config struct {
	// Detector is the similarity detector: "hsd21" (the paper's
	// HashSimilarityDetector(2,1), the baseline) or "sketch" (the default:
	// content-defined bottom-k fingerprints, several candidates). Empty
	// means the default. "none" disables patching.
	Detector string
	// Codec compresses what is neither shared nor patched: "lz4" (default),
	// "zstd" or "none".
	Codec string
	// MaxPatch: a patch is kept only if it is at most this many bytes
	// (default 2048, half a page).
	MaxPatch int
	// MaxCompressed: a page stays compressed only if its compressed form is
	// at most this many bytes (default 2048).
	MaxCompressed int
	// CrossDomain lets pages be shared with, and patched against, pages of
	// other trust domains. Off by default: cross-tenant deduplication is a
	// timing side channel.
	CrossDomain bool
	// Candidates is how many candidate references are delta-encoded per
	// page, keeping the smallest patch (default 2, as many as hsd21 can yield).
	Candidates int
}

// Detectors lists the valid Config.Detector names, default first.
func Detectors() []string { return similar.Names() }

// Codecs lists the valid Config.Codec names, default first.
func Codecs() []string { return codec.Names() }

// Normalize validates cfg and fills in its defaults, as NewEngine does; for
// engines built on the same mechanisms (the live engine, mem/live).
func Normalize(cfg Config) (Config, error) { return cfg.withDefaults() }

// withDefaults validates cfg and fills in defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Detector == "" {
		cfg.Detector = DefaultDetector
	}
	if cfg.Codec == "" {
		cfg.Codec = DefaultCodec
	}
	if cfg.MaxPatch == 0 {
		cfg.MaxPatch = DefaultMaxPatch
	}
	if cfg.MaxCompressed == 0 {
		cfg.MaxCompressed = DefaultMaxCompressed
	}
	if cfg.Candidates == 0 {
		cfg.Candidates = DefaultCandidates
	}
	if !similar.Valid(cfg.Detector) {
		return cfg, fmt.Errorf("%w %q: use one of %s", ErrUnknownDetector, cfg.Detector, strings.Join(Detectors(), ", "))
	}
	if _, err := codec.Get(cfg.Codec); err != nil {
		return cfg, fmt.Errorf("%w %q: use one of %s", ErrUnknownCodec, cfg.Codec, strings.Join(Codecs(), ", "))
	}
	if cfg.MaxPatch < 0 || cfg.MaxPatch > PageSize {
		return cfg, fmt.Errorf("%w: MaxPatch %d: use 1..%d bytes", ErrBadConfig, cfg.MaxPatch, PageSize)
	}
	if cfg.MaxCompressed < 0 || cfg.MaxCompressed > PageSize {
		return cfg, fmt.Errorf("%w: MaxCompressed %d: use 1..%d bytes", ErrBadConfig, cfg.MaxCompressed, PageSize)
	}
	if cfg.Candidates < 0 || cfg.Candidates > 16 {
		return cfg, fmt.Errorf("%w: Candidates %d: use 1..16", ErrBadConfig, cfg.Candidates)
	}
	return cfg, nil
}

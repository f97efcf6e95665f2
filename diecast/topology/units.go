package topology

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Bitrate is a link bandwidth in bits per second. Zero means unlimited.
type Bitrate float64

// ByteRate is a disk throughput in bytes per second. Zero means unlimited.
type ByteRate float64

// Duration is a non-negative time span such as "5ms" or "250us".
type Duration time.Duration

// Fraction is a probability in [0, 1], written "0.1%" or "0.001".
type Fraction float64

// ByteSize is a size in bytes, written "64KiB", "256Mi", "1G" or "1500".
type ByteSize int64

// Bit-rate units: bits per second unless the unit ends in "/s", which means
// bytes per second (so "MB/s" is megabytes and "Mbit"/"Mbps" megabits).
var bitUnits = map[string]float64{
	"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
	"bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9, "tbps": 1e12,
}

// Size units: decimal (k, KB, M, MB...) and binary (Ki, KiB, Mi, MiB...),
// as Kubernetes and IEC write them.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20,
	"gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
}

// splitNumber splits "100Mbit" into 100 and "Mbit".
func splitNumber(s string) (float64, string, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == '-' || s[i] == '+' || s[i] == 'e' && i > 0 && i+1 < len(s) && (s[i+1] >= '0' && s[i+1] <= '9' || s[i+1] == '-')) {
		i++
	}
	if i == 0 {
		return 0, "", fmt.Errorf("%q does not start with a number", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, "", fmt.Errorf("%q is not a number", s[:i])
	}
	if v < 0 {
		return 0, "", fmt.Errorf("%q is negative", s)
	}
	return v, strings.TrimSpace(s[i:]), nil
}

// ParseBitrate parses "100Mbit", "1Gbit", "10Mbps" (bits) or "50MB/s",
// "1GiB/s" (bytes). A bare number is rejected: the unit is ambiguous.
func ParseBitrate(s string) (Bitrate, error) {
	v, unit, err := splitNumber(s)
	if err != nil {
		return 0, badUnit("bandwidth", s, err)
	}
	if bytes, ok := strings.CutSuffix(unit, "/s"); ok {
		m, ok := sizeUnits[strings.ToLower(bytes)]
		if !ok || bytes == "" {
			return 0, badUnit("bandwidth", s, fmt.Errorf("unknown unit %q", unit))
		}
		return Bitrate(v * m * 8), nil
	}
	if unit == "" {
		if v == 0 {
			return 0, nil
		}
		return 0, badUnit("bandwidth", s, fmt.Errorf("missing unit"))
	}
	m, ok := bitUnits[strings.ToLower(unit)]
	if !ok {
		return 0, badUnit("bandwidth", s, fmt.Errorf("unknown unit %q", unit))
	}
	return Bitrate(v * m), nil
}

// ParseByteRate parses a disk throughput such as "50MB/s" or "20MiB/s".
func ParseByteRate(s string) (ByteRate, error) {
	v, unit, err := splitNumber(s)
	if err != nil {
		return 0, badUnit("byte rate", s, err)
	}
	bytes, ok := strings.CutSuffix(unit, "/s")
	if !ok {
		if v == 0 && unit == "" {
			return 0, nil
		}
		return 0, badUnit("byte rate", s, fmt.Errorf("unit %q does not end in /s", unit))
	}
	m, ok := sizeUnits[strings.ToLower(bytes)]
	if !ok || bytes == "" {
		return 0, badUnit("byte rate", s, fmt.Errorf("unknown unit %q", unit))
	}
	return ByteRate(v * m), nil
}

// ParseDuration parses "5ms", "250us", "1.5s"; a bare 0 is allowed.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badUnit("duration", s, fmt.Errorf("not a duration"))
	}
	if d < 0 {
		return 0, badUnit("duration", s, fmt.Errorf("negative"))
	}
	return Duration(d), nil
}

// ParseFraction parses "0.1%" or a plain probability "0.001".
func ParseFraction(s string) (Fraction, error) {
	v, unit, err := splitNumber(s)
	if err != nil {
		return 0, badUnit("fraction", s, err)
	}
	switch unit {
	case "%":
		v /= 100
	case "":
	default:
		return 0, badUnit("fraction", s, fmt.Errorf("unknown unit %q", unit))
	}
	if v > 1 {
		return 0, badUnit("fraction", s, fmt.Errorf("above 100%%"))
	}
	return Fraction(v), nil
}

// ParseByteSize parses "64KiB", "256Mi", "1G", "1500B" or "1500".
func ParseByteSize(s string) (ByteSize, error) {
	v, unit, err := splitNumber(s)
	if err != nil {
		return 0, badUnit("size", s, err)
	}
	m, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, badUnit("size", s, fmt.Errorf("unknown unit %q", unit))
	}
	b := v * m
	if b > math.MaxInt64/2 {
		return 0, badUnit("size", s, fmt.Errorf("too large"))
	}
	return ByteSize(math.Round(b)), nil
}

// unitHelp says how each kind of value is written, for error messages.
var unitHelp = map[string]string{
	"bandwidth": `write bits like "100Mbit", "1Gbit", "10kbit" or bytes like "50MB/s"`,
	"byte rate": `write bytes per second like "50MB/s" or "20MiB/s"`,
	"duration":  `write a duration like "5ms", "250us" or "1.5s"`,
	"fraction":  `write a percentage like "0.1%" or a probability like "0.001"`,
	"size":      `write a size like "64KiB", "256Mi", "1G" or "1500"`,
}

func badUnit(kind, s string, err error) error {
	return &UnitError{Kind: kind, Value: s, Err: err}
}

// scalar returns the text of a YAML scalar node (numbers included).
func scalar(n *yaml.Node, kind string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", &UnitError{Kind: kind, Value: n.Value, Line: n.Line, Err: fmt.Errorf("expected a single value")}
	}
	return n.Value, nil
}

// withLine adds the YAML line to a UnitError.
func withLine(err error, n *yaml.Node) error {
	if ue, ok := err.(*UnitError); ok {
		ue.Line = n.Line
	}
	return err
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Bitrate) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "bandwidth")
	if err == nil {
		*b, err = ParseBitrate(s)
	}
	return withLine(err, n)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteRate) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "byte rate")
	if err == nil {
		*b, err = ParseByteRate(s)
	}
	return withLine(err, n)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "duration")
	if err == nil {
		*d, err = ParseDuration(s)
	}
	return withLine(err, n)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (f *Fraction) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "fraction")
	if err == nil {
		*f, err = ParseFraction(s)
	}
	return withLine(err, n)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "size")
	if err == nil {
		*b, err = ParseByteSize(s)
	}
	return withLine(err, n)
}

// String formats a bit rate with the largest exact-ish unit.
func (b Bitrate) String() string {
	switch {
	case b == 0:
		return "unlimited"
	case b >= 1e9:
		return strconv.FormatFloat(float64(b)/1e9, 'g', 6, 64) + "Gbit"
	case b >= 1e6:
		return strconv.FormatFloat(float64(b)/1e6, 'g', 6, 64) + "Mbit"
	case b >= 1e3:
		return strconv.FormatFloat(float64(b)/1e3, 'g', 6, 64) + "kbit"
	}
	return strconv.FormatFloat(float64(b), 'g', 6, 64) + "bit"
}

// String formats the duration as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// String formats the fraction as a percentage.
func (f Fraction) String() string {
	return strconv.FormatFloat(float64(f)*100, 'g', 6, 64) + "%"
}

// String formats the size in bytes with a binary unit where exact.
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return strconv.FormatInt(int64(b)>>30, 10) + "GiB"
	case b != 0 && b%(1<<20) == 0:
		return strconv.FormatInt(int64(b)>>20, 10) + "MiB"
	case b != 0 && b%(1<<10) == 0:
		return strconv.FormatInt(int64(b)>>10, 10) + "KiB"
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

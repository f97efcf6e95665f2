package topology

import (
	"errors"
	"testing"
	"time"
)

func TestParseBitrate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Bitrate
		bad  bool
	}{
		{"100Mbit", 100e6, false},
		{"1Gbit", 1e9, false},
		{"10kbit", 10e3, false},
		{"10mbit", 10e6, false},
		{"2.5Gbps", 2.5e9, false},
		{"50MB/s", 400e6, false},
		{"1MiB/s", 8 << 20, false},
		{"0", 0, false},
		{"100", 0, true},
		{"100Mbt", 0, true},
		{"-1Mbit", 0, true},
		{"Mbit", 0, true},
		{"1e3bit", 1000, false},
		{"NaNbit", 0, true},
		{"5/s", 0, true},
	} {
		got, err := ParseBitrate(c.in)
		if c.bad {
			if err == nil || !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("ParseBitrate(%q) = %v, %v; want an ErrInvalidSpec error", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseBitrate(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseOtherUnits(t *testing.T) {
	sizes := map[string]ByteSize{"64KiB": 64 << 10, "256Mi": 256 << 20, "1G": 1e9, "1500": 1500, "1500B": 1500, "2kb": 2000, "1.5Ki": 1536}
	for in, want := range sizes {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"64XB", "-1", "", "1e300Ti"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
	durs := map[string]time.Duration{"5ms": 5 * time.Millisecond, "250us": 250 * time.Microsecond, "1.5s": 1500 * time.Millisecond, "0": 0, "250µs": 250 * time.Microsecond}
	for in, want := range durs {
		if got, err := ParseDuration(in); err != nil || time.Duration(got) != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"5", "-5ms", "5 parsecs", ""} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
	fr := map[string]Fraction{"0.1%": 0.001, "0%": 0, "0.001": 0.001, "100%": 1, "1": 1}
	for in, want := range fr {
		if got, err := ParseFraction(in); err != nil || got != want {
			t.Errorf("ParseFraction(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"5", "101%", "-1%", "1x"} {
		if _, err := ParseFraction(in); err == nil {
			t.Errorf("ParseFraction(%q) accepted", in)
		}
	}
	rates := map[string]ByteRate{"50MB/s": 50e6, "20MiB/s": 20 << 20, "0": 0}
	for in, want := range rates {
		if got, err := ParseByteRate(in); err != nil || got != want {
			t.Errorf("ParseByteRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"50MB", "50", "5Zb/s"} {
		if _, err := ParseByteRate(in); err == nil {
			t.Errorf("ParseByteRate(%q) accepted", in)
		}
	}
}

func TestUnitStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Bitrate(100e6).String(), "100Mbit"},
		{Bitrate(0).String(), "unlimited"},
		{Bitrate(1.5e9).String(), "1.5Gbit"},
		{ByteSize(64 << 10).String(), "64KiB"},
		{ByteSize(1500).String(), "1500B"},
		{Fraction(0.001).String(), "0.1%"},
		{Duration(5 * time.Millisecond).String(), "5ms"},
	} {
		if c.got != c.want {
			t.Errorf("got %q want %q", c.got, c.want)
		}
	}
}

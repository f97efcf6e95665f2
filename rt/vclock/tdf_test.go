package vclock

import (
	"errors"
	"math"
	"testing"
)

func TestParseTDF(t *testing.T) {
	good := []struct {
		in       string
		num, den uint64
	}{
		{"10", 10, 1}, {"2.5", 5, 2}, {"0.5", 1, 2}, {"1/3", 1, 3}, {"1", 1, 1},
		{" 4 ", 4, 1}, {".5", 1, 2}, {"5.", 5, 1}, {"1.000", 1, 1}, {"0.001", 1, 1000},
		{"10000", 10000, 1}, {"6/4", 3, 2}, {"100/1", 100, 1}, {"0.333333333", 333333333, 1000000000},
	}
	for _, c := range good {
		k, err := ParseTDF(c.in)
		if err != nil {
			t.Errorf("ParseTDF(%q): %v", c.in, err)
			continue
		}
		if k.Num != c.num || k.Den != c.den {
			t.Errorf("ParseTDF(%q) = %d/%d, want %d/%d", c.in, k.Num, k.Den, c.num, c.den)
		}
		back, err := ParseTDF(k.String())
		if err != nil || back != k {
			t.Errorf("ParseTDF(%q).String() = %q does not round-trip: %v %v", c.in, k.String(), back, err)
		}
	}
	bad := []string{"", " ", "0", "0.0", "-1", "-0.5", "abc", "1/0", "0/5", "NaN", "nan", "inf", "+Inf",
		"1e3", "0.0001", "10001", "1//2", "1.2.3", "+5", "1/-2", "1 /2", "0x10", "1/3.5", "0.0000000001",
		"99999999999999999999", "1/1000000001", ".", "/", "1/", "/2", "١"}
	for _, in := range bad {
		k, err := ParseTDF(in)
		if err == nil {
			t.Errorf("ParseTDF(%q) = %v, want an error", in, k)
			continue
		}
		if !errors.Is(err, ErrBadTDF) {
			t.Errorf("ParseTDF(%q): error %v does not wrap ErrBadTDF", in, err)
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Input != in || pe.Reason == "" {
			t.Errorf("ParseTDF(%q): error %#v lacks input or reason", in, err)
		}
	}
}

func TestNewTDFValidate(t *testing.T) {
	if k, err := NewTDF(20, 2); err != nil || k != (TDF{10, 1}) {
		t.Errorf("NewTDF(20, 2) = %v, %v; want 10", k, err)
	}
	for _, c := range [][2]uint64{{0, 1}, {1, 0}, {1, 1001}, {10001, 1}, {maxTerm + 1, 1}} {
		if _, err := NewTDF(c[0], c[1]); !errors.Is(err, ErrBadTDF) {
			t.Errorf("NewTDF(%d, %d): err %v, want ErrBadTDF", c[0], c[1], err)
		}
	}
	if err := (TDF{}).Validate(); err == nil {
		t.Error("zero TDF validated")
	}
}

func TestMult(t *testing.T) {
	cases := []struct {
		k    TDF
		want uint64
	}{
		{One, 1 << 32},
		{TDF{10, 1}, 429496730}, // 429496729.6 rounds up
		{TDF{1, 2}, 1 << 33},
		{TDF{1, 3}, 3 << 32},
		{TDF{5, 2}, 1717986918}, // 1717986918.4
		{TDF{3, 1}, 1431655765}, // 1431655765.33
		{TDF{2, 3}, 6442450944},
		{MinTDF, 1000 << 32},
		{MaxTDF, 429497}, // 429496.7296
	}
	for _, c := range cases {
		if got := c.k.Mult(); got != c.want {
			t.Errorf("%v.Mult() = %d, want %d", c.k, got, c.want)
		}
		// The documented bound: relative error of mult <= k/2^33.
		exact := math.Ldexp(float64(c.k.Den)/float64(c.k.Num), 32)
		if rel := math.Abs(float64(c.k.Mult())-exact) / exact; rel > c.k.Float64()/math.Ldexp(1, 33)+1e-15 {
			t.Errorf("%v.Mult() relative error %g above k/2^33", c.k, rel)
		}
	}
	if got := fixedInverse(1, 1<<40); got != math.MaxUint64 {
		t.Errorf("fixedInverse overflow = %d, want saturation", got)
	}
}

func TestParseShare(t *testing.T) {
	for in, want := range map[string]Share{"1": {1, 1}, "0.25": {1, 4}, "1/10": {1, 10}, "0.0001": {1, 10000}} {
		if s, err := ParseShare(in); err != nil || s != want {
			t.Errorf("ParseShare(%q) = %v, %v; want %v", in, s, err, want)
		}
	}
	for _, in := range []string{"0", "1.5", "2", "-0.5", "x", "0.00001", "3/2"} {
		if _, err := ParseShare(in); !errors.Is(err, ErrBadShare) {
			t.Errorf("ParseShare(%q): err %v, want ErrBadShare", in, err)
		}
	}
}

func TestCPUMult(t *testing.T) {
	if got, want := CPUMult(FullShare, TDF{10, 1}), (TDF{10, 1}).Mult(); got != want {
		t.Errorf("CPUMult(1, 10) = %d, want the wall mult %d", got, want)
	}
	// DieCast: share 1/k at TDF k reads real CPU time.
	if got := CPUMult(Share{1, 10}, TDF{10, 1}); got != 1<<32 {
		t.Errorf("CPUMult(1/10, 10) = %d, want 2^32", got)
	}
	if got := CPUMult(Share{1, 2}, TDF{1, 2}); got != 4<<32 {
		t.Errorf("CPUMult(1/2, 1/2) = %d, want 4*2^32", got)
	}
}

func FuzzParseTDF(f *testing.F) {
	for _, s := range []string{"10", "2.5", "1/3", "0", "-1", "abc", "1e3", "0.001", "10000.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseTDF(s)
		if err != nil {
			if !errors.Is(err, ErrBadTDF) {
				t.Fatalf("ParseTDF(%q): error %v does not wrap ErrBadTDF", s, err)
			}
			return
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("ParseTDF(%q) = %v which does not validate: %v", s, k, err)
		}
		if gcd(k.Num, k.Den) != 1 {
			t.Fatalf("ParseTDF(%q) = %v not reduced", s, k)
		}
		if back, err := ParseTDF(k.String()); err != nil || back != k {
			t.Fatalf("ParseTDF(%q) = %v does not round-trip: %v, %v", s, k, back, err)
		}
		if m := k.Mult(); m == 0 || m == math.MaxUint64 {
			t.Fatalf("ParseTDF(%q) = %v has unusable mult %d", s, k, m)
		}
	})
}

package vclock

import (
	"errors"
	"testing"
)

func TestTDFFromFloat(t *testing.T) {
	for _, tc := range []struct {
		k    float64
		want string // "" = refused
	}{
		{10, "10"}, {2.5, "5/2"}, {0.001, "1/1000"}, {10000, "10000"}, {1, "1"},
		{1e-9, ""}, {0.0009, ""}, {10000.5, ""}, {0, ""}, {-1, ""},
		{0.00123456789, ""}, // 11 decimals: vmux run --tdf refuses it
	} {
		k, err := TDFFromFloat(tc.k)
		switch {
		case tc.want == "" && !errors.Is(err, ErrBadTDF):
			t.Errorf("TDFFromFloat(%v) = %v, %v: want ErrBadTDF", tc.k, k, err)
		case tc.want != "" && (err != nil || k.String() != tc.want):
			t.Errorf("TDFFromFloat(%v) = %v, %v: want %s", tc.k, k, err, tc.want)
		}
		if err == nil {
			if _, err := ParseTDF(k.String()); err != nil {
				t.Errorf("%v does not parse back: %v", k, err)
			}
		}
	}
}

func TestShareFromFloat(t *testing.T) {
	s, err := ShareFromFloat(0.5 / 3)
	if err != nil || s.String() != "166666667/1000000000" {
		t.Errorf("ShareFromFloat(0.5/3) = %v, %v", s, err)
	}
	if _, err := ParseShare(s.String()); err != nil {
		t.Errorf("%v does not parse back: %v", s, err)
	}
	for _, bad := range []float64{0, 1.5, 0.00001, -0.5} {
		if _, err := ShareFromFloat(bad); !errors.Is(err, ErrBadShare) {
			t.Errorf("ShareFromFloat(%v): %v, want ErrBadShare", bad, err)
		}
	}
}

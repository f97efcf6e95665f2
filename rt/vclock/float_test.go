package vclock

import (
	"errors"
	"testing"
)

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

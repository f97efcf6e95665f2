package cast

import (
	"math"
	"testing"
	"time"
)

func TestTimeMap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newTimeMap(t0, 4)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * 1e9)) }
	if v := m.virt(at(8)); v != 2 {
		t.Errorf("8 s real at k=4: %v virtual", v)
	}
	m.change(at(8), 2)  // 2 s virtual so far
	m.change(at(12), 8) // + 2 s
	for _, c := range []struct{ real, virt float64 }{{4, 1}, {8, 2}, {10, 3}, {12, 4}, {20, 5}} {
		if v := m.virt(at(c.real)); math.Abs(v-c.virt) > 1e-9 {
			t.Errorf("virt(%v) = %v, want %v", c.real, v, c.virt)
		}
	}
	if m.k() != 8 {
		t.Errorf("k = %v", m.k())
	}
}

package tcpfreeze

import (
	"errors"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// TestProbe: this kernel (6.18, CONFIG_TCP_MD5SIG) holds the lock, and the
// probe leaves no descriptor or thread behind.
func TestProbe(t *testing.T) {
	testutil.MustRoot(t)
	if err := Probe(); err != nil {
		t.Fatalf("probe: %v (unsupported: %v)", err, errors.Is(err, ErrUnsupported))
	}
	testutil.CheckFDs(t)
	checkThreads(t)
	for range 3 {
		start := time.Now()
		if err := Probe(); err != nil {
			t.Fatalf("probe: %v (unsupported: %v)", err, errors.Is(err, ErrUnsupported))
		}
		t.Logf("probe took %v", time.Since(start))
	}
}

func TestUnsupportedError(t *testing.T) {
	var err error = &UnsupportedError{Reason: "x", Err: errors.New("y")}
	if !errors.Is(err, ErrUnsupported) {
		t.Fatal("not ErrUnsupported")
	}
	if err.Error() != "tcp freeze unsupported on this kernel: x: y" {
		t.Fatal(err.Error())
	}
}

package source

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/mem/source/sourcetest"
)

// at returns n collected bytes at address addr.
func (c *collect) at(addr, n uint64) ([]byte, bool) {
	for i, r := range c.regions {
		if r.Start <= addr && addr+n <= r.Start+c.pages(i)*PageSize {
			return c.bytes(i, addr-r.Start, n), true
		}
	}
	return nil, false
}

func TestProcessReadsKnownPages(t *testing.T) {
	testutil.MustRoot(t)
	f := sourcetest.Start(t, 42)
	s, err := Open(fmt.Sprintf("pid:%d", f.PID()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Domain() != fmt.Sprintf("uid:%d", os.Getuid()) {
		t.Fatalf("domain %q", s.Domain())
	}
	var c collect
	if err := s.Scan(&c); err != nil {
		t.Fatal(err)
	}
	got, ok := c.at(f.DataAddr, sourcetest.Pages*PageSize)
	if !ok {
		t.Fatalf("filler's data mapping at %#x not read; regions %+v", f.DataAddr, s.Regions())
	}
	if !bytes.Equal(got, sourcetest.Expected(42)) {
		t.Fatal("filler's pages differ from what it wrote")
	}
	if _, ok := c.at(f.GuardAddr, PageSize); ok {
		t.Fatal("PROT_NONE guard mapping was read")
	}
	var guardSkipped, vvarSkipped bool
	for _, sk := range s.Skipped() {
		guardSkipped = guardSkipped || (sk.Start == f.GuardAddr && sk.Len == sourcetest.Guard*PageSize)
		vvarSkipped = vvarSkipped || sk.Name == "[vvar]"
	}
	if !guardSkipped || !vvarSkipped {
		t.Fatalf("guard skipped %v, [vvar] skipped %v: %+v", guardSkipped, vvarSkipped, s.Skipped())
	}
	// Regions() agrees with what the sink saw.
	var total uint64
	for i, r := range s.Regions() {
		total += r.Len
		if r.Len != c.pages(i)*PageSize {
			t.Fatalf("region %d: Regions says %d bytes, sink got %d pages", i, r.Len, c.pages(i))
		}
	}
	if total == 0 {
		t.Fatal("nothing read")
	}
}

func TestProcessFileBackedReadsMore(t *testing.T) {
	testutil.MustRoot(t)
	f := sourcetest.Start(t, 7)
	count := func(fb bool) uint64 {
		s, err := OpenProcess(f.PID(), fb)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Scan(&collect{}); err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, r := range s.Regions() {
			n += r.Len
		}
		return n
	}
	if anon, all := count(false), count(true); all <= anon {
		t.Fatalf("file-backed scan read %d bytes, anonymous-only %d", all, anon)
	}
}

func TestProcessExitsMidRead(t *testing.T) {
	testutil.MustRoot(t)
	testutil.CheckFDs(t)
	f := sourcetest.Start(t, 3)
	s, err := OpenProcess(f.PID(), true)
	if err != nil {
		t.Fatal(err)
	}
	c := collect{onPages: f.Stop} // kill and reap at the first batch
	err = s.Scan(&c)
	if !errors.Is(err, ErrProcessGone) {
		t.Fatalf("scan of a process that exited mid-read: %v, want ErrProcessGone", err)
	}
	if c.calls != 1 {
		t.Fatalf("%d batches delivered after the process died", c.calls-1)
	}
	if _, err := OpenProcess(f.PID(), false); !errors.Is(err, ErrProcessGone) {
		t.Fatalf("open of a reaped pid: %v", err)
	}
}

func TestProcessGoneBeforeScan(t *testing.T) {
	testutil.MustRoot(t)
	f := sourcetest.Start(t, 4)
	s, err := OpenProcess(f.PID(), false)
	if err != nil {
		t.Fatal(err)
	}
	f.Stop()
	var c collect
	if err := s.Scan(&c); !errors.Is(err, ErrProcessGone) {
		t.Fatalf("scan of a process gone after open: %v", err)
	}
	if len(c.regions) != 0 {
		t.Fatalf("%d regions delivered for a dead process", len(c.regions))
	}
}

func TestProcessNotRootRefused(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("checks the refusal for non-root callers")
	}
	if _, err := OpenProcess(1, false); !errors.Is(err, ErrNoPermission) {
		t.Fatalf("reading pid 1 as non-root: %v", err)
	}
}

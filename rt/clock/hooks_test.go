package clock

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/vclock"
)

// TestControlHooks: BeforeChange sees the parameters in force before the
// change (a pause is not published yet), OnChange the new ones, in that
// order; a refused request calls neither; and concurrent requests never
// interleave their hooks.
func TestControlHooks(t *testing.T) {
	testutil.MustRoot(t)
	c := newClock(t, "10")
	name := "hooks-" + strconv.Itoa(os.Getpid())
	var mu sync.Mutex
	var events []string
	inside := 0
	s, err := Serve(c, ServeOptions{Name: name, Kind: KindExperiment,
		BeforeChange: func(op string, cur vclock.Params) {
			mu.Lock()
			inside++
			if inside != 1 {
				t.Errorf("two changes at once (%d)", inside)
			}
			mu.Unlock()
			// The page still says what it said: nobody sees the change.
			if p, _ := c.Load(); p.Paused != cur.Paused {
				t.Errorf("%s: BeforeChange after the change", op)
			}
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			events = append(events, "before "+op+" paused="+strconv.FormatBool(cur.Paused))
			mu.Unlock()
		},
		OnChange: func(p vclock.Params) {
			mu.Lock()
			events = append(events, "after paused="+strconv.FormatBool(p.Paused))
			inside--
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Ask(name, Request{Op: "set", TDF: "-1"}); err == nil {
		t.Fatal("bad tdf accepted")
	}
	if _, err := Ask(name, Request{Op: "pause"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Ask(name, Request{Op: "resume"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"before pause paused=false", "after paused=true", "before resume paused=true", "after paused=false"}
	if len(events) != len(want) {
		t.Fatalf("events %q, want %q", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events %q, want %q", events, want)
		}
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := "pause"
			if i%2 == 1 {
				op = "resume"
			}
			if _, err := Ask(name, Request{Op: op}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(events) != 12 {
		t.Errorf("%d events after 6 changes, want 12", len(events))
	}
}

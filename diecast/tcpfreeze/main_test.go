package tcpfreeze

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/rt/reexec"
)

// holderRole freezes the sockets in flight of netns args[0] held by
// process args[1], says how many, and waits to be killed.
const holderRole = "tcpfreeze-test-holder"

func init() {
	reexec.Register(holderRole, func(args []string) int {
		pid, _ := strconv.Atoi(args[1])
		f, err := Freeze([]Target{{Name: "a", Netns: args[0], Pids: []int{pid}}}, Options{})
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("held", f.Stats().Held)
		select {}
	})
}

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

// threads counts this process's OS threads.
func threads(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads: in /proc/self/status")
	return 0
}

// checkThreads fails t if it ends with more OS threads than it started
// with, after giving exiting threads a moment: every holding thread must
// exit with its goroutine. The runtime keeps the idle threads it started
// to run other goroutines while holders slept (its pool, bounded by
// GOMAXPROCS): call it after a first round has grown that pool.
func checkThreads(t testing.TB) {
	t.Helper()
	before := threads(t)
	t.Cleanup(func() {
		var after int
		for range 100 {
			if after = threads(t); after <= before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("%d OS threads leaked (%d -> %d)", after-before, before, after)
	})
}

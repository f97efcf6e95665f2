package clock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
)

var syscallAddrInUse = syscall.EADDRINUSE

// maxProcNetUnix bounds what List reads of /proc/net/unix.
const maxProcNetUnix = 64 << 20

// soAcceptCon is the Flags value of a listening socket in /proc/net/unix.
const soAcceptCon = "00010000"

// List returns the names of the clocks served in this network namespace,
// sorted.
func List() ([]string, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, fmt.Errorf("listing clocks: %w", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(io.LimitReader(f, maxProcNetUnix))
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 || fs[3] != soAcceptCon {
			continue
		}
		if name, ok := strings.CutPrefix(fs[7], "@"+SocketPrefix); ok && ValidName(name) == nil {
			seen[name] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("listing clocks: %w", err)
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Find resolves target to one clock name: the name itself, or the pid of
// a clock's owner. With no target it returns the only clock there is.
func Find(target string) (string, error) {
	names, err := List()
	if err != nil {
		return "", err
	}
	if target == "" {
		switch len(names) {
		case 0:
			return "", fmt.Errorf("finding clock: %w (is a `vmux run` or a dilated experiment running?)", ErrNoClock)
		case 1:
			return names[0], nil
		}
		return "", fmt.Errorf("finding clock: %w (%s): name one", ErrAmbiguous, strings.Join(names, ", "))
	}
	for _, n := range names {
		if n == target {
			return n, nil
		}
	}
	var byPid []string
	for _, n := range names {
		if st, err := Ask(n, Request{Op: "status"}); (err == nil || errors.As(err, new(*RemoteError))) && fmt.Sprint(st.Pid) == target {
			byPid = append(byPid, n)
		}
	}
	switch len(byPid) {
	case 0:
		return "", fmt.Errorf("finding clock %q: %w (see `vmux clock list`)", target, ErrNoClock)
	case 1:
		return byPid[0], nil
	}
	return "", fmt.Errorf("finding clock %q: %w (%s)", target, ErrAmbiguous, strings.Join(byPid, ", "))
}

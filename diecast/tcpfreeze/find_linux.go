package tcpfreeze

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/vmux/vmux/internal/linux"
)

// readTables reads the TCP sockets (IPv4 and IPv6) of the network
// namespace at nsPath, from a thread that enters it. A table read walks
// the whole host's established hash (262,144 buckets here: ~1.1 ms
// whatever the namespace holds), so a family the namespace has no socket
// of (its sockstat says, at no cost) is not read.
func readTables(nsPath string) ([]entry, error) {
	var out []entry
	err := linux.InNetns(nsPath, func() error {
		for _, v6 := range []bool{false, true} {
			stat, table, key := "/proc/thread-self/net/sockstat", "/proc/thread-self/net/tcp", "TCP:"
			if v6 {
				stat, table, key = stat+"6", table+"6", "TCP6:"
			}
			if n, err := inUse(stat, key); err == nil && n == 0 {
				continue
			} else if errors.Is(err, fs.ErrNotExist) && v6 {
				continue // no IPv6 in this kernel
			}
			f, err := os.Open(table)
			if err != nil {
				return fmt.Errorf("reading tcp table: %w", err)
			}
			es, err := parseTable(f, v6)
			f.Close()
			if err != nil {
				return err
			}
			out = append(out, es...)
		}
		return nil
	})
	return out, err
}

// inUse reads the "inuse" count of line key ("TCP:") of a sockstat file:
// the sockets of that protocol in the namespace (listening included,
// TIME_WAIT not).
func inUse(name, key string) (int, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	return parseInUse(string(b), key)
}

func parseInUse(s, key string) (int, error) {
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == key && f[1] == "inuse" {
			return strconv.Atoi(f[2])
		}
	}
	return 0, fmt.Errorf("reading sockstat: no %s inuse line", key)
}

// fdRef is a descriptor of a process.
type fdRef struct{ pid, fd int }

// maxFdsPerProc bounds the descriptors looked at in one process.
const maxFdsPerProc = 1 << 20

// findFds maps each socket inode of want to a descriptor that refers to
// it in one of pids (the first found). Processes that went away are
// skipped.
func findFds(pids []int, want map[uint64]bool) map[uint64]fdRef {
	out := map[uint64]fdRef{}
	for _, pid := range pids {
		if len(out) == len(want) {
			break
		}
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		d, err := os.Open(dir)
		if err != nil {
			continue
		}
		names, _ := d.Readdirnames(maxFdsPerProc)
		d.Close()
		for _, name := range names {
			link, err := os.Readlink(dir + "/" + name)
			if err != nil {
				continue
			}
			ino, ok := socketInode(link)
			if !ok || !want[ino] {
				continue
			}
			if _, dup := out[ino]; dup {
				continue
			}
			fd, err := strconv.Atoi(name)
			if err != nil {
				continue
			}
			out[ino] = fdRef{pid, fd}
		}
	}
	return out
}

// socketInode parses "socket:[N]".
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

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
// namespace at nsPath, from a thread that enters it.
func readTables(nsPath string) ([]entry, error) {
	var out []entry
	err := linux.InNetns(nsPath, func() error {
		for _, v6 := range []bool{false, true} {
			name := "/proc/thread-self/net/tcp"
			if v6 {
				name += "6"
			}
			f, err := os.Open(name)
			if errors.Is(err, fs.ErrNotExist) && v6 {
				continue // no IPv6 in this kernel
			}
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

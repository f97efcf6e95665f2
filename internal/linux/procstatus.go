package linux

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// procStatusMax bounds what is read of /proc/PID/status (a few KiB).
const procStatusMax = 64 << 10

// procStatusField returns the value of field ("Tgid", "TracerPid",
// "NSpid", ...) in /proc/PID/status, trimmed.
func procStatusField(pid int, field string) (string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "", fmt.Errorf("reading status of %d: %w", pid, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, procStatusMax))
	if err != nil {
		return "", fmt.Errorf("reading status of %d: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("reading status of %d: no %s field", pid, field)
}

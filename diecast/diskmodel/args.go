package diskmodel

import (
	"fmt"
	"strconv"
	"time"
)

// Role is the reexec role of a disk model server (package
// diskmodel/server registers it): argv is the factor, the lead (ns), the
// mount point ("" for none: no calibration, the lead as given), the four
// rates (Model) and "clock" if descriptor 6 is a clock page to take the
// node's time from (else ""); descriptor 3 is the mounted FUSE
// connection, 4 the backing directory, 5 where it reports ready ("ok
// lead=NS\n"); it logs to stderr.
const Role = "disk-model"

// Descriptors of the role.
const (
	FuseFd  = 3
	DirFd   = 4
	ReadyFd = 5
	ClockFd = 6
)

// Args are the role's arguments for m, calibrated through mount if set,
// with the node's time from a clock page at ClockFd if clock.
func Args(m Model, mount string, clock bool) []string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	c := ""
	if clock {
		c = "clock"
	}
	return []string{strconv.FormatFloat(m.Factor, 'g', -1, 64), i(int64(m.Lead)), mount,
		i(m.ReadIOPS), i(m.WriteIOPS), i(m.ReadBps), i(m.WriteBps), c}
}

// Parsed are the role's arguments.
type Parsed struct {
	Model Model
	Mount string
	Clock bool // descriptor ClockFd is the node's clock
}

// ParseArgs is the inverse of Args.
func ParseArgs(args []string) (Parsed, error) {
	if len(args) != 8 || (args[7] != "" && args[7] != "clock") {
		return Parsed{}, fmt.Errorf("%w: want FACTOR LEAD_NS MOUNT READ_IOPS WRITE_IOPS READ_BPS WRITE_BPS clock|\"\", got %q", ErrBadArgs, args)
	}
	var rates [4]int64
	for i := range rates {
		v, err := strconv.ParseInt(args[3+i], 10, 64)
		if err != nil {
			return Parsed{}, fmt.Errorf("%w: rate %q", ErrBadArgs, args[3+i])
		}
		rates[i] = v
	}
	k, err := strconv.ParseFloat(args[0], 64)
	if err != nil {
		return Parsed{}, fmt.Errorf("%w: factor %q", ErrBadArgs, args[0])
	}
	lead, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		return Parsed{}, fmt.Errorf("%w: lead %q", ErrBadArgs, args[1])
	}
	m := Model{Factor: k, Lead: time.Duration(lead), ReadIOPS: rates[0], WriteIOPS: rates[1], ReadBps: rates[2], WriteBps: rates[3]}
	return Parsed{Model: m, Mount: args[2], Clock: args[7] == "clock"}, m.Validate()
}

package diskmodel

import (
	"fmt"
	"strconv"
	"time"
)

// Role is the reexec role of a disk model server (package
// diskmodel/server registers it): argv is the factor, the lead (ns) and
// the mount point ("" for none: no calibration, the lead as given);
// descriptor 3 is the mounted FUSE connection, 4 the backing directory, 5
// where it reports ready ("ok lead=NS\n"); it logs to stderr.
const Role = "disk-model"

// Descriptors of the role.
const (
	FuseFd  = 3
	DirFd   = 4
	ReadyFd = 5
)

// Args are the role's arguments for m, calibrated through mount if set.
func Args(m Model, mount string) []string {
	return []string{strconv.FormatFloat(m.Factor, 'g', -1, 64), strconv.FormatInt(int64(m.Lead), 10), mount}
}

// ParseArgs is the inverse of Args.
func ParseArgs(args []string) (Model, string, error) {
	if len(args) != 3 {
		return Model{}, "", fmt.Errorf("%w: want FACTOR LEAD_NS MOUNT, got %d arguments", ErrBadArgs, len(args))
	}
	k, err := strconv.ParseFloat(args[0], 64)
	if err != nil {
		return Model{}, "", fmt.Errorf("%w: factor %q", ErrBadArgs, args[0])
	}
	lead, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		return Model{}, "", fmt.Errorf("%w: lead %q", ErrBadArgs, args[1])
	}
	m := Model{Factor: k, Lead: time.Duration(lead)}
	return m, args[2], m.Validate()
}

package node

import (
	"fmt"
	"math"

	"github.com/vmux/vmux/diecast/topology"
)

// Limits are the resources a node may use. Zero means unlimited.
type Limits struct {
	// CPU is a fraction of one core (0.5 = half a core) enforced as a CFS
	// quota per period.
	CPU float64 `json:"cpu,omitempty"`
	// Memory is the memory limit in bytes.
	Memory int64 `json:"memory,omitempty"`
	// Disk throttles apply to every physical block device of the host.
	ReadBps   int64 `json:"read_bps,omitempty"`
	WriteBps  int64 `json:"write_bps,omitempty"`
	ReadIOPS  int64 `json:"read_iops,omitempty"`
	WriteIOPS int64 `json:"write_iops,omitempty"`
}

// CPUPeriodUs is the CFS period used for quotas (the kernel default).
const CPUPeriodUs = 100000

// minQuotaUs is the smallest CFS quota the kernel accepts.
const minQuotaUs = 1000

// Validate reports limits the kernel would refuse, with what to change.
func (l Limits) Validate() error {
	if l.CPU < 0 || math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0) {
		return fmt.Errorf("%w: cpu %v: give a positive fraction of a core (0.5 = half)", ErrBadConfig, l.CPU)
	}
	if l.CPU > 0 && l.quotaUs() < minQuotaUs {
		return fmt.Errorf("%w: cpu %v is below the kernel minimum of %v of a core", ErrBadConfig, l.CPU, float64(minQuotaUs)/CPUPeriodUs)
	}
	for _, v := range []struct {
		name string
		n    int64
	}{{"memory", l.Memory}, {"read bps", l.ReadBps}, {"write bps", l.WriteBps}, {"read iops", l.ReadIOPS}, {"write iops", l.WriteIOPS}} {
		if v.n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrBadConfig, v.name, v.n)
		}
	}
	if l.Memory > 0 && l.Memory < int64(topology.MinNodeMemory) {
		return fmt.Errorf("%w: memory %d bytes is below the %v a node's init needs", ErrBadConfig, l.Memory, topology.MinNodeMemory)
	}
	return nil
}

// quotaUs is the CFS quota per CPUPeriodUs for l.CPU.
func (l Limits) quotaUs() int64 { return int64(math.Round(l.CPU * CPUPeriodUs)) }

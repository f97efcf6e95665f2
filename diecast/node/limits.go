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
	// PeriodUs is the CFS period of the CPU quota in microseconds (0: the
	// kernel's default, CPUPeriodUs). A dilated node's is k times the
	// default (netd.Limits): in its own time it then gets its quota in the
	// same periods as the original, instead of k times more often in
	// slices k times shorter.
	PeriodUs int64 `json:"period_us,omitempty"`
}

// CPUPeriodUs is the CFS period used for quotas (the kernel default).
const CPUPeriodUs = 100000

// minQuotaUs is the smallest CFS quota the kernel accepts; MinPeriodUs
// and MaxPeriodUs bound its period.
const (
	minQuotaUs  = 1000
	MinPeriodUs = 1000
	MaxPeriodUs = 1000000
)

// Validate reports limits the kernel would refuse, with what to change.
func (l Limits) Validate() error {
	if l.CPU < 0 || math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0) {
		return fmt.Errorf("%w: cpu %v: give a positive fraction of a core (0.5 = half)", ErrBadConfig, l.CPU)
	}
	if l.PeriodUs != 0 && (l.PeriodUs < MinPeriodUs || l.PeriodUs > MaxPeriodUs) {
		return fmt.Errorf("%w: cpu period %d us: the kernel takes %d to %d", ErrBadConfig, l.PeriodUs, MinPeriodUs, MaxPeriodUs)
	}
	if l.CPU > 0 && l.quotaUs() < minQuotaUs {
		return fmt.Errorf("%w: cpu %v is below the kernel minimum of %v of a core", ErrBadConfig, l.CPU, float64(minQuotaUs)/float64(l.Period()))
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

// Period is the CFS period in microseconds.
func (l Limits) Period() int64 {
	if l.PeriodUs != 0 {
		return l.PeriodUs
	}
	return CPUPeriodUs
}

// quotaUs is the CFS quota per period for l.CPU.
func (l Limits) quotaUs() int64 { return int64(math.Round(l.CPU * float64(l.Period()))) }

package dilate

import (
	"fmt"
	"os"

	"github.com/vmux/vmux/dilate/vdso"
	"github.com/vmux/vmux/rt/clock"
)

// vdsoInjector maps the replacement vDSO region into a tracee at exec.
type vdsoInjector struct {
	image []byte
	path  string // /proc/<supervisor>/fd/<clock memfd>, opened by the tracee
}

func newVDSOInjector(v *clock.View) *vdsoInjector {
	return &vdsoInjector{image: vdso.Image(), path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), v.File().Fd())}
}

// install fills the region at base (mapped RW by the caller): image, then
// the per-process page of real-vDSO addresses, then the shared clock page
// mapped over its slot from the run's memfd. scratch is usable memory for
// the path string.
func (v *vdsoInjector) install(in *injector, base, scratch uint64, realImage []byte, realStart uint64) error {
	syms, err := vdso.ParseVDSO(realImage)
	if err != nil {
		return fmt.Errorf("reading the tracee's vDSO: %w", err)
	}
	tid := in.tid
	if err := traceeWrite(tid, base, v.image); err != nil {
		return fmt.Errorf("writing the replacement vDSO: %w", err)
	}
	if err := traceeWrite(tid, base+vdso.ProcPageOffset, vdso.ProcPage(syms.Add(realStart))); err != nil {
		return fmt.Errorf("writing the vDSO process page: %w", err)
	}
	if _, err := in.call(sysMprotect, base, vdso.ImageSize, protRead|protExec); err != nil {
		return fmt.Errorf("protecting the replacement vDSO: %w", err)
	}
	if _, err := in.call(sysMprotect, base+vdso.ProcPageOffset, vdso.PageSize, protRead); err != nil {
		return fmt.Errorf("protecting the vDSO process page: %w", err)
	}
	pathAt := scratch + pathSlot*slotSize
	if err := traceeWrite(tid, pathAt, append([]byte(v.path), 0)); err != nil {
		return fmt.Errorf("writing the clock path: %w", err)
	}
	fd, err := in.call(sysOpenat, uint64(atFdcwdU), pathAt, oCloexec, 0)
	if err != nil {
		return fmt.Errorf("opening the clock page %s in the tracee: %w", v.path, err)
	}
	_, merr := in.call(sysMmap, base+vdso.ClockPageOffset, vdso.PageSize, protRead, mapShared|mapFixed, fd, 0)
	_, cerr := in.call(sysClose, fd)
	if merr != nil {
		return fmt.Errorf("mapping the clock page in the tracee: %w", merr)
	}
	if cerr != nil {
		return fmt.Errorf("closing the clock fd in the tracee: %w", cerr)
	}
	return nil
}

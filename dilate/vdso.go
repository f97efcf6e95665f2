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
	page  *os.File // a read-only descriptor of the clock page
}

func newVDSOInjector(v *clock.View) *vdsoInjector {
	return &vdsoInjector{image: vdso.Image(), page: v.File()}
}

// install fills the region at base (mapped RW by the caller): image, then
// the per-process page of real-vDSO addresses, then the shared clock page
// mapped over its slot from the run's memfd, handed in through the tree's
// seccomp listener.
func (v *vdsoInjector) install(in *injector, listener *os.File, base uint64, realImage []byte, realStart uint64) error {
	syms, err := vdso.ParseVDSO(realImage)
	if err != nil {
		return fmt.Errorf("reading the tracee's vDSO: %w", err)
	}
	tid := in.Tid()
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
	if listener == nil {
		return fmt.Errorf("mapping the clock page: %w", errNoListener)
	}
	fd, err := in.callForFd(listener, v.page)
	if err != nil {
		return fmt.Errorf("mapping the clock page: %w", err)
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

package linux

import "golang.org/x/sys/unix"

// SetMemoryMerge marks (on=true) or unmarks the calling process's memory as
// mergeable by KSM (prctl PR_SET_MEMORY_MERGE, Linux 6.4+). The flag lives in
// the mm and is inherited by fork; whether it survives execve depends on the
// kernel, so launchers must check GetMemoryMerge in the new image.
func SetMemoryMerge(on bool) error {
	var v uintptr
	if on {
		v = 1
	}
	return syscallErr("prctl PR_SET_MEMORY_MERGE", unix.Prctl(unix.PR_SET_MEMORY_MERGE, v, 0, 0, 0))
}

// GetMemoryMerge reports whether the calling process is marked for KSM.
func GetMemoryMerge() (bool, error) {
	r, _, errno := unix.Syscall6(unix.SYS_PRCTL, unix.PR_GET_MEMORY_MERGE, 0, 0, 0, 0, 0)
	if errno != 0 {
		return false, syscallErr("prctl PR_GET_MEMORY_MERGE", errno)
	}
	return r != 0, nil
}

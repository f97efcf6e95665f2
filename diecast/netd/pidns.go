package netd

import (
	"fmt"
	"os"

	"github.com/vmux/vmux/internal/linux"
)

// ownPidNS is the inode of the calling process's pid namespace (0 if it
// cannot be read).
func ownPidNS() uint64 {
	ino, err := linux.NsInode(os.Getpid(), "pid")
	if err != nil {
		return 0
	}
	return ino
}

// checkPidNS refuses a state written in another pid namespace: from inside
// a (privileged) node, the pids of the state name other processes or none,
// so status called live daemons dead and down would kill strangers.
func (st *State) checkPidNS() error {
	if st.PidNS == 0 {
		return nil // written before pid namespaces were recorded
	}
	if own := ownPidNS(); own != 0 && own != st.PidNS {
		return fmt.Errorf("load %s: %w", st.Name, ErrForeignPidNS)
	}
	return nil
}

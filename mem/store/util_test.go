package store

import (
	"os/exec"
	"time"
)

func runTimeout(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.WaitDelay = time.Second
	done := make(chan struct{})
	t := time.AfterFunc(90*time.Second, func() { cmd.Process.Kill() })
	defer t.Stop()
	out, err := cmd.CombinedOutput()
	close(done)
	return out, err
}

package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// calibReads is how many reads measure the round trip.
const calibReads = 64

// calibName is a calibration file's name in the backing directory
// (created exclusively, removed before the server reports ready): random,
// since the servers of several nodes (each pid 6 or so in its own pid
// namespace) may share one directory.
func calibName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return ".vmux-disk-calibrate-" + hex.EncodeToString(b[:])
}

// calibrate measures what a read through the mount costs beyond its
// backing call (the kernel's FUSE round trip and the server's wake-up):
// calibReads O_DIRECT 4 KiB reads of a file made for it, each one's
// latency less the service time the server measured for it, at the first
// quartile (a busy host inflates some round trips; crediting more than
// the usual one would end reads early). Holds are off meanwhile (Lead is
// what they will be less of).
func (s *server) calibrate(dir *os.File, mount string) (time.Duration, error) {
	name := calibName()
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("calibrate disk model: %w", &os.PathError{Op: "create", Path: name, Err: err})
	}
	defer unix.Unlinkat(int(dir.Fd()), name, 0) //nolint:errcheck // best effort: it is ours
	chunk := make([]byte, 64<<10)
	_, err = unix.Write(fd, chunk)
	if err == nil {
		err = unix.Fsync(fd)
	}
	unix.Close(fd)
	if err != nil {
		return 0, fmt.Errorf("calibrate disk model: write: %w", err)
	}
	s.calibrating.Store(true) // neither held nor paced
	defer s.calibrating.Store(false)
	var svc []time.Duration
	s.mu.Lock()
	s.calib = &svc
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.calib = nil
		s.mu.Unlock()
	}()
	lat, err := timedReads(filepath.Join(mount, name), len(chunk))
	if err != nil {
		return 0, fmt.Errorf("calibrate disk model: %w", err)
	}
	s.mu.Lock()
	got := append([]time.Duration(nil), svc...)
	s.mu.Unlock()
	if len(got) != len(lat) {
		return 0, fmt.Errorf("calibrate disk model: %d reads, %d served", len(lat), len(got))
	}
	over := make([]time.Duration, len(lat))
	for i := range lat {
		over[i] = max(lat[i]-got[i], 0)
	}
	slices.Sort(over)
	return over[len(over)/4], nil
}

// timedReads times calibReads O_DIRECT 4 KiB reads of path (size bytes).
func timedReads(path string, size int) ([]time.Duration, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	raw := make([]byte, 2*directAlign)
	off := int(uintptr(unsafe.Pointer(&raw[0])) & (directAlign - 1))
	buf := raw[directAlign-off : 2*directAlign-off]
	lat := make([]time.Duration, 0, calibReads)
	for i := 0; i < calibReads; i++ {
		t0 := time.Now()
		if _, err := unix.Pread(fd, buf, int64(i*directAlign%size)); err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

package cast

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrNotRegular: an input that is not a regular file (a FIFO, a device).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge: an input larger than its bound.
var ErrTooLarge = errors.New("file too large")

// readBounded reads a regular file of at most limit bytes, with one open
// and a bounded read (never a FIFO or a device, never more than limit).
func readBounded(path string, limit int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: %w", path, ErrNotRegular)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("read %s: %w (limit %d bytes)", path, ErrTooLarge, limit)
	}
	return b, nil
}

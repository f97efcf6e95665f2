package cast

import (
	"errors"
	"fmt"
)

// Sentinels; errors.Is classifies every error of the package.
var (
	// ErrUnknownReader: a metrics reader name that is not built in.
	ErrUnknownReader = errors.New("unknown metrics reader")
	// ErrNoMetrics: a reader found nothing it recognises in the output.
	ErrNoMetrics = errors.New("no metrics in output")
	// ErrNoWorkload: the spec has no workload section (or no job).
	ErrNoWorkload = errors.New("spec has no workload")
	// ErrJobFailed: a job exited non-zero without allow_fail.
	ErrJobFailed = errors.New("job failed")
	// ErrNotReady: a service did not become ready in time.
	ErrNotReady = errors.New("service not ready")
	// ErrTimeout: the workload did not finish within its timeout.
	ErrTimeout = errors.New("workload timed out")
	// ErrNoResults: a results directory holds no run.
	ErrNoResults = errors.New("no results")
	// ErrBadMode: a mode name other than baseline, scaled and naive.
	ErrBadMode = errors.New("unknown mode")
)

// ItemError is the failure of one execution of a workload item.
type ItemError struct {
	Item, Node string
	Iter       int
	Err        error
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("%s on %s (iteration %d): %v", e.Item, e.Node, e.Iter+1, e.Err)
}

func (e *ItemError) Unwrap() error { return e.Err }

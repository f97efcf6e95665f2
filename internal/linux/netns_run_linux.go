//go:build linux

package linux

// InNetns runs fn on a locked OS thread inside the network namespace at
// nsPath (e.g. NetnsPath(pid)) and switches back: sockets fn creates
// belong to that namespace and stay usable from any goroutine after.
func InNetns(nsPath string, fn func() error) error { return inNetnsThread(nsPath, fn) }

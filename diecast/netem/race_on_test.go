//go:build race

package netem

// raceOn: the race detector's instrumentation allocates by itself.
const raceOn = true

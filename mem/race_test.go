//go:build race

package mem

// raceEnabled: under the race detector the engine's byte loops run ~30x
// slower, so tests on real memory use a sample of it.
const raceEnabled = true

//go:build race

package server

// raceOn: the race detector instruments the server (each reply costs
// ~100 µs more of its Go code).
const raceOn = true

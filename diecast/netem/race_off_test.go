//go:build !race

package netem

const raceOn = false

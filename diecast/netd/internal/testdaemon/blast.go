package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/vmux/vmux/rt/reexec"
)

// BlastRole sends UDP datagrams as fast as it can: udp-blast ADDR:PORT SIZE
// DURATION. It stands for a hostile or runaway node in the daemon's memory
// tests (a node that sends far more than its links carry).
const blastRole = "udp-blast"

func init() { reexec.Register(blastRole, blast) }

func blast(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "udp-blast ADDR:PORT SIZE DURATION")
		return 2
	}
	size, err1 := strconv.Atoi(args[1])
	d, err2 := time.ParseDuration(args[2])
	c, err3 := net.Dial("udp", args[0])
	if err1 != nil || err2 != nil || err3 != nil {
		fmt.Fprintln(os.Stderr, "udp-blast:", err1, err2, err3)
		return 2
	}
	buf := make([]byte, size)
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for range 256 {
			if _, err := c.Write(buf); err == nil {
				n++
			}
		}
	}
	fmt.Println(n)
	return 0
}

// Benchmark program for dilated static Go binaries:
//
//	benchgo clock N THREADS   ns per time.Now() per goroutine (own clock)
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 4 || os.Args[1] != "clock" {
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Args[2])
	th, _ := strconv.Atoi(os.Args[3])
	per := make([]float64, th)
	var wg sync.WaitGroup
	for i := range th {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			for range n {
				_ = time.Now()
			}
			per[i] = float64(time.Since(t0).Nanoseconds()) / float64(n)
		}()
	}
	wg.Wait()
	var sum float64
	for _, p := range per {
		sum += p
	}
	fmt.Printf("clock %.3f\n", sum/float64(th))
}

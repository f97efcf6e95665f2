package sourcetest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cFiller is a tiny C program that maps Pages pages, fills them from stdin,
// prints their address and waits for stdin to close. Tools that attach to a
// process (gcore) take a second on it instead of a minute on a race-enabled
// Go test binary, whose shadow mappings are hundreds of MiB.
const cFiller = `#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
int main(void) {
	size_t n = %d, got = 0;
	unsigned char *p = mmap(0, n, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return 2;
	while (got < n) { ssize_t r = read(0, p + got, n - got); if (r <= 0) return 3; got += r; }
	printf("data %%lu\n", (unsigned long)p);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {}
	return 0;
}
`

// StartC compiles and starts the C filler with Expected(seed) as its data.
// GuardAddr is 0: the C filler has no guard mapping.
func StartC(t testing.TB, gcc string, seed uint64) *Filler {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "filler.c")
	bin := filepath.Join(dir, "filler")
	if err := os.WriteFile(src, fmt.Appendf(nil, cFiller, Pages*PageSize), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compile filler: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &Filler{Cmd: cmd, Seed: seed, stdin: stdin}
	t.Cleanup(f.Stop)
	if _, err := stdin.Write(Expected(seed)); err != nil {
		t.Fatalf("feed filler: %v", err)
	}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- l
	}()
	select {
	case l := <-lines:
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "data %d", &f.DataAddr); err != nil {
			t.Fatalf("filler said %q: %v", l, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("C filler did not start within 30s")
	}
	return f
}

package sourcetest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/rt/reexec"
)

// fillerRole is the reexec role of the filler (argument: the seed).
const fillerRole = "sourcetest-filler"

func init() { reexec.Register(fillerRole, fillerMain) }

// PageSize is the page size of the filler's layout.
const PageSize = 4096

// Layout of the filler's data mapping, in pages.
const (
	Identical = 16 // pages 0..15: the same content
	Similar   = 16 // pages 16..31: the identical page with 8 bytes changed each
	Zero      = 16 // pages 32..47: zero (touched, so resident)
	Random    = 16 // pages 48..63: distinct pseudo-random pages
	Pages     = Identical + Similar + Zero + Random
	Guard     = 4 // a separate PROT_NONE mapping of 4 pages
)

// Expected returns the content the filler writes, page by page, for seed.
func Expected(seed uint64) []byte {
	b := make([]byte, Pages*PageSize)
	r := rand.New(rand.NewPCG(seed, 1))
	base := b[:PageSize]
	for i := range base {
		base[i] = byte(r.Uint32())
	}
	for p := 1; p < Identical; p++ {
		copy(b[p*PageSize:], base)
	}
	for p := Identical; p < Identical+Similar; p++ {
		pg := b[p*PageSize : (p+1)*PageSize]
		copy(pg, base)
		binary.LittleEndian.PutUint64(pg[(p*64)%PageSize:], uint64(p)*0x9e3779b97f4a7c15)
	}
	for p := Identical + Similar + Zero; p < Pages; p++ {
		pg := b[p*PageSize : (p+1)*PageSize]
		for i := range pg {
			pg[i] = byte(r.Uint32())
		}
	}
	return b
}

// fillerMain is the filler: a test binary that imports this package and
// calls reexec.Init first in TestMain becomes one when Start re-executes it.
func fillerMain(args []string) int {
	if len(args) != 1 {
		fmt.Println("error: want a seed")
		return 2
	}
	seed, _ := strconv.ParseUint(args[0], 10, 64)
	data, err := syscall.Mmap(-1, 0, Pages*PageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	copy(data, Expected(seed))
	guard, err := syscall.Mmap(-1, 0, Guard*PageSize, syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	fmt.Printf("data %d guard %d\n", addrOf(data), addrOf(guard))
	// Wait until the parent closes stdin (or dies: Pdeathsig).
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// Filler is a running helper process.
type Filler struct {
	Cmd       *exec.Cmd
	Seed      uint64
	DataAddr  uint64
	GuardAddr uint64
	stdin     io.WriteCloser
}

// Start re-executes the test binary as a filler with seed and waits until it
// has written its pages. The process is killed and reaped at test cleanup.
func Start(t testing.TB, seed uint64) *Filler {
	t.Helper()
	cmd := reexec.Command("", fillerRole, strconv.FormatUint(seed, 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start filler: %v", err)
	}
	f := &Filler{Cmd: cmd, Seed: seed, stdin: stdin}
	t.Cleanup(f.Stop)
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- l
	}()
	select {
	case l := <-lines:
		var d, g uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "data %d guard %d", &d, &g); err != nil {
			t.Fatalf("filler said %q: %v", l, err)
		}
		f.DataAddr, f.GuardAddr = d, g
	case <-time.After(30 * time.Second):
		t.Fatal("filler did not start within 30s")
	}
	return f
}

// PID of the filler.
func (f *Filler) PID() int { return f.Cmd.Process.Pid }

// Stop kills and reaps the filler (idempotent).
func (f *Filler) Stop() {
	if f.Cmd.ProcessState != nil {
		return
	}
	f.stdin.Close()
	_ = f.Cmd.Process.Kill()
	_ = f.Cmd.Wait()
}

//go:build linux

package cast

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/diecast/node"
)

// monitor samples the keep-up signals of a running experiment until Stop.
type monitor struct {
	name  string
	every time.Duration
	t0    time.Time
	tm    *timeMap // the factor in force (node shares follow it)
	nodes []monNode
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex // guards samples
	samples []KeepupSample
}

type monNode struct {
	name    string
	cpuDir  string // cpu cgroup (cpu.stat, tasks, quota)
	acctDir string // cpuacct cgroup (cpuacct.usage)
	initPid int
	share   float64 // cores the node is entitled to at TDF 1 (0: unlimited)
}

// nodeCounters are one node's cumulative counters at a sample.
type nodeCounters struct {
	runDelay  int64 // ns, summed over its tasks (tasks gone since are lost: see wait)
	usage     int64 // ns of CPU used (cpuacct.usage)
	periods   int64
	throttled int64
	traced    int
	drops     uint64
}

func newMonitor(st *netd.State, every time.Duration, t0 time.Time, tm *timeMap) *monitor {
	m := &monitor{name: st.Name, every: every, t0: t0, tm: tm, stop: make(chan struct{}), done: make(chan struct{})}
	k0 := tm.k()
	if st.TDF > 0 {
		k0 = st.TDF
	}
	for _, n := range st.Nodes {
		// n.CPU is the real share at bring-up: c/k0.
		mn := monNode{name: n.Name, initPid: n.Pid, share: n.CPU * k0}
		for _, c := range n.Cgroups {
			// the first: a v1 node's unified directory (listed last, no
			// cpu controller) has a cpu.stat without throttling counts
			if _, err := os.Stat(filepath.Join(c, "cpu.stat")); err == nil && mn.cpuDir == "" {
				mn.cpuDir = c
			}
			if _, err := os.Stat(filepath.Join(c, "cpuacct.usage")); err == nil {
				mn.acctDir = c
			}
		}
		m.nodes = append(m.nodes, mn)
	}
	return m
}

func (m *monitor) start() { go m.loop() }

// recent returns the last n samples.
func (m *monitor) recent(n int) []KeepupSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < n {
		return nil
	}
	return append([]KeepupSample(nil), m.samples[len(m.samples)-n:]...)
}

// Stop ends sampling and returns the samples.
func (m *monitor) Stop() []KeepupSample {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.samples
}

func (m *monitor) loop() {
	defer close(m.done)
	t := time.NewTicker(m.every)
	defer t.Stop()
	prevCPU, _ := hostCPU()
	prevT := time.Now()
	prev := make([]nodeCounters, len(m.nodes))
	prevTasks := make([]map[int]int64, len(m.nodes))
	for i, n := range m.nodes {
		prev[i], prevTasks[i] = readNode(n, nil)
	}
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		dt := now.Sub(prevT).Seconds()
		cpu, _ := hostCPU()
		k := m.tm.k()
		s := KeepupSample{T: now.Sub(m.t0).Seconds(), TDF: k}
		if tot := cpu.total - prevCPU.total; tot > 0 {
			s.HostIdle = float64(cpu.idle-prevCPU.idle) / float64(tot)
		}
		var periods, throttled int64
		for i, n := range m.nodes {
			c, tasks := readNode(n, prevTasks[i])
			// Wait from tasks seen both times only (run_delay is per task).
			var d int64
			for tid, rd := range tasks {
				if p, ok := prevTasks[i][tid]; ok && rd >= p {
					d += rd - p
				}
			}
			if w := starvation(float64(d)/1e9, float64(c.usage-prev[i].usage)/1e9, n.share/k, dt,
				c.periods-prev[i].periods, c.throttled-prev[i].throttled); w > s.Wait {
				s.Wait, s.WaitNode = w, n.name
			}
			periods += c.periods - prev[i].periods
			throttled += c.throttled - prev[i].throttled
			s.Traced += c.traced
			s.Drops += c.drops
			prev[i], prevTasks[i] = c, tasks
		}
		if periods > 0 {
			s.Throttled = float64(throttled) / float64(periods)
		}
		if ls, err := netd.GetStatus(m.name); err == nil && ls.Links != nil {
			s.Delivered, s.Late = ls.Links.Delivered, ls.Links.Late
			s.MaxLateMs = float64(ls.Links.MaxLate) / 1e6
			s.Drops += ls.Links.ReadErrs + ls.Links.WriteErrs
		}
		prevCPU, prevT = cpu, now
		m.mu.Lock()
		m.samples = append(m.samples, s)
		m.mu.Unlock()
	}
}

type cpuTimes struct{ idle, total uint64 }

// hostCPU reads the aggregate cpu line of /proc/stat (idle + iowait as idle).
func hostCPU() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	var t cpuTimes
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i < 8 { // user nice system idle iowait irq softirq steal (guest is in user)
			t.total += n
		}
		if i == 3 || i == 4 {
			t.idle += n
		}
	}
	return t, nil
}

// starvation is the fraction of a node's CPU share that it was denied in
// an interval of dt seconds while it had runnable tasks. Its tasks' run
// delay (time runnable, not running) also holds time spent throttled and
// the node's own tasks queueing behind each other inside its share, which
// is the model at work; so what counts is the share it did not use
// (entitled - used), no more than the time its tasks waited, over the CFS
// periods in which it was not throttled (in a throttled period it had its
// whole quota; measured with a busy loop at 0.5 core: run_delay 0.5 s/s,
// used 0.5, denied 0; with three busy loops beside it: used 0.42, denied
// 0.16). Waking often costs a little (a task that wakes 2,000 times a
// second on an idle host: 0.07). Unlimited nodes are entitled to one core.
func starvation(wait, used, share, dt float64, periods, throttled int64) float64 {
	if share <= 0 {
		share = 1
	}
	entitled := share * dt
	if entitled <= 0 {
		return 0
	}
	if periods > 0 && throttled > 0 {
		quota := share * float64(node.CPUPeriodUs) / 1e6
		th := float64(min(throttled, periods))
		used -= quota * th
		entitled -= quota * th
		wait *= 1 - th/float64(periods)
	}
	return max(0, min(wait, entitled-used)) / (share * dt)
}

// readNode reads a node's counters and its tasks' run delays.
func readNode(n monNode, _ map[int]int64) (nodeCounters, map[int]int64) {
	var c nodeCounters
	tasks := map[int]int64{}
	if n.cpuDir != "" {
		if b, err := os.ReadFile(filepath.Join(n.cpuDir, "cpu.stat")); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				k, v, _ := strings.Cut(l, " ")
				x, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "nr_periods":
					c.periods = x
				case "nr_throttled":
					c.throttled = x
				}
			}
		}
		if b, err := os.ReadFile(filepath.Join(n.cpuDir, "tasks")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				tid, err := strconv.Atoi(f)
				if err != nil {
					continue
				}
				if rd, ok := runDelay(tid); ok {
					tasks[tid] = rd
					c.runDelay += rd
				}
				if taskState(tid) == 't' {
					c.traced++
				}
			}
		}
	}
	if n.acctDir != "" {
		if b, err := os.ReadFile(filepath.Join(n.acctDir, "cpuacct.usage")); err == nil {
			c.usage, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
	}
	c.drops = tunDrops(n.initPid)
	return c, tasks
}

// runDelay is field 2 of /proc/TID/schedstat: ns spent runnable, waiting.
func runDelay(tid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/schedstat")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	return v, err == nil
}

// taskState is the state letter of /proc/TID/stat ('t': tracing stop).
func taskState(tid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// tunDrops sums rx and tx drops of the node's TUN, read through its init's
// view of the network (/proc/PID/net/dev is the netns of PID).
func tunDrops(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok || name != netd.TUNName {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			return 0
		}
		rx, _ := strconv.ParseUint(f[3], 10, 64)
		tx, _ := strconv.ParseUint(f[11], 10, 64)
		return rx + tx
	}
	return 0
}

// Package node is a vmux node sandbox: the machine a DieCast experiment
// node believes it is.
//
// In a nutshell: Start creates the node's cgroup, then re-executes vmux
// (reexec role node-init) with new net, pid, mount, uts and ipc
// namespaces. That process is the node's init, PID 1 of its pid namespace:
// it makes its mounts private, mounts a fresh /proc, sets the host name,
// bind-mounts the experiment's hosts file over /etc/hosts (so node names
// resolve inside every node), listens on a unix socket and reports "ok" on a
// pipe. Start moves it into the cgroup before reading that report, and
// every process of the node is started by init afterwards, so all of them
// are inside the cgroup and every namespace from their first instruction.
//
// Exec runs a command in a node by asking its init over the socket
// (SOCK_SEQPACKET, JSON messages), passing stdin, stdout and stderr as
// SCM_RIGHTS; init starts it through the node's Launcher and reports the
// exit status. Why not setns from the caller: Go cannot join a mount
// namespace from a multi-threaded process, and a command started by init
// inherits the pid namespace, cgroup and launcher for free; a terminal on
// stdin stays the same terminal. If the caller disconnects, init kills the
// command's process group; signals the caller forwards reach that group.
// With TTY, init allocates a pty in the node, makes its slave the
// command's controlling terminal and passes the master back over the same
// socket; the caller relays its raw terminal through it.
//
// The Launcher is the one function every process of a node goes through:
// PlainLauncher execs as is; SupervisedLauncher ("supervised") parks each
// program's dilation launcher, has the experiment's one supervisor adopt
// it over init's supervisor connection (fd 4, given by Config.Supervisor)
// and releases it, so every program of every node runs on the
// experiment's one clock, with the node's CPU share, from its first
// instruction, and stays traced after the exec that started it returns
// (daemons included). Other launchers can be registered by name
// (RegisterLauncher).
//
// Init is the reaper of the namespace: a SIGCHLD loop wait4s every
// child (orphans included) and hands statuses of launched processes to
// their waiters; launching and registering happen under one mutex so a fast
// exit is never missed. SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/2 are
// forwarded to every launched process group; on SIGTERM or SIGINT init
// waits up to 2 s for them, then exits, and the kernel kills whatever is
// left in the pid namespace. Init is the OOM killer's last choice in its
// node (oom_score_adj -1000; where CAP_SYS_RESOURCE is missing, as in this
// project's sandbox, its children get 1000 instead): a workload that
// exhausts the memory limit is killed, the node lives on.
//
// Cgroups: one interface, two backends. v1 (what this project's machines
// run): a directory <hierarchy>/vmux/<experiment>/<node> in cpu, cpuacct,
// memory, blkio and pids; cpu.cfs_quota_us/period as a fraction of a core,
// memory.limit_in_bytes, blkio.throttle.* for every physical block device
// (those with a device link in sysfs; loop and zram are skipped). v2 where
// /sys/fs/cgroup is a unified hierarchy with cpu, memory and io: cpu.max,
// memory.max, io.max. Nothing here is wrapped by a library (runc's cgroups
// package would pull a large dependency for three files).
//
// Teardown works from State alone (pid with its start time, against pid
// reuse; netns inode; cgroup paths; socket), so an experiment can be torn
// down after whoever started it was SIGKILLed: kill init (the pid namespace
// takes its descendants), kill anything left in the cgroups, wait until
// they are empty, rmdir them and their empty vmux parents. The network
// namespace dies with its last process and the last fd to it.
package node

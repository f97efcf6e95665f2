package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vmux/vmux/mem/ksm"
)

// workload is one kind of real program the demo starts several instances of.
type workload struct {
	name  string
	bin   string
	n     int
	setup func(dir string, i int) ([]string, error) // arguments after bin
	ready func(ctx context.Context, dir string, i int, out *bufio.Reader) error
}

const pyScript = `import sys, time, random
random.seed(int(sys.argv[1]))
d = {"key%d" % i: "value-%d-" % i * 3 for i in range(100000)}
l = [i * i for i in range(200000)]
s = [random.random() for _ in range(50000)]
print("ready", flush=True)
time.sleep(100000)
`

const perlScript = `$| = 1; my %h; $h{"k$_"} = ("v" x 20) . $_ for 1..100000;
my @a = map { $_ * 2 } 1..100000; print "ready\n"; sleep 100000;`

const nodeScript = `const m = new Map(); for (let i = 0; i < 100000; i++) m.set("k" + i, {id: i, name: "user" + i, tags: ["a", "b"]});
console.log("ready"); setInterval(() => {}, 1e9);`

const javaSource = `import java.util.*;
public class Demo { public static void main(String[] a) throws Exception {
  Map<String, String> m = new HashMap<>(); for (int i = 0; i < 100000; i++) m.put("k" + i, "value-" + i + "-" + a[0]);
  System.out.println("ready"); System.out.flush(); Thread.sleep(100000000L); } }
`

func waitLine(ctx context.Context, out *bufio.Reader, want string) error {
	got := make(chan error, 1)
	go func() {
		for {
			l, err := out.ReadString('\n')
			if strings.TrimSpace(l) == want {
				got <- nil
				return
			}
			if err != nil {
				got <- fmt.Errorf("exited before saying %q", want)
				return
			}
		}
	}()
	select {
	case err := <-got:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dialRetry connects to a unix socket, waiting for the server to create it.
func dialRetry(ctx context.Context, path string) (net.Conn, error) {
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect %s: %w", path, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// loadLines sends payload and reads one reply line per request, checking
// each starts with ok.
func loadLines(ctx context.Context, sock string, payload []byte, requests int, ok string) error {
	c, err := dialRetry(ctx, sock)
	if err != nil {
		return err
	}
	defer c.Close()
	if d, has := ctx.Deadline(); has {
		c.SetDeadline(d)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Write(payload); errc <- err }()
	r := bufio.NewReader(c)
	for i := 0; i < requests; i++ {
		l, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("load %s: reply %d: %w", sock, i, err)
		}
		if !strings.HasPrefix(l, ok) {
			return fmt.Errorf("load %s: reply %d: %q", sock, i, l)
		}
	}
	return <-errc
}

func demoWorkloads() []workload {
	line := func(ctx context.Context, _ string, _ int, out *bufio.Reader) error {
		return waitLine(ctx, out, "ready")
	}
	return []workload{
		{name: "python3", bin: "python3", n: 3, ready: line,
			setup: func(dir string, i int) ([]string, error) { return []string{"-c", pyScript, fmt.Sprint(i)}, nil }},
		{name: "redis", bin: "redis-server", n: 3,
			setup: func(dir string, i int) ([]string, error) {
				return []string{"--port", "0", "--unixsocket", filepath.Join(dir, fmt.Sprintf("redis%d.sock", i)),
					"--save", "", "--appendonly", "no", "--dir", dir}, nil
			},
			ready: func(ctx context.Context, dir string, i int, _ *bufio.Reader) error {
				var b strings.Builder
				const keys = 30000
				for k := 0; k < keys; k++ {
					v := fmt.Sprintf(`{"id":%d,"name":"user%d","plan":"basic","node":%d}`, k, k, i)
					fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\nuser:%d\r\n$%d\r\n%s\r\n", len(fmt.Sprintf("user:%d", k)), k, len(v), v)
				}
				return loadLines(ctx, filepath.Join(dir, fmt.Sprintf("redis%d.sock", i)), []byte(b.String()), keys, "+OK")
			}},
		{name: "memcached", bin: "memcached", n: 2,
			setup: func(dir string, i int) ([]string, error) {
				return []string{"-s", filepath.Join(dir, fmt.Sprintf("mc%d.sock", i)), "-m", "64", "-u", "root"}, nil
			},
			ready: func(ctx context.Context, dir string, i int, _ *bufio.Reader) error {
				var b strings.Builder
				const keys = 20000
				for k := 0; k < keys; k++ {
					v := fmt.Sprintf("session-%d-%s", k, strings.Repeat("x", 64+k%64))
					fmt.Fprintf(&b, "set s%d 0 0 %d\r\n%s\r\n", k, len(v), v)
				}
				return loadLines(ctx, filepath.Join(dir, fmt.Sprintf("mc%d.sock", i)), []byte(b.String()), keys, "STORED")
			}},
		{name: "perl", bin: "perl", n: 2, ready: line,
			setup: func(dir string, i int) ([]string, error) { return []string{"-e", perlScript}, nil }},
		{name: "nginx", bin: "nginx", n: 2,
			setup: func(dir string, i int) ([]string, error) {
				conf := filepath.Join(dir, fmt.Sprintf("nginx%d.conf", i))
				t := func(s string) string { return filepath.Join(dir, fmt.Sprintf("nginx%d-%s", i, s)) }
				c := fmt.Sprintf(`daemon off; master_process off; worker_processes 1; pid %s; error_log %s;
events { worker_connections 64; }
http { access_log off; client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  server { listen unix:%s; location / { return 200 "hello"; } } }
`, t("pid"), t("error.log"), t("body"), t("proxy"), t("fcgi"), t("uwsgi"), t("scgi"), t("sock"))
				if err := os.WriteFile(conf, []byte(c), 0o600); err != nil {
					return nil, err
				}
				return []string{"-e", t("error.log"), "-p", dir, "-c", conf}, nil
			},
			ready: func(ctx context.Context, dir string, i int, _ *bufio.Reader) error {
				c, err := dialRetry(ctx, filepath.Join(dir, fmt.Sprintf("nginx%d-sock", i)))
				if err != nil {
					return err
				}
				defer c.Close()
				fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
				b, _ := io.ReadAll(io.LimitReader(c, 4096))
				if !strings.Contains(string(b), "hello") {
					return fmt.Errorf("nginx answered %q", b)
				}
				return nil
			}},
		{name: "node", bin: "node", n: 2, ready: line,
			setup: func(dir string, i int) ([]string, error) { return []string{"-e", nodeScript}, nil }},
		{name: "java", bin: "java", n: 2, ready: line,
			setup: func(dir string, i int) ([]string, error) {
				src := filepath.Join(dir, "Demo.java")
				if err := os.WriteFile(src, []byte(javaSource), 0o600); err != nil {
					return nil, err
				}
				return []string{"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", src, fmt.Sprint(i)}, nil
			}},
	}
}

// proc is one started instance.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *bufio.Reader
	err  error
}

// startProc starts bin (marked mergeable for KSM from its first
// instruction, if mergeable) in its own process group, killed if vmux dies
// (Pdeathsig).
func startProc(name string, mergeable bool, bin string, args []string, dir string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	if mergeable {
		cmd = ksm.Command(bin, args...)
	}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &proc{name: name, cmd: cmd, out: bufio.NewReader(out)}, nil
}

// stop ends the process group: SIGTERM, then SIGKILL after a grace period,
// and reaps the process.
func (p *proc) stop(grace time.Duration) {
	pg := -p.cmd.Process.Pid
	_ = syscall.Kill(pg, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(pg, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(pg, syscall.SIGKILL) // any child left in the group
}

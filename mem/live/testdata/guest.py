# The workload of one benchmark guest (BenchmarkLiveVsKSMQEMU): real
# programs holding real data, different per guest. Run by the guest's init
# as: python3 guest.py ROLE SEED. Prints "vmux-guest-ready" once loaded,
# then keeps working a little (a few keys and entries a second), like a
# server between requests.
#
#   cache: a redis-server holding user profiles (hashes), JSON documents,
#          activity feeds (lists), counters and a leaderboard built from
#          words of the guest's own text files; page cache of
#          /usr/share/doc read by a log-scanning pass.
#   app:   a python service: an inverted index of the man pages (dict of
#          strings to lists of ints), parsed JSON records, numeric series,
#          rendered HTML fragments, and an http.server serving
#          /usr/share/doc to a client that fetches files.
#   build: a compile (python -m compileall of the standard library, its
#          .pyc written to tmpfs), then a redis-server of sessions, scores
#          and config, and the ASTs' symbol tables kept by the builder.
import array, gzip, json, os, random, re, socket, subprocess, sys, threading, time

role, seed = sys.argv[1], int(sys.argv[2])
scale = float(os.environ.get("VMUX_GUEST_SCALE", "1"))
rnd = random.Random(seed)
WORD = re.compile(r"[A-Za-z][a-z]{2,11}")


def log(*a):
    print("guest:", role, *a, flush=True)


def files_under(top, pred):
    out = []
    for d, _, fs in os.walk(top):
        for f in fs:
            if pred(f):
                out.append(os.path.join(d, f))
    out.sort()
    return out


def read_text(p):
    try:
        with open(p, "rb") as f:
            b = f.read()
    except OSError:
        return ""
    if p.endswith(".gz"):
        try:
            b = gzip.decompress(b)
        except Exception:
            return ""
    return b.decode("utf-8", "replace")


def vocabulary(n_files):
    docs = files_under("/usr/share/doc", lambda f: f == "copyright")
    rnd.shuffle(docs)
    ws = set()
    for p in docs[:n_files]:
        ws.update(WORD.findall(read_text(p)))
    return sorted(ws)


class Redis:
    """A minimal RESP client with pipelining."""

    def __init__(self, port):
        for _ in range(600):
            try:
                self.s = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.1)
        self.f = self.s.makefile("rb")

    @staticmethod
    def enc(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def reply(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            return [self.reply() for _ in range(int(rest))]
        if t == b"-":
            raise RuntimeError(rest.decode())
        return rest

    def pipe(self, cmds):
        self.s.sendall(b"".join(self.enc(c) for c in cmds))
        return [self.reply() for _ in cmds]


def redis_server(port, maxmem):
    subprocess.Popen(["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", "/tmp", "--maxmemory", maxmem, "--daemonize", "no",
                      "--loglevel", "warning"], stdout=subprocess.DEVNULL)
    return Redis(port)


def name(vocab):
    return rnd.choice(vocab).capitalize() + " " + rnd.choice(vocab).capitalize()


def sentence(vocab, lo, hi):
    return " ".join(rnd.choice(vocab) for _ in range(rnd.randint(lo, hi))).capitalize() + "."


def batched(r, gen, n=500):
    cmds = []
    for c in gen:
        cmds.append(c)
        if len(cmds) == n:
            r.pipe(cmds)
            cmds = []
    if cmds:
        r.pipe(cmds)


def load_cache(r, vocab):
    users = int(40000 * scale)
    cities = [rnd.choice(vocab).capitalize() for _ in range(300)]
    domains = [rnd.choice(vocab) + ".example" for _ in range(40)]

    def gen():
        t0 = 1700000000 + seed * 86400
        for i in range(users):
            yield ("HSET", "user:%d" % i, "name", name(vocab), "email",
                   "%s.%s@%s" % (rnd.choice(vocab), rnd.choice(vocab), rnd.choice(domains)),
                   "city", rnd.choice(cities), "bio", sentence(vocab, 6, 30),
                   "created", t0 + rnd.randrange(10**7), "karma", rnd.randrange(10**5))
        for i in range(users // 2):
            doc = {"id": i, "author": "user:%d" % rnd.randrange(users), "title": sentence(vocab, 3, 9),
                   "tags": rnd.sample(vocab, rnd.randint(1, 6)),
                   "items": [{"sku": "%s-%04d" % (rnd.choice(vocab)[:4].upper(), rnd.randrange(10000)),
                              "qty": rnd.randint(1, 9), "price": round(rnd.uniform(0.5, 400), 2)}
                             for _ in range(rnd.randint(0, 5))],
                   "body": " ".join(sentence(vocab, 5, 20) for _ in range(rnd.randint(1, 4)))}
            yield ("SET", "doc:%d" % i, json.dumps(doc))
        for u in range(users // 20):
            yield ("RPUSH", "feed:%d" % u) + tuple(
                "%s %s doc:%d at %d" % (name(vocab), rnd.choice(["liked", "shared", "edited", "read"]),
                                        rnd.randrange(users // 2), t0 + rnd.randrange(10**6))
                for _ in range(rnd.randint(5, 40)))
        for i in range(users):
            yield ("SET", "counter:%s:%d" % (rnd.choice(["view", "click", "login"]), i), rnd.randrange(10**6))
        for i in range(0, users, 100):
            yield ("ZADD", "board") + tuple(x for j in range(i, i + 100) for x in (rnd.randrange(10**6), "user:%d" % j))
    batched(r, gen())
    return users


def scan_logs(paths):
    """Read text files as a log scanner would: counts per word."""
    counts = {}
    for p in paths:
        for w in WORD.findall(read_text(p)):
            counts[w] = counts.get(w, 0) + 1
    return counts


def cache():
    vocab = vocabulary(300)
    r = redis_server(6379, "300mb")
    users = load_cache(r, vocab)
    docs = files_under("/usr/share/doc", lambda f: f.startswith("changelog") or f == "copyright" or f.endswith(".txt"))
    counts = scan_logs(docs[:int(1500 * scale)])
    log("users", users, "words", len(counts))
    ready()
    while True:
        time.sleep(1)
        r.pipe([("HINCRBY", "user:%d" % rnd.randrange(200), "karma", 1) for _ in range(50)] +
               [("GET", "doc:%d" % rnd.randrange(users // 2)) for _ in range(50)])


def app():
    vocab = vocabulary(200)
    pages = files_under("/usr/share/man", lambda f: f.endswith(".gz"))
    rnd.shuffle(pages)
    index = {}  # word -> list of (page number << 16 | line)
    titles = []
    for n, p in enumerate(pages[:int(900 * scale)]):
        titles.append(os.path.basename(p))
        for ln, line in enumerate(read_text(p).splitlines()):
            for w in set(WORD.findall(line)):
                index.setdefault(w.lower(), []).append(n << 16 | (ln & 0xFFFF))
    records = []
    for i in range(int(60000 * scale)):
        rec = {"order": i, "customer": name(vocab), "lines": [{"item": rnd.choice(vocab), "qty": rnd.randint(1, 5),
                                                                 "cents": rnd.randrange(100, 90000)} for _ in range(rnd.randint(1, 4))],
               "status": rnd.choice(["new", "paid", "shipped", "returned"]), "note": sentence(vocab, 0, 12)}
        records.append(json.loads(json.dumps(rec)))
    series = array.array("d")
    x = 100.0
    for _ in range(int(400000 * scale)):
        x += rnd.gauss(0, 1)
        series.append(x)
    samples = [round(v, 3) for v in series[::4]]
    html = {}
    for i in range(int(6000 * scale)):
        rec = records[i]
        html["/order/%d" % i] = "<tr><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>\n" % (
            rec["order"], rec["customer"], rec["status"], "".join("<li>%s x%d</li>" % (l["item"], l["qty"]) for l in rec["lines"]))
    import http.server
    import functools
    import urllib.request
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass
    handler = functools.partial(Quiet, directory="/usr/share/doc")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 8080), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    docs = files_under("/usr/share/doc", lambda f: True)
    served = 0
    for p in docs[:int(2500 * scale)]:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8080" + p[len("/usr/share/doc"):]) as resp:
                served += len(resp.read())
        except Exception:
            pass
    log("index", len(index), "records", len(records), "series", len(series), len(samples), "served", served)
    ready()
    while True:
        time.sleep(1)
        for _ in range(50):
            records[rnd.randrange(200)]["status"] = rnd.choice(["paid", "shipped"])
        try:
            p = rnd.choice(docs[:200])
            urllib.request.urlopen("http://127.0.0.1:8080" + p[len("/usr/share/doc"):]).read()
        except Exception:
            pass


def build():
    env = dict(os.environ, PYTHONPYCACHEPREFIX="/tmp/pyc")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "1", "/usr/lib/python3.11"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import ast
    symbols = {}  # module -> names it defines, like a build's symbol table
    srcs = files_under("/usr/lib/python3.11", lambda f: f.endswith(".py"))
    for p in srcs[:int(300 * scale)]:
        try:
            tree = ast.parse(read_text(p))
        except SyntaxError:
            continue
        symbols[p] = sorted({n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))})
    vocab = vocabulary(150)
    r = redis_server(6380, "200mb")
    sessions = int(50000 * scale)

    def gen():
        for i in range(sessions):
            tok = "%032x" % rnd.getrandbits(128)
            yield ("SET", "sess:" + tok, json.dumps({"user": rnd.randrange(10**6), "agent": rnd.choice(
                ["Mozilla/5.0 (X11; Linux x86_64)", "curl/7.88.1", "python-requests/2.28"]),
                "cart": [rnd.choice(vocab) for _ in range(rnd.randint(0, 6))], "ts": 1700000000 + i}))
        for g in range(200):
            yield ("ZADD", "scores:%d" % g) + tuple(x for j in range(100) for x in (rnd.random(), name(vocab)))
        for i in range(sessions // 10):
            yield ("HSET", "config:%d" % i, "feature", rnd.choice(vocab), "enabled", rnd.randint(0, 1),
                   "rollout", rnd.randrange(100), "owner", name(vocab))
    batched(r, gen())
    log("compiled", len(files_under("/tmp/pyc", lambda f: True)), "symbols", len(symbols), "sessions", sessions)
    ready()
    while True:
        time.sleep(1)
        r.pipe([("ZINCRBY", "scores:%d" % rnd.randrange(200), 1, "x") for _ in range(50)])


def ready():
    print("vmux-guest-ready", flush=True)


{"cache": cache, "app": app, "build": build}[role]()

# A process that keeps arrays of known content and checks them on demand,
# for the live engine's tests. Commands on stdin, one answer line each:
#   check   -> "ok SUM" or "bad SUM" (SUM: sha256 of every array)
#   fork    -> forks; the child checks its copy, reports, and exits:
#              "child ok SUM" / "child bad SUM", then the parent's "ok SUM"
#   touch N -> writes one byte in array N (returns the new sum)
#   exit
import hashlib, os, random, sys

MB = 1 << 20
rnd = random.Random(42)
base = bytes(rnd.getrandbits(8) if i % 8 < 3 else 0 for i in range(4096))
arrays = [
    bytearray(8 * MB),                                   # zero
    bytearray(base * (8 * MB // 4096)),                  # identical pages
    bytearray(b"".join(bytes(base[:100]) + bytes([i % 251, i // 251 % 251]) + base[102:]
                       for i in range(8 * MB // 4096))), # similar pages
    bytearray(b"".join((b"%08d," % (i * 7)) * 512 for i in range(8 * MB // 4096))),  # compressible
    bytearray(rnd.randbytes(4 * MB)),                    # random
]
for a in arrays[:1]:
    for i in range(0, len(a), 4096):
        a[i] = 0  # touch the zero pages so they are resident

def digest():
    h = hashlib.sha256()
    for a in arrays:
        h.update(a)
    return h.hexdigest()

want = digest()
print("ready", os.getpid(), want, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "check":
        d = digest()
        print("ok" if d == want else "bad", d, flush=True)
    elif cmd[0] == "touch":
        a = arrays[int(cmd[1])]
        a[len(a) // 2] ^= 1
        want = digest()
        print("ok", want, flush=True)
    elif cmd[0] == "fork":
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            d = digest()
            os.write(w, (("child ok " if d == want else "child bad ") + d + "\n").encode())
            os._exit(0)
        os.close(w)
        msg = os.read(r, 200).decode().strip()
        os.close(r)
        os.waitpid(pid, 0)
        print(msg, flush=True)
        d = digest()
        print("ok" if d == want else "bad", d, flush=True)
    elif cmd[0] == "exit":
        break

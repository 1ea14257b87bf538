"""Processes: starting and stopping what the benchmarks run (by PID only), reading their CPU time
and memory from /proc, free loopback ports, config templates, and a curl probe."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

PKG = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(PKG)  # bench/
ROOT = os.path.dirname(BENCH)  # the repository
TEMPLATES = os.path.join(BENCH, "templates")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def terminate(p, timeout=10.0, sig=signal.SIGTERM):
    """Stops one Popen: `sig`, then SIGKILL after `timeout` seconds."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


class Registry:
    """Every process this harness starts, by PID; stopped by PID only."""

    def __init__(self, tmp):
        self.pidfile = os.path.join(tmp, "pids")
        self.procs = []  # Popen objects
        self.extra = set()  # pids of children we saw (nginx workers)

    def _write(self):
        pids = [p.pid for p in self.procs if p.poll() is None] + sorted(self.extra)
        with open(self.pidfile + ".new", "w") as f:
            f.write("".join(f"{p}\n" for p in pids))
        os.replace(self.pidfile + ".new", self.pidfile)

    def popen(self, cmd, **kw):
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        self._write()
        return p

    def add_children(self, pids):
        self.extra.update(pids)
        self._write()

    def stop(self, p, children=(), timeout=10.0, sig=signal.SIGTERM):
        terminate(p, timeout, sig)
        # children (nginx workers) normally exit with their master; make sure
        for c in children:
            if c in self.extra:
                if alive(c):
                    deadline = time.time() + 3
                    while alive(c) and time.time() < deadline:
                        time.sleep(0.05)
                    if alive(c):
                        try:
                            os.kill(c, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                self.extra.discard(c)
        if p in self.procs:
            self.procs.remove(p)
        self._write()

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p, children=list(self.extra), timeout=5)
        for c in list(self.extra):
            if alive(c):
                try:
                    os.kill(c, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.extra.clear()
        self._write()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return out


def cpu_ticks(pids):
    """utime + stime of the processes `pids`, in clock ticks (processes gone count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime stime (fields 14, 15)
        except OSError:
            pass
    return total


def cpu_seconds(pids):
    return cpu_ticks(pids) / CLK_TCK


def machine_busy_ticks():
    """Busy clock ticks of the whole machine (every CPU, every process, interrupts included) from
    /proc/stat: user nice system irq softirq steal. Kernel work a proxy causes but is not charged
    for (softirq on another CPU, waking its peers) lands here, as does wrk's and the origin's."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def status_kib(pids, key):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0):
    """Waits until something accepts connections on 127.0.0.1:port (RuntimeError after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def render(name, out, **kv):
    with open(os.path.join(TEMPLATES, name)) as f:
        text = f.read()
    for k, v in kv.items():
        text = text.replace(f"@@{k}@@", str(v))
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise RuntimeError(f"unfilled placeholders in {name}: {left}")
    with open(out, "w") as f:
        f.write(text)
    return out


def tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(l.strip() for l in f.readlines()[-n:] if l.strip())
    except FileNotFoundError:
        return ""


def curl(url, tmp, timeout=2.0):
    """(status, headers dict lower-case, body bytes) or (0, {}, b''); the response head is
    written to a file in the work dir `tmp`."""
    hdr = os.path.join(tmp, "curl.hdr")
    try:
        r = subprocess.run(["curl", "-s", "-m", str(timeout), "-D", hdr, "-o", "-", url],
                           capture_output=True, timeout=timeout + 2)
    except subprocess.TimeoutExpired:
        return 0, {}, b""
    status, headers = 0, {}
    try:
        with open(hdr, errors="replace") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if line.startswith("HTTP/"):
                    status, headers = int(line.split()[1]), {}
                elif ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
    except (FileNotFoundError, ValueError, IndexError):
        pass
    return status, headers, r.stdout



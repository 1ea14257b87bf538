"""Servers: the origin and the contenders (direct, nginx, haproxy, nginx+lua, problemgate),
rendered from bench/templates/ and started on free 127.0.0.1 ports."""
import os
import shutil
import subprocess
import time

from .procs import TEMPLATES, children_of, curl, free_port, log, render, tail


class StartError(Exception):
    pass


class Server:
    def __init__(self, reg, tmp, name, cmd, port, logname, ready_timeout=15.0, uses_children=False):
        self.reg, self.tmp, self.name, self.cmd, self.port = reg, tmp, name, cmd, port
        self.log = os.path.join(tmp, logname)
        self.ready_timeout = ready_timeout
        self.uses_children = uses_children
        self.p = None
        self.children = []

    @property
    def pids(self):
        return [self.p.pid] + self.children

    def start(self):
        lf = open(self.log, "ab")
        self.p = self.reg.popen(self.cmd, stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        lf.close()
        deadline = time.time() + self.ready_timeout
        url = f"http://127.0.0.1:{self.port}/ok"
        while True:  # curl readiness loop
            if self.p.poll() is not None:
                raise StartError(f"{self.name} exited with {self.p.returncode}: {tail(self.log)}")
            st, _, _ = curl(url, self.tmp, timeout=1.0)
            if st:
                break
            if time.time() > deadline:
                self.stop()
                raise StartError(f"{self.name} not ready after {self.ready_timeout:.0f}s: {tail(self.log)}")
            time.sleep(0.1)
        if self.uses_children:
            self.children = children_of(self.p.pid)
            self.reg.add_children(self.children)
        return self

    def stop(self):
        if self.p is not None:
            self.reg.stop(self.p, children=self.children)
            self.p = None
            self.children = []
        # problemgate's access log goes here: keep only the tail of big logs
        try:
            if os.path.getsize(self.log) > (1 << 20):
                with open(self.log, "rb") as f:
                    f.seek(-65536, os.SEEK_END)
                    keep = f.read()
                with open(self.log, "wb") as f:
                    f.write(keep)
        except OSError:
            pass


class Contender:
    """A kind of proxy; make(workers, port, variant) -> Server (or None for direct)."""

    def __init__(self, name, available, why=""):
        self.name, self.available, self.why = name, available, why


class Bench:
    def __init__(self, args, tmp, reg):
        self.a, self.tmp, self.reg = args, tmp, reg
        self.user = "user www-data;" if os.geteuid() == 0 else ""
        self.origin_port = None
        self.seq = 0

    # ---- origin ----
    def start_origin(self):
        big = os.path.join(self.tmp, "big.json")
        chunk = '{"data":"' + "x" * (1024 * 1024 - 12) + '"}\n'
        with open(big, "w") as f:
            f.write(chunk)
        assert os.path.getsize(big) == 1024 * 1024
        self.origin_port = free_port()
        conf = render("origin.nginx.conf", os.path.join(self.tmp, "origin.conf"),
                      DIR=self.tmp, PORT=self.origin_port, USER=self.user)
        self.origin = Server(self.reg, self.tmp, "origin",
                             ["nginx", "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "origin.error.log")],
                             self.origin_port, "origin.out", uses_children=True).start()
        log(f"origin nginx on 127.0.0.1:{self.origin_port} (pid {self.origin.p.pid}, 1 worker)")

    # ---- contenders ----
    def make(self, kind, workers, variant=None, port=None, valgrind=None):
        """Returns a not-yet-started Server for a contender."""
        self.seq += 1
        name = f"{kind.replace('+', '-')}-w{workers}-{self.seq}"
        port = port or free_port()
        t = self.tmp
        if kind == "nginx":
            conf = render("nginx.conf", f"{t}/{name}.conf", DIR=t, NAME=name, PORT=port,
                          ORIGIN_PORT=self.origin_port, WORKERS=workers, USER=self.user)
            return Server(self.reg, t, name, ["nginx", "-p", t, "-c", conf, "-e", f"{t}/{name}.error.log"],
                          port, f"{name}.out", uses_children=True)
        if kind == "nginx+lua":
            os.makedirs(f"{t}/lua", exist_ok=True)
            shutil.copy(os.path.join(TEMPLATES, "problem_filter.lua"), f"{t}/lua/problem_filter.lua")
            conf = render("nginx-lua.conf", f"{t}/{name}.conf", DIR=t, NAME=name, PORT=port,
                          ORIGIN_PORT=self.origin_port, WORKERS=workers, USER=self.user)
            return Server(self.reg, t, name, ["nginx", "-p", t, "-c", conf, "-e", f"{t}/{name}.error.log"],
                          port, f"{name}.out", uses_children=True)
        if kind == "haproxy":
            conf = render("haproxy.cfg", f"{t}/{name}.cfg", DIR=t, NAME=name, PORT=port,
                          ORIGIN_PORT=self.origin_port, WORKERS=workers)
            return Server(self.reg, t, name, ["haproxy", "-db", "-f", conf], port, f"{name}.out")
        if kind == "problemgate":
            rl = ""
            if variant == "ratelimit":
                rl = "    rate_limit: { limit: 100000000, window: 60s, key: client_ip }"
            up = ""
            if variant == "reuse-check":
                up = "    reuse_check_after: 1s"
            conf = render("problemgate.yaml", f"{t}/{name}.yaml", PORT=port,
                          ORIGIN_PORT=self.origin_port, WORKERS=workers, RATE_LIMIT=rl, UPSTREAM_EXTRA=up)
            cmd = [self.a.problemgate, "--config", conf]
            timeout = 15.0
            if valgrind:
                cmd = valgrind + cmd
                timeout = 120.0
            return Server(self.reg, t, name, cmd, port, f"{name}.out", ready_timeout=timeout)
        raise ValueError(kind)


def check_contenders(args):
    """Which contenders can run here, and why not."""
    out = {"direct": Contender("direct", True)}
    out["nginx"] = Contender("nginx", bool(shutil.which("nginx")), "nginx not installed")
    out["haproxy"] = Contender("haproxy", bool(shutil.which("haproxy")), "haproxy not installed")
    lua_ok = shutil.which("nginx") and os.path.exists("/usr/lib/nginx/modules/ngx_http_lua_module.so") \
        and os.path.exists("/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so")
    out["nginx+lua"] = Contender("nginx+lua", bool(lua_ok),
                                 "libnginx-mod-http-lua or lua-cjson (5.1 cjson.so) missing")
    pg = args.problemgate
    out["problemgate"] = Contender("problemgate", bool(pg and os.access(pg, os.X_OK)),
                                   f"binary {pg} missing (not built yet: CMake target `problemgate` absent or build failed)")
    return out


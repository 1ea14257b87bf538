#!/usr/bin/env python3
"""Structural checks of docker/ (Dockerfile, compose, Kubernetes sidecar example).

No Docker engine or cluster is needed (CI has neither): this parses the files and checks that
they agree with each other and with problemgate's config surface, e.g. that the Service targets
problemgate's listen port and not the app's, that probes hit the probes port (and the controls
stay on loopback), that the grace
period covers the drain timeout, that the image installs the runtime package of every shared
library the binary links.

    python3 docker/check_manifests.py                     # structure only
    PROBLEMGATE_BIN=build/problemgate python3 docker/check_manifests.py
        # + `problemgate check-config` on every shipped config, and ldd -> dpkg -S of the binary
        #   (and of problemgate-demo-api next to it) against the Dockerfile's runtime packages

Exit 0: all checks pass; 1: a check failed (each failure printed); 77: PyYAML missing (skip).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # Debian: python3-yaml
    print("check_manifests: SKIP: PyYAML (python3-yaml) is not installed", file=sys.stderr)
    sys.exit(77)

DOCKER_DIR = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(DOCKER_DIR)
K8S_DIR = os.path.join(DOCKER_DIR, "k8s")

# Shared libraries every Debian base image (bookworm-slim included) already has.
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}

failures: list[str] = []
checks = 0


def check(cond: bool, what: str) -> bool:
    global checks
    checks += 1
    if not cond:
        failures.append(what)
    return cond


def load_docs(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def duration_ms(text) -> int:
    """problemgate durations: 250ms, 10s, 5m, 1h; a bare number is refused, except 0."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(text))
    if not m or (m.group(2) is None and int(m.group(1)) != 0):
        raise ValueError(f"bad duration {text!r}")
    n, unit = int(m.group(1)), m.group(2) or "ms"
    return n * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def port_of(listen) -> int:
    first = listen[0] if isinstance(listen, list) else listen
    return int(str(first).rsplit(":", 1)[1])


def host_of(listen) -> str:
    first = listen[0] if isinstance(listen, list) else listen
    return str(first).rsplit(":", 1)[0]


def url_host_port(url: str) -> tuple[str, int]:
    m = re.fullmatch(r"http://([^/:]+):(\d+)/?", url)
    if not m:
        raise ValueError(f"upstream url {url!r} is not http://host:port")
    return m.group(1), int(m.group(2))


def check_container_config(cfg: dict, where: str, upstream_host: str, upstream_port: int) -> None:
    """A config for a container: the proxy and the probes on all interfaces, the controls on
    loopback, one upstream, the expected one."""
    check(isinstance(cfg, dict), f"{where}: not a mapping")
    check(cfg.get("listen") == "0.0.0.0:8080", f"{where}: listen should be 0.0.0.0:8080")
    admin = cfg.get("admin") or {}
    check(admin.get("listen") == "127.0.0.1:9901",
          f"{where}: admin.listen (GET /config, POST /reload) should stay on loopback, 127.0.0.1:9901")
    check(admin.get("probes_listen") == "0.0.0.0:9902",
          f"{where}: admin.probes_listen should be 0.0.0.0:9902 (probes come from outside the container)")
    ups = cfg.get("upstreams") or {}
    check(len(ups) >= 1, f"{where}: no upstreams")
    for name, u in ups.items():
        try:
            host, port = url_host_port(u["url"])
        except (KeyError, ValueError) as e:
            check(False, f"{where}: upstream {name}: {e}")
            continue
        check((host, port) == (upstream_host, upstream_port),
              f"{where}: upstream {name} is {host}:{port}, expected {upstream_host}:{upstream_port}")
    for r in cfg.get("routes") or []:
        check(r.get("upstream") in ups, f"{where}: route {r.get('name')} names an unknown upstream")


def check_config_with_binary(bin_path: str | None, text: str, where: str) -> None:
    if not bin_path:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        tmp = f.name
    try:
        r = subprocess.run([bin_path, "check-config", tmp], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, f"{where}: problemgate check-config failed: {r.stdout}{r.stderr}")
    finally:
        os.unlink(tmp)


# ---- Dockerfile ------------------------------------------------------------------------------

def parse_dockerfile(path: str) -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, stage, buf = [], "", ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.lstrip().startswith("#"):
                continue  # a comment inside a continued instruction
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            instr, _, args = buf.strip().partition(" ")
            instr = instr.upper()
            if instr == "FROM":
                m = re.search(r"\bAS\s+(\S+)", args, re.I)
                stage = m.group(1) if m else ""
            out.append((stage, instr, args.strip()))
            buf = ""
    return out


def check_dockerfile(bin_path: str | None) -> None:
    path = os.path.join(DOCKER_DIR, "Dockerfile")
    ins = parse_dockerfile(path)
    stages = [s for s, i, _ in ins if i == "FROM"]
    check(stages[-1:] == ["runtime"], "Dockerfile: the last stage (the default target) should be runtime")
    for s in ("build", "test", "runtime"):
        check(s in stages, f"Dockerfile: no {s} stage")
    froms = {s: a for s, i, a in ins if i == "FROM"}
    check("bookworm-slim" in froms.get("runtime", "") or "-slim" in froms.get("runtime", ""),
          "Dockerfile: runtime stage should be debian:bookworm-slim")
    runs = {s: " ".join(a for st, i, a in ins if st == s and i == "RUN") for s in stages}
    deps_runs = runs.get("deps", "") + runs.get("build", "")
    check("scripts/install-deps.sh" in deps_runs, "Dockerfile: build stages should run scripts/install-deps.sh")
    check("scripts/test.sh" in runs.get("test", ""), "Dockerfile: test stage should run scripts/test.sh")
    check("-DCMAKE_BUILD_TYPE=Release" in runs.get("build", ""), "Dockerfile: build should be Release")
    rt = [(i, a) for s, i, a in ins if s == "runtime"]
    rt_by = {}
    for i, a in rt:
        rt_by.setdefault(i, []).append(a)
    user = (rt_by.get("USER") or [""])[-1]
    check(re.fullmatch(r"\d+(:\d+)?", user) is not None and not user.startswith("0"),
          f"Dockerfile: runtime USER should be a numeric non-root uid (runAsNonRoot), got {user!r}")
    exposed = set(" ".join(rt_by.get("EXPOSE", [])).split())
    check(exposed == {"8080", "9902"},
          f"Dockerfile: EXPOSE should be 8080 9902 (proxy, probes; never the controls), got {sorted(exposed)}")
    hc = " ".join(rt_by.get("HEALTHCHECK", []))
    check("127.0.0.1:9901/healthz" in hc and "--fail" in hc,
          "Dockerfile: HEALTHCHECK should curl --fail the admin /healthz on 9901")
    check(rt_by.get("STOPSIGNAL") == ["SIGTERM"], "Dockerfile: STOPSIGNAL should be SIGTERM")
    check(rt_by.get("ENTRYPOINT") == ['["problemgate"]'], "Dockerfile: ENTRYPOINT should be [\"problemgate\"]")
    check(rt_by.get("CMD") == ['["--config", "/etc/problemgate/problemgate.yaml"]'],
          "Dockerfile: CMD should be --config /etc/problemgate/problemgate.yaml")
    copies = " ".join(rt_by.get("COPY", []))
    check("docker/problemgate.container.yaml /etc/problemgate/problemgate.yaml" in copies,
          "Dockerfile: runtime should COPY docker/problemgate.container.yaml to /etc/problemgate/")
    check("problemgate-demo-api" in copies, "Dockerfile: runtime should also ship problemgate-demo-api")
    for s, i, a in ins:
        if i == "COPY" and "--from" not in a:
            for src in shlex.split(a)[:-1]:
                check(src == "." or os.path.exists(os.path.join(REPO, src)),
                      f"Dockerfile: COPY source {src} does not exist")

    # The runtime stage's apt packages.
    apt = " ".join(a for i, a in rt if i == "RUN" and "apt-get install" in a)
    words = apt.split("apt-get install", 1)[1].split("&&", 1)[0].split() if apt else []
    packages = {w for w in words if not w.startswith("-") and w != "\\"}
    check("curl" in packages, "Dockerfile: runtime needs curl for the HEALTHCHECK")

    cfg_path = os.path.join(DOCKER_DIR, "problemgate.container.yaml")
    with open(cfg_path, encoding="utf-8") as f:
        text = f.read()
    check_container_config(yaml.safe_load(text), "problemgate.container.yaml", "127.0.0.1", 9000)
    check_config_with_binary(bin_path, text, "problemgate.container.yaml")

    if bin_path:
        check_runtime_libraries(bin_path, packages)


def check_runtime_libraries(bin_path: str, packages: set[str]) -> None:
    if not (shutil.which("ldd") and shutil.which("dpkg-query")):
        print("check_manifests: note: no ldd/dpkg here, runtime library check skipped", file=sys.stderr)
        return
    bins = [bin_path]
    demo = os.path.join(os.path.dirname(bin_path), "problemgate-demo-api")
    if os.path.exists(demo):
        bins.append(demo)
    for b in bins:
        r = subprocess.run(["ldd", b], capture_output=True, text=True)
        if not check(r.returncode == 0, f"ldd {b} failed: {r.stderr}"):
            continue
        for line in r.stdout.splitlines():
            m = re.match(r"\s*(\S+) => (/\S+)", line)
            if not m:
                continue
            lib, resolved = m.group(1), os.path.realpath(m.group(2))
            if "asan" in lib or "ubsan" in lib:
                continue  # a sanitizer build; the image is built without
            owner = None
            raw = m.group(2)
            merged = raw[4:] if raw.startswith("/usr/") else "/usr" + raw  # usrmerge: /lib == /usr/lib
            for candidate in (raw, merged, resolved):
                q = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
                if q.returncode == 0:
                    owner = q.stdout.split(":", 1)[0].strip()
                    break
            if not check(owner is not None, f"{os.path.basename(b)}: {lib} ({resolved}) belongs to no package"):
                continue
            check(owner in BASE_PACKAGES or owner in packages,
                  f"{os.path.basename(b)} links {lib} from {owner}, missing from the Dockerfile's runtime packages")


# ---- compose ---------------------------------------------------------------------------------

def check_compose(bin_path: str | None) -> None:
    (doc,) = load_docs(os.path.join(DOCKER_DIR, "compose.yaml"))
    svcs = doc.get("services") or {}
    if not check({"demo-api", "problemgate"} <= set(svcs), "compose: needs demo-api and problemgate services"):
        return
    demo, pg = svcs["demo-api"], svcs["problemgate"]
    check(demo.get("image") == pg.get("image"), "compose: both services should use the one image")
    check("build" in pg, "compose: problemgate should build the image")
    ep = demo.get("entrypoint") or []
    check(ep[:1] == ["problemgate-demo-api"] and "--listen" in ep, "compose: demo-api entrypoint")
    demo_listen = ep[ep.index("--listen") + 1] if "--listen" in ep and ep.index("--listen") + 1 < len(ep) else ""
    check(host_of(demo_listen) == "0.0.0.0", "compose: demo-api must listen on 0.0.0.0 to be reachable")
    check("healthcheck" in demo, "compose: demo-api needs its own healthcheck (the image's probes problemgate)")
    dep = (pg.get("depends_on") or {}).get("demo-api") or {}
    check(dep.get("condition") in ("service_healthy", "service_started"),
          "compose: problemgate should depend_on demo-api with a condition")
    ports = {str(p).split(":")[-1] for p in pg.get("ports") or []}
    check({"8080", "9902"} <= ports, "compose: problemgate should publish 8080 and 9902 (probes)")
    check("9901" not in ports, "compose: don't publish 9901: the controls stay on the container's loopback")
    check("healthcheck" in pg, "compose: problemgate should have a healthcheck")
    mounted = None
    for v in pg.get("volumes") or []:
        src, dst = str(v).split(":")[:2]
        if dst == "/etc/problemgate/problemgate.yaml":
            mounted = os.path.normpath(os.path.join(DOCKER_DIR, src))
    if check(mounted is not None and os.path.exists(mounted),
             "compose: problemgate should mount an existing config at /etc/problemgate/problemgate.yaml"):
        with open(mounted, encoding="utf-8") as f:
            text = f.read()
        check_container_config(yaml.safe_load(text), os.path.basename(mounted), "demo-api", port_of(demo_listen))
        check_config_with_binary(bin_path, text, os.path.basename(mounted))
        cfg = yaml.safe_load(text)
        drain = duration_ms(((cfg.get("limits") or {}).get("drain_timeout")) or "30s")
        grace = duration_ms(str(pg.get("stop_grace_period", "10s")))
        check(grace > drain, f"compose: stop_grace_period {grace}ms should exceed drain_timeout {drain}ms")


# ---- Kubernetes ------------------------------------------------------------------------------

def probe_port(probe: dict, ports: dict[str, int]) -> int | None:
    p = (probe.get("httpGet") or {}).get("port")
    return ports.get(p) if isinstance(p, str) else p


def check_k8s(bin_path: str | None) -> None:
    docs = []
    for name in sorted(os.listdir(K8S_DIR)):
        if name.endswith((".yaml", ".yml")):
            for d in load_docs(os.path.join(K8S_DIR, name)):
                docs.append((name, d))
    for name, d in docs:
        check(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and (d.get("metadata") or {}).get("name"),
              f"k8s/{name}: every object needs apiVersion, kind and metadata.name")
    by_kind: dict[str, list[dict]] = {}
    for _, d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ("ConfigMap", "Deployment", "Service"):
        if not check(len(by_kind.get(kind, [])) == 1, f"k8s: expected exactly one {kind}"):
            return
    (cm,), (dep,), (svc,) = by_kind["ConfigMap"], by_kind["Deployment"], by_kind["Service"]

    # ConfigMap: a valid problemgate config for the sidecar.
    data = cm.get("data") or {}
    if not check("problemgate.yaml" in data, "k8s ConfigMap: needs a problemgate.yaml key"):
        return
    cfg = yaml.safe_load(data["problemgate.yaml"])
    check_container_config(cfg, "k8s ConfigMap problemgate.yaml", "127.0.0.1", 3000)
    check_config_with_binary(bin_path, data["problemgate.yaml"], "k8s ConfigMap problemgate.yaml")
    check(cfg.get("threads") not in (None, "auto"),
          "k8s ConfigMap: set threads explicitly (auto counts the node's cores, not the CPU limit)")

    # Deployment.
    check(dep.get("apiVersion") == "apps/v1", "k8s Deployment: apiVersion apps/v1")
    spec = dep["spec"]
    tmpl = spec["template"]
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    check(sel and all(labels.get(k) == v for k, v in sel.items()),
          "k8s Deployment: selector.matchLabels must match the template's labels")
    pod = tmpl["spec"]
    containers = {c["name"]: c for c in pod.get("containers") or []}
    if not check("problemgate" in containers and len(containers) >= 2,
                 "k8s Deployment: needs an application container and a problemgate container"):
        return
    pg = containers["problemgate"]
    app = next(c for n, c in containers.items() if n != "problemgate")
    pg_ports = {p.get("name"): p["containerPort"] for p in pg.get("ports") or []}
    check(pg_ports.get("http") == port_of(cfg["listen"]), "k8s: problemgate port 'http' must be the config's listen port")
    admin = cfg.get("admin") or {}
    check(pg_ports.get("probes") == port_of(admin.get("probes_listen", "off:0")),
          "k8s: problemgate port 'probes' must be the config's admin.probes_listen port")
    check(port_of(admin.get("listen", "127.0.0.1:9901")) not in pg_ports.values(),
          "k8s: don't declare the controls port (admin.listen): it listens on the pod's loopback only")
    rp, lp = pg.get("readinessProbe") or {}, pg.get("livenessProbe") or {}
    check((rp.get("httpGet") or {}).get("path") == "/readyz" and probe_port(rp, pg_ports) == pg_ports.get("probes"),
          "k8s: problemgate readinessProbe should be GET /readyz on the probes port")
    check((lp.get("httpGet") or {}).get("path") == "/healthz" and probe_port(lp, pg_ports) == pg_ports.get("probes"),
          "k8s: problemgate livenessProbe should be GET /healthz on the probes port")
    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(pg_ports.get("probes"))
          and ann.get("prometheus.io/path") == "/metrics",
          "k8s: prometheus.io/scrape|port|path annotations should point at the probes port's /metrics")

    # Config mount: the ConfigMap's directory, where --config points, no subPath.
    args = pg.get("args") or []
    cfg_path = args[args.index("--config") + 1] if "--config" in args else "/etc/problemgate/problemgate.yaml"
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    mounts = [m for m in pg.get("volumeMounts") or []
              if (volumes.get(m["name"]) or {}).get("configMap", {}).get("name") == cm["metadata"]["name"]]
    if check(len(mounts) == 1, "k8s: problemgate should mount the ConfigMap once"):
        m = mounts[0]
        check("subPath" not in m, "k8s: don't mount the config with subPath (updates would never arrive)")
        check(os.path.join(m["mountPath"], "problemgate.yaml") == cfg_path,
              f"k8s: --config {cfg_path} is not the mounted ConfigMap key")
        check(m.get("readOnly") is True, "k8s: mount the config readOnly")

    # Security and resources, every container.
    pod_sc = pod.get("securityContext") or {}
    for name, c in containers.items():
        sc = c.get("securityContext") or {}
        check(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"k8s {name}: runAsNonRoot")
        check(sc.get("readOnlyRootFilesystem") is True, f"k8s {name}: readOnlyRootFilesystem")
        check(sc.get("allowPrivilegeEscalation") is False, f"k8s {name}: allowPrivilegeEscalation: false")
        check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"k8s {name}: capabilities drop ALL")
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        check(uid not in (None, 0), f"k8s {name}: set a non-zero runAsUser (the image's USER is 10001)")
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            check({"cpu", "memory"} <= set(res.get(kind) or {}), f"k8s {name}: resources.{kind} cpu and memory")

    # Shutdown: the grace period covers preStop + drain; the app outlives problemgate's drain.
    def prestop_sleep(c: dict) -> int:
        cmd = ((((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")) or []
        return int(cmd[1]) * 1000 if cmd[:1] == ["sleep"] and len(cmd) == 2 else 0

    drain = duration_ms(((cfg.get("limits") or {}).get("drain_timeout")) or "30s")
    grace = int(pod.get("terminationGracePeriodSeconds", 30)) * 1000
    check(grace > prestop_sleep(pg) + drain,
          f"k8s: terminationGracePeriodSeconds ({grace}ms) must exceed problemgate's preStop + drain_timeout "
          f"({prestop_sleep(pg)}+{drain}ms)")
    check(prestop_sleep(app) >= prestop_sleep(pg) + drain,
          "k8s: the application's preStop sleep should cover problemgate's preStop + drain_timeout")

    # The application is what problemgate's upstream points at.
    cmd = (app.get("command") or []) + (app.get("args") or [])
    if "--listen" in cmd:
        up_host, up_port = url_host_port(next(iter(cfg["upstreams"].values()))["url"])
        check(port_of(cmd[cmd.index("--listen") + 1]) == up_port,
              "k8s: the application's --listen port should be problemgate's upstream port")

    # Service: selects the pods, targets problemgate's http port, not the application.
    check(svc["spec"].get("selector") and all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
          "k8s Service: selector must match the Deployment's pod labels")
    app_ports = {p.get("containerPort") for p in app.get("ports") or []} | {p.get("name") for p in app.get("ports") or []}
    for p in svc["spec"].get("ports") or []:
        t = p.get("targetPort", p.get("port"))
        check(t in ("http", pg_ports.get("http")), f"k8s Service: targetPort {t!r} should be problemgate's http port")
        check(t not in app_ports or t in pg_ports or t in pg_ports.values(),
              f"k8s Service: targetPort {t!r} is the application's port")


def main() -> int:
    bin_path = os.environ.get("PROBLEMGATE_BIN") or None
    if bin_path and not os.access(bin_path, os.X_OK):
        print(f"check_manifests: PROBLEMGATE_BIN={bin_path} is not executable", file=sys.stderr)
        return 1
    for part in (check_dockerfile, check_compose, check_k8s):
        try:
            part(bin_path)
        except Exception as e:  # a malformed file: report, keep checking the others
            failures.append(f"{part.__name__}: {type(e).__name__}: {e}")
    for f in failures:
        print(f"FAIL: {f}")
    print(f"check_manifests: {checks} checks, {len(failures)} failed"
          + ("" if bin_path else " (set PROBLEMGATE_BIN for check-config and ldd checks)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 23 (packaging basics): `--version` and the systemd unit.

Runs the real binary; needs nothing but the build. The systemd unit is checked structurally
here (keys and numbers against the documented defaults) and, where `systemd-analyze` is
installed, also with `systemd-analyze verify` (skipped otherwise; systemd is no dependency).
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import GATEWAY_BIN

REPO = os.path.realpath(os.environ.get("PROBLEMGATE_SOURCE_DIR",
                                       os.path.join(os.path.dirname(__file__), "..", "..")))
UNIT = os.path.join(REPO, "deploy", "systemd", "problemgate.service")
VERSION_RE = re.compile(r"^problemgate (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,40}|unknown), ([A-Za-z]+)\)$")


def project_version():
    with open(os.path.join(REPO, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(problemgate VERSION (\d+\.\d+\.\d+)", f.read()).group(1)


def git(*args):
    """`git -C REPO args...` stripped, or None when git or the checkout is missing."""
    if shutil.which("git") is None:
        return None
    r = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def duration_s(text):
    """config durations (250ms, 10s, 5m, 1h) and systemd's (45s, 1min, 90) in seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|sec|m|min|h)?\s*", text)
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]


def example_default(key):
    """The default of `key` (with its indentation) as example-full.yaml, which writes every key
    with its default, says it."""
    with open(os.path.join(REPO, "config", "example-full.yaml"), encoding="utf-8") as f:
        m = re.search(rf"^{re.escape(key)}:\s*([^#\s]+)", f.read(), re.M)
    return m.group(1)


class Version(unittest.TestCase):
    def test_version_names_version_commit_and_build_type(self):
        r = subprocess.run([GATEWAY_BIN, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = r.stdout.strip()
        m = VERSION_RE.match(line)
        self.assertIsNotNone(m, f"--version said {line!r}")
        version, commit, build_type = m.groups()
        self.assertEqual(version, project_version())
        want_type = os.environ.get("PROBLEMGATE_BUILD_TYPE")
        if want_type:
            self.assertEqual(build_type, want_type)
        top = git("rev-parse", "--show-toplevel")
        if top is not None and os.path.realpath(top) == REPO:
            # Captured at build time: a commit made after the last build makes this fail until
            # the next build, which is the point (the binary would be lying).
            self.assertEqual(commit, git("rev-parse", "--short", "HEAD"))
        else:
            self.assertEqual(commit, "unknown")


def unit_entries():
    """[(section, key, value)] of the unit file, comments and blank lines skipped."""
    entries, section = [], None
    with open(UNIT, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            entries.append((section, key.strip(), value.strip()))
    return entries


class SystemdUnit(unittest.TestCase):
    def setUp(self):
        self.service = {}
        for section, key, value in unit_entries():
            if section == "Service":
                self.service.setdefault(key, []).append(value)

    def one(self, key):
        values = self.service.get(key)
        self.assertIsNotNone(values, f"[Service] has no {key}=")
        self.assertEqual(len(values), 1, f"{key}= set more than once")
        return values[0]

    def test_runs_and_reloads_the_documented_way(self):
        self.assertIn(self.one("Type"), ("exec", "simple"))
        self.assertEqual(self.one("ExecStart"),
                         "/usr/local/bin/problemgate --config /etc/problemgate/problemgate.yaml")
        self.assertEqual(self.one("ExecReload"), "/bin/kill -HUP $MAINPID")
        self.assertEqual(self.one("KillSignal"), "SIGTERM")
        self.assertEqual(self.one("Restart"), "on-failure")

    def test_stop_timeout_covers_the_drain(self):
        drain = duration_s(example_default("  drain_timeout")) + duration_s(example_default("  accept_for"))
        self.assertGreater(duration_s(self.one("TimeoutStopSec")), drain)

    def test_descriptor_limit_covers_max_connections(self):
        # README, Limits: above limits.max_connections x (2 + 2), with room to spare.
        max_connections = int(example_default("  max_connections"))
        self.assertGreater(int(self.one("LimitNOFILE")), max_connections * 4)

    def test_sandboxed_without_capabilities(self):
        for key, value in (("DynamicUser", "yes"), ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("CapabilityBoundingSet", ""),
                           ("AmbientCapabilities", "")):
            with self.subTest(key=key):
                self.assertEqual(self.one(key), value)

    @unittest.skipIf(shutil.which("systemd-analyze") is None, "systemd-analyze not installed")
    def test_systemd_analyze_verify(self):
        # verify insists that every Exec binary exists, so point it at the build's binary; any
        # output (an unknown key, an unparsable value) is a failure even though it exits 0.
        with open(UNIT, encoding="utf-8") as f:
            text = f.read().replace("/usr/local/bin/problemgate", os.path.realpath(GATEWAY_BIN))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "problemgate.service")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                               timeout=60, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "")


if __name__ == "__main__":
    unittest.main()

"""Issue 23: config/problemgate.schema.json against the real parser (`problemgate check-config`).
Every file in config/ is valid for both; a set of invalid files is refused by both; a set of
valid ones is accepted by both. (That the schema declares exactly the parser's keys is
tests/unit/config/schema_test.cpp.)"""
import json
import os
import re
import subprocess
import tempfile
import unittest

import yaml
from jsonschema import Draft202012Validator

from harness import GATEWAY_BIN

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG_DIR = os.path.join(ROOT, "config")
SCHEMA_PATH = os.path.join(CONFIG_DIR, "problemgate.schema.json")


class CoreSchemaLoader(yaml.SafeLoader):
    """PyYAML resolves plain scalars by YAML 1.1 (`off` is false, `1:30` a number); problemgate
    by the YAML 1.2 core schema. This loader resolves like problemgate does."""


CoreSchemaLoader.yaml_implicit_resolvers = {}
for tag, pattern, first in [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^[-+]?[0-9]+$", list("-+0123456789")),
    ("tag:yaml.org,2002:float", r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$",
     list("-+.0123456789")),
]:
    CoreSchemaLoader.add_implicit_resolver(tag, re.compile(pattern), first)


def load_yaml(text):
    def keys_as_text(v):  # problemgate's keys are always text (`404:` is "404")
        if isinstance(v, dict):
            return {str(k): keys_as_text(x) for k, x in v.items()}
        if isinstance(v, list):
            return [keys_as_text(x) for x in v]
        return v
    return keys_as_text(yaml.load(text, Loader=CoreSchemaLoader))


def check_config(text, suffix=".yaml"):
    """(exit code, output) of `problemgate check-config` on `text`."""
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run([GATEWAY_BIN, "check-config", path], capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr
    finally:
        os.unlink(path)


BASE = """upstreams:
  legacy: http://127.0.0.1:9000
routes:
  - name: all
    match: { prefix: / }
"""

# name -> (document, what the parser's message contains)
INVALID = {
    "unitless duration": (BASE + "rate_limit: { limit: 100, window: 60 }\n",
                          'a duration needs a unit (ms, s, m, h): did you mean "60s"?'),
    "quoted unitless duration": (BASE + "limits: { idle_timeout: \"1500\" }\n", 'did you mean "1500ms"?'),
    "decimal size unit": (BASE + "limits: { max_body_bytes: 10MB }\n", 'invalid size "10MB"'),
    "unknown top-level key": (BASE + "listn: 127.0.0.1:8080\n", 'unknown key "listn"'),
    "unknown route key": (BASE + "    strip: true\n", 'unknown key "strip"'),
    "unknown upstream key": ("upstreams:\n  a: { url: http://x, retry: 3 }\nroutes: [{}]\n", 'unknown key "retry"'),
    "status class 3xx": (BASE + "    rules: [{ when: { status: 3xx }, set: { code: a } }]\n",
                         "expected a status from 400 to 599"),
    "status 200": (BASE + "    rules: [{ when: { status: 200 }, set: { code: a } }]\n", "expected a status"),
    "empty when": (BASE + "    rules: [{ when: {}, set: { code: a } }]\n", "at least one condition"),
    "threads 0": (BASE + "threads: 0\n", "expected auto or a number from 1 to 1024"),
    "listen without port": (BASE + "listen: localhost\n", "missing port"),
    "ftp upstream": ("upstreams:\n  a: ftp://x\nroutes: [{}]\n", "expected an http://HOST:PORT or https://HOST:PORT URL"),
    "tls listener without key": (BASE + "listen: [{ address: 127.0.0.1:8443, tls: { cert: /x.pem } }]\n",
                                 "missing key"),
    "tls min_version": (BASE + "listen: [{ address: 127.0.0.1:8443, tls: { cert: /x.pem, key: /x.key, min_version: \"1.1\" } }]\n",
                        'expected "1.2" or "1.3"'),
    "rate limit without limit": (BASE + "    rate_limit: { window: 1s }\n", "missing limit"),
    "rate limit key": (BASE + "    rate_limit: { limit: 1, key: cookie }\n", "expected client_ip, route or header:NAME"),
    "code not snake_case": (BASE + "    rules: [{ when: { status: 404 }, set: { code: NotFound } }]\n",
                            "is not lowercase_snake_case"),
    "catalog status": (BASE + "problem: { catalog: { 399: { code: a, title: A } } }\n", "catalog keys are HTTP statuses"),
    "access_log word": (BASE + "access_log: quiet\n", "expected on, off, true or false"),
    "dialect": (BASE + "    dialect: soap\n", 'unknown dialect "soap"'),
}

VALID = {
    "bare zero durations": BASE + "limits: { drain_timeout: 0 }\ndrain: { accept_for: 0 }\n",
    "plain byte sizes": BASE + "limits: { max_header_bytes: 16384, max_body_bytes: \"1048576\" }\n",
    "status class upper case": BASE + "    rules: [{ when: { status: 4XX }, set: { code: a } }]\n",
    "nulls keep defaults": BASE + "threads:\nlimits: { idle_timeout: ~ }\nadmin: { listen: off }\n",
    "off as false": BASE + "rate_limit: false\naccess_log: false\n",
    "header key": BASE + "    rate_limit: { limit: 1, window: 1m, key: \"header:X-Api-Key\", burst: 0 }\n",
}


class ConfigSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_PATH) as f:
            cls.schema = json.load(f)
        Draft202012Validator.check_schema(cls.schema)
        cls.validator = Draft202012Validator(cls.schema)

    def schema_errors(self, doc):
        return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in self.validator.iter_errors(doc)]

    def test_every_file_in_config_is_valid_for_the_schema_and_the_parser(self):
        checked = 0
        for name in sorted(os.listdir(CONFIG_DIR)):
            if not name.endswith((".yaml", ".yml", ".json")) or name == "problemgate.schema.json":
                continue
            with self.subTest(name):
                path = os.path.join(CONFIG_DIR, name)
                with open(path) as f:
                    text = f.read()
                doc = json.loads(text) if name.endswith(".json") else load_yaml(text)
                self.assertEqual(self.schema_errors(doc), [])
                code, out = check_config(text, os.path.splitext(name)[1])
                self.assertEqual(code, 0, out)
                checked += 1
        self.assertGreaterEqual(checked, 2)

    def test_invalid_files_are_refused_by_both(self):
        for name, (text, message) in INVALID.items():
            with self.subTest(name):
                self.assertNotEqual(self.schema_errors(load_yaml(text)), [], "the schema accepts it")
                code, out = check_config(text)
                self.assertNotEqual(code, 0, "check-config accepts it")
                self.assertIn(message, out)

    def test_valid_files_are_accepted_by_both(self):
        for name, text in VALID.items():
            with self.subTest(name):
                self.assertEqual(self.schema_errors(load_yaml(text)), [])
                code, out = check_config(text)
                self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Checks that every module includes only itself and the modules its CMake DEPS name.

The build enforces the same rule (each module sees only its own and its dependencies' headers,
cmake/problemgate_module.cmake); this check also catches an include that a dependency's
dependency happens to make visible, and prints one line per offending include.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r'^\s*#\s*include\s+"(?:problemgate/)?([a-z0-9_]+)/[^"]+"', re.M)


def declared_modules():
    deps = {}
    order = re.search(r"foreach\(module ([^)]*)\)", (ROOT / "src/CMakeLists.txt").read_text())
    for name in order.group(1).split():
        text = (ROOT / "src" / name / "CMakeLists.txt").read_text()
        block = re.search(r"problemgate_module\(\s*" + name + r"\b(.*?)\)", text, re.S)
        if not block:
            sys.exit(f"check_layering: src/{name}/CMakeLists.txt has no problemgate_module({name} ...)")
        body = re.sub(r"#.*", "", block.group(1))
        after = body.split("DEPS", 1)[1] if "DEPS" in body else ""
        deps[name] = set(re.findall(r"problemgate::([a-z0-9_]+)", after))
    return deps


def main():
    deps = declared_modules()
    errors = []
    for name, allowed in deps.items():
        allowed = allowed | {name}
        files = list((ROOT / "src" / name).rglob("*.[ch]pp"))
        files += list((ROOT / "include/problemgate" / name).rglob("*.hpp"))
        for path in sorted(files):
            for match in INCLUDE.finditer(path.read_text()):
                target = match.group(1)
                if target in deps and target not in allowed:
                    errors.append(f"{path.relative_to(ROOT)}: includes {target}/, "
                                  f"which is not in the DEPS of module {name}")
    for line in errors:
        print(line)
    if errors:
        print(f"check_layering: {len(errors)} include(s) outside the declared dependencies")
        return 1
    print(f"check_layering: {len(deps)} modules, every include within its DEPS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The layer check (issue 17): no `#include` in src/ goes up or sideways against the layer order.

Layers, bottom to top (a folder may include its own folder and the folders of lower layers):

    0 util                      helpers every layer uses (errors, paths, time, /proc, JSON)
    1 plan                      the plan: plain structs, builders, JSON form
    2 backend                   the backend interface (ops struct, capability bits, the registry)
                                and the shared foreground session: services below a backend may ask
                                a plan's backend what it can do
    3 cgroup net image host     services a backend uses; none includes another
    4 ns proot vm               the backends; none includes another
    5 engine oci                named containers, the OCI runtime; neither includes the other
    6 cli                       the command lines

Folders of one layer are siblings: an include between them is a violation like one that goes up
(engine and oci included: what both need goes below them), unless the pair is in ALLOWED_SIDEWAYS.
A file's folder is its first directory under src/ (src/image/tool/ is image). Includes are resolved
as the compiler does (the including file's directory, then -Isrc); one that leaves src/ (a system
header, build/gen/, guest/) is not checked, and guest/ is not read.

Known violations are listed in tools/layer-exceptions.txt, one a line:

    src/file.c -> src/other.h  # why, and which slice of issue 17 removes it

The check fails (exit 1) on a violation that is not listed, on a listed line that no longer
matches an include (remove it: the list only shrinks), and on a two-way cycle between folders
(one direction always violates the order) whose violating includes are not all listed. It prints `ok`/`not ok` TAP lines for tests/check.sh, each
violation as `file:line: folder A includes B (layer X above Y)`, and each cycle.

    tools/check-layers.py [--root DIR] [--exceptions FILE] [--list] [--verbose]

--list prints every violating include as an exceptions line (to start a list), and exits 0.
"""
import argparse
import os
import re
import sys

LAYERS = [
    ["util"],
    ["plan"],
    ["backend"],
    ["cgroup", "net", "image", "host"],
    ["ns", "proot", "vm"],
    ["engine", "oci"],
    ["cli"],
]
LAYER_OF = {folder: i for i, names in enumerate(LAYERS) for folder in names}

# (from, to) folder pairs of one layer that may include each other's headers in that direction.
ALLOWED_SIDEWAYS = set()

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(rel):
    """`src/ns/spawn.c` -> `ns`; None for a file outside a folder of src/."""
    parts = rel.split("/")
    if len(parts) < 3 or parts[0] != "src":
        return None
    return parts[1]


def resolve(root, src_file, name):
    """The include's path relative to root (as the compiler finds it), or None outside src/."""
    here = os.path.dirname(os.path.join(root, src_file))
    for base in (here, os.path.join(root, "src")):
        path = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(path):
            rel = os.path.relpath(path, root)
            return rel if rel.startswith("src/") else None
    return None


def includes(root):
    """Yield (file, line, target) for every quoted include in src/ that resolves inside src/."""
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "src")):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith((".c", ".h")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, fn), root)
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                for n, text in enumerate(f, 1):
                    m = INCLUDE_RE.match(text)
                    if not m:
                        continue
                    target = resolve(root, rel, m.group(1))
                    if target:
                        yield rel, n, target


def judge(a, b):
    """Why folder a may not include folder b, or None when it may."""
    if a == b:
        return None
    la, lb = LAYER_OF.get(a), LAYER_OF.get(b)
    if la is None:
        return "folder %s is in no layer (add it to LAYERS)" % a
    if lb is None:
        return "folder %s includes %s, which is in no layer (add it to LAYERS)" % (a, b)
    if lb < la:
        return None
    if lb == la:
        if (a, b) in ALLOWED_SIDEWAYS:
            return None
        return "folder %s includes %s (same layer %d: siblings)" % (a, b, la)
    return "folder %s includes %s (layer %d above %d)" % (a, b, lb, la)


def read_exceptions(path):
    """{(file, target): line number} from the exceptions file."""
    found, bad = {}, []
    if not os.path.exists(path):
        return found, bad
    with open(path, encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            body = text.split("#", 1)[0].strip()
            if not body:
                continue
            m = re.fullmatch(r"(\S+)\s*->\s*(\S+)", body)
            if not m or "#" not in text:
                bad.append((n, text.rstrip("\n")))
                continue
            found[(m.group(1), m.group(2))] = n
    return found, bad


def main():
    default_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=default_root)
    ap.add_argument("--exceptions")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--verbose", "-v", action="store_true", help="also print each listed include")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    exc_path = args.exceptions or os.path.join(root, "tools", "layer-exceptions.txt")
    exc_name = os.path.relpath(exc_path, root) if exc_path.startswith(root) else exc_path

    violations = []  # (file, line, target, why)
    edges = {}  # (folder a, folder b) -> [(file, line, target)]
    for rel, n, target in includes(root):
        a, b = folder_of(rel), folder_of(target)
        if a is None or b is None or a == b:
            continue
        edges.setdefault((a, b), []).append((rel, n, target))
        why = judge(a, b)
        if why:
            violations.append((rel, n, target, why))

    if args.list:
        for rel, n, target, why in violations:
            print("%s -> %s  # %s" % (rel, target, why))
        return 0

    listed, bad = read_exceptions(exc_path)
    failures, known = [], []
    for n, text in bad:
        failures.append("%s:%d: not `src/FILE -> src/HEADER  # reason`: %s" % (exc_name, n, text))
    seen = set()
    for rel, n, target, why in violations:
        seen.add((rel, target))
        line = "%s:%d: %s" % (rel, n, why)
        if (rel, target) in listed:
            known.append(line + " [%s:%d]" % (exc_name, listed[(rel, target)]))
        else:
            failures.append(line + ": not in %s" % exc_name)
    for key, n in sorted(listed.items(), key=lambda kv: kv[1]):
        if key not in seen:
            failures.append("%s:%d: `%s -> %s` is no longer a violating include: remove the line"
                            % (exc_name, n, key[0], key[1]))
    cycles = []
    for (a, b), where in sorted(edges.items()):
        if a < b and (b, a) in edges:
            back = edges[(b, a)]
            text = "cycle %s <-> %s: %s:%d includes %s; %s:%d includes %s" % (
                a, b, where[0][0], where[0][1], where[0][2], back[0][0], back[0][1], back[0][2])
            # The edge that points down is allowed; the cycle is known when every include of the
            # other direction (the violation) is listed.
            wrong = [(f, t) for f, _, t in where + back if judge(folder_of(f), folder_of(t))]
            if all(key in listed for key in wrong):
                cycles.append(text + " (listed)")
            else:
                failures.append(text)

    for line in known if args.verbose else []:
        print("# listed: " + line)
    for line in cycles:
        print("# " + line)
    total = 1 + len(failures)
    print("1..%d" % total)
    print("%s - layers: %d includes against the order, %d listed in %s, %d folder cycles" % (
        "ok" if not failures else "not ok", len(violations), len(listed), exc_name, len(cycles)))
    for i, line in enumerate(failures):
        print("not ok - " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

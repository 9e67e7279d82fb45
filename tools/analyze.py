#!/usr/bin/env python3
"""Run cppcheck (make analyze) and fail on what it finds, except its leak reports on variables
that a cleanup attribute releases.

cppcheck 2.10 does not model __attribute__ ((cleanup)): every `cleanup_free char *p = xstrdup ...`
or `cleanup_close int fd = open ...` is a "leak" at each return to it. Those reports are dropped
here, the others kept, so a descriptor or buffer held in a plain variable and not released is
still caught (ASan's leak checker sees only memory, and only on the paths the tests take).

usage: analyze.py CPPCHECK [ARGS...]   (the Makefile passes the flags and the files)
"""
import re
import subprocess
import sys

TEMPLATE = "{file}:{line}:{column}: {severity}: {message} [{id}]"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):\d+: \w+: (?P<msg>.*) \[(?P<id>\w+)\]$")
LEAK = re.compile(r"^(?:Memory|Resource) leak: (?P<var>[A-Za-z_]\w*)$")
CLEANUP = r"(?:\bcleanup_\w+|__attribute__ *\(\(cleanup *\(\w+\)\)\))"

_sources = {}


def source(path):
    if path not in _sources:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                _sources[path] = f.read().split("\n")
        except OSError:
            _sources[path] = []
    return _sources[path]


def released_by_cleanup(path, line, var):
    """The variable's declaration, searched upwards from the report to the function's opening
    brace, carries a cleanup attribute."""
    lines = source(path)
    decl = re.compile(CLEANUP + r"[^;]*[\s*]" + re.escape(var) + r"\b\s*(?:=|;|,|\[)")
    for i in range(min(line, len(lines)) - 1, -1, -1):
        text = lines[i]
        if decl.search(text):
            return True
        if text.startswith("{"):
            break
    return False


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cmd = argv[1:] + ["--template=" + TEMPLATE]
    try:
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        print(f"analyze: cannot run {argv[1]}: {e.strerror} (sh scripts/deps.sh installs cppcheck)", file=sys.stderr)
        return 2
    kept, dropped, other = [], 0, []
    for text in run.stderr.splitlines():
        m = LINE.match(text)
        if m is None:
            if text.strip():
                other.append(text)
            continue
        leak = LEAK.match(m["msg"]) if m["id"] in ("memleak", "resourceLeak") else None
        if leak and released_by_cleanup(m["file"], int(m["line"]), leak["var"]):
            dropped += 1
            continue
        kept.append(text)
    for text in other + kept:
        print(text)
    if run.returncode != 0:
        sys.stdout.write(run.stdout)
        print(f"analyze: {argv[1]} exited with status {run.returncode}", file=sys.stderr)
        return 1
    print(f"analyze: {len(kept)} finding(s); {dropped} leak report(s) on cleanup-attribute variables dropped")
    return 1 if kept or other else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

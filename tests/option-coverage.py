#!/usr/bin/env python3
"""Every option of every command is named by an integration test (tests/check.sh runs this).

Reads the option tables (`static const struct cli_option NAME[] = { { "long", 'c', ... }, ... };`)
in src/cli/*.c, src/oci/*.c and src/image/tool/*.c, finds which command each table belongs to (the
usage string, "cella COMMAND ...", passed along with the table), and the OCI runtime's global
options. Then, for each option, looks for a line of tests/integration/t_*.sh (continuation lines
joined) that names the command and the option (--long, or its short form). Prints TAP: one line
per option, "ok - run --cpuset-mems (t_cgroup.sh:88)" or "not ok - ...: no test names it", and
exits 1 when any option has no test.

    tests/option-coverage.py [--list]      (--list: the options only, one "COMMAND --OPTION" a line)

Options without a help text are internal (cella passes them to itself) and not listed.
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["src/cli/*.c", "src/oci/*.c", "src/image/tool/*.c"]
TESTS = "tests/integration/t_*.sh"

# Other spellings of a command that run the same code (and so the same options).
ALIASES = {
    "images": ["image ls", "image list"],
    "image rm": ["rmi"],
    "pull": ["image pull"],
    "import": ["image import"],
    "save": ["image save"],
    "tag": ["image tag"],
    "image build": ["build"],
}

TABLE_RE = re.compile(r"static const struct cli_option (\w+)\[\]\s*=\s*\{(.*?)\n\s*\};", re.S)
ROW_RE = re.compile(r'\{\s*"([a-z0-9-]+)"\s*,\s*(0|\'(.)\')\s*,\s*(OPT_\w+)\s*,[^"]*?(?:NULL|"[^"]*")\s*,\s*(NULL|")', re.S)
USAGE_CONST_RE = re.compile(r'static const char (\w+)\[\]\s*=\s*"(cella [^"]*)"')
COMMAND_RE = re.compile(r"cella((?: [a-z][a-z-]*)+)")


def commands_of(text, table, consts):
    """The commands whose usage string goes with `table` in this file's text."""
    found = []
    for m in re.finditer(r"\b%s\b" % re.escape(table), text):
        if text[max(0, m.start() - 40):m.start()].rstrip().endswith("struct cli_option"):
            continue  # the definition
        window = text[m.end():m.end() + 400]
        best = None
        lit = re.search(r'"(cella [^"]*)"', window)
        if lit:
            best = (lit.start(), lit.group(1))
        for name, usage in consts.items():
            c = re.search(r"\b%s\b" % re.escape(name), window)
            if c and (best is None or c.start() < best[0]):
                best = (c.start(), usage)
        if best:
            cm = COMMAND_RE.match(best[1])
            if cm:
                found.append(cm.group(1).strip())
    return sorted(set(found))


def options():
    """[(commands, long, short, type, file)]"""
    out = []
    for pattern in SOURCES:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            text = open(path, encoding="utf-8").read()
            rel = os.path.relpath(path, ROOT)
            oci = rel.startswith("src/oci/")
            consts = dict(USAGE_CONST_RE.findall(text))
            for tm in TABLE_RE.finditer(text):
                rows = [r for r in ROW_RE.finditer(tm.group(2)) if r.group(5) != "NULL"]
                if not rows:
                    continue
                cmds = commands_of(text, tm.group(1), consts)
                if not cmds:
                    out.append(([], rows[0].group(1), None, None, "%s: table %s has no usage string" % (rel, tm.group(1))))
                    continue
                if oci:
                    cmds = ["oci " + c for c in cmds]
                for r in rows:
                    out.append((cmds, r.group(1), r.group(3), r.group(4), rel))
            if oci:
                for arr in ("global_value_flags", "global_bool_flags"):
                    am = re.search(r"%s\[\]\s*=\s*\{([^}]*)\}" % arr, text)
                    if am:
                        for name in re.findall(r'"--([a-z-]+)"', am.group(1)):
                            out.append((["oci"], name, None, "OPT_GLOBAL", rel))
    return out


def test_lines():
    lines = []
    for path in sorted(glob.glob(os.path.join(ROOT, TESTS))):
        name = os.path.basename(path)
        buf, start = "", None
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if start is None:
                start = n
            if line.rstrip("\n").endswith("\\"):
                buf += line.rstrip("\n")[:-1] + " "
                continue
            lines.append(("%s:%d" % (name, start), buf + line.rstrip("\n")))
            buf, start = "", None
    return lines


def word_re(words):
    return re.compile(r"(^|[^A-Za-z0-9_-])%s($|[^A-Za-z0-9_-])" % r"\s+".join(map(re.escape, words.split())))


# (a global option of the OCI command line: any line that runs cella)
CELLA_CALL = re.compile(r"run_cella|\$CELLA|\$\{CELLA\}|\boci\b|\bcella\b")


def covered(cmds, long, short, typ, lines, unique):
    """Where a test names the option: on a line with the command's name, or (an option only one
    command has, often passed through a test's helper function) anywhere."""
    opt = re.compile(r"(^|[\s\"'(])--%s($|[\s\"'=)])" % re.escape(long))
    sopt = None
    if short:
        if typ == "OPT_FLAG":  # also grouped: -it, -dt
            sopt = re.compile(r"(^|[\s\"'(])-[A-Za-z]*%s[A-Za-z]*($|[\s\"')])" % re.escape(short))
        else:
            sopt = re.compile(r"(^|[\s\"'(])-%s($|[\s\"'=)0-9/])" % re.escape(short))
    names = []
    for c in cmds:
        if c == "oci":
            names.append(None)
            continue
        names.append(c)
        names.extend(ALIASES.get(c, []))
        if c.startswith("oci "):  # the OCI forms: `cella oci exec`, or detected (`cella exec --cap`)
            names.append(c[4:])
    words = [word_re(n) if n else None for n in names]
    for where, line in lines:
        if opt.search(line) and unique:
            return where
        if not (opt.search(line) or (sopt and sopt.search(line))):
            continue
        for w in words:
            if w is None and CELLA_CALL.search(line):
                return where
            if w is not None and w.search(line):
                return where
    return None


def main():
    opts = options()
    if "--list" in sys.argv[1:]:
        for cmds, long, _s, _t, _f in opts:
            print("%s --%s" % ("|".join(cmds) or "?", long))
        return 0
    lines = test_lines()
    owners = {}
    for cmds, long, _s, _t, _f in opts:
        owners.setdefault(long, set()).add(tuple(cmds))
    missing = 0
    n = 0
    for cmds, long, short, typ, src in opts:
        n += 1
        label = "%s --%s" % ("|".join(cmds), long)
        if not cmds:
            print("not ok %d - %s" % (n, src))
            missing += 1
            continue
        where = covered(cmds, long, short, typ, lines, len(owners[long]) == 1)
        if where:
            print("ok %d - %s (%s)" % (n, label, where))
        else:
            print("not ok %d - %s (%s): no test in %s names it%s" % (
                n, label, src, TESTS, " (nor -%s)" % short if short else ""))
            missing += 1
    print("1..%d" % n)
    if missing:
        print("# %d of %d options have no test: add one that runs the command with the option" % (missing, n))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

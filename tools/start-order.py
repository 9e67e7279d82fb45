# gdb -batch -x tools/start-order.py --args CELLA ARGS... (tools/start-order.sh drives it)
# Records every function of the cella binary that runs, in the process and in the processes it
# forks, up to each one's exec of something else; appends their names to $ORDER_OUT.
import os
import subprocess

import gdb

hit = []
seen = set()


class Once(gdb.Breakpoint):
    def stop(self):
        if self.location not in seen:
            seen.add(self.location)
            hit.append(self.location)
        self.enabled = False
        return False


for cmd in ("set pagination off", "set confirm off", "set detach-on-fork off", "set follow-fork-mode parent",
            "set schedule-multiple on", "set print inferior-events off", "set print thread-events off"):
    gdb.execute(cmd)
gdb.execute("starti", to_string=True)
names = set()
nm = subprocess.run(["nm", "--defined-only", os.environ["ORDER_SYMS"]], capture_output=True, text=True, check=True)
for line in nm.stdout.splitlines():
    f = line.split()
    if len(f) == 3 and f[1] in "tTW":
        names.add(f[2])
for name in sorted(names):
    try:
        Once(name, internal=True)
    except gdb.error:
        pass
gdb.execute("catch exec", to_string=True)
while any(i.pid for i in gdb.inferiors()):
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error:
        break
    # stopped at an exec (of the exec stub, the workload or proot): nothing of ours runs there
    try:
        gdb.execute("detach", to_string=True)
    except gdb.error:
        break
    live = [i for i in gdb.inferiors() if i.pid]
    if live:
        gdb.execute("inferior %d" % live[0].num, to_string=True)
with open(os.environ["ORDER_OUT"], "a") as f:
    for h in hit:
        f.write(h + "\n")

#!/usr/bin/env python3
"""One process makes SOCKETS CLOSE_WAIT sockets on loopback and forks CHILDREN that share
them all (issue 17, row 2: state that grows with processes x sockets). Children die with
the parent (PR_SET_PDEATHSIG); the parent ends them after SECONDS or when stdin closes.

usage: fork-sharers.py SOCKETS CHILDREN SECONDS [--exit-every S --pidfile F]
  --exit-every S: instead, every S seconds the holder forks one child that inherits the
                  sockets and exits itself (row 7); one more socket joins every 0.5 s; the
                  current holder's pid is written to F (to end it by pid).
Prints one JSON line when ready: {"ready", "pid", "children"}.
"""
import ctypes, json, os, select, signal, sys, time

from loopback import leak_one, listener

count, children, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
exit_every = float(sys.argv[sys.argv.index("--exit-every") + 1]) if "--exit-every" in sys.argv else 0
pidfile = sys.argv[sys.argv.index("--pidfile") + 1] if "--pidfile" in sys.argv else None
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
server = listener()
held = [leak_one(server) for _ in range(count)]
deadline = time.monotonic() + seconds

if exit_every:
    # A chain: each generation holds everything, forks its successor and exits.
    def note_pid():
        if pidfile:
            with open(pidfile + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(pidfile + ".tmp", pidfile)
    note_pid()
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    next_exit = time.monotonic() + exit_every
    while time.monotonic() < deadline:
        time.sleep(0.5)
        held.append(leak_one(server))
        if time.monotonic() >= next_exit:
            if os.fork() > 0:
                os._exit(0)
            note_pid()
            next_exit = time.monotonic() + exit_every
    os._exit(0)

pids = []
for _ in range(children):
    pid = os.fork()
    if pid == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:
            os._exit(0)
        while True:
            signal.pause()
    pids.append(pid)
print(json.dumps({"ready": True, "pid": os.getpid(), "children": len(pids)}), flush=True)
while time.monotonic() < deadline:
    readable, _, _ = select.select([sys.stdin], [], [], 0.5)
    if readable and not sys.stdin.read(1):
        break
for pid in pids:
    os.kill(pid, signal.SIGKILL)
for pid in pids:
    os.waitpid(pid, 0)

#!/usr/bin/env python3
"""CLOSE_WAIT sockets parked in a unix socket's queue (SCM_RIGHTS, never received): no
process's fd table holds them (issue 17, rows 10 and 13).

usage: parked-sockets.py COUNT SECONDS [--per-second R] [--idle-fds N]
  COUNT sockets parked at once; with --per-second, R more parked each second after ready.
  --idle-fds N: also hold N idle fds (dups of /dev/null), forking helpers of at most
  19,000 fds each (the hard fd limit here is 20,000).
Prints one JSON line when ready: {"ready", "pid", "parked", "idle"}; exits after SECONDS
or when stdin closes (its helpers die with it).
"""
import ctypes, json, os, select, signal, socket, sys, time

from loopback import leak_one, listener

count, seconds = int(sys.argv[1]), float(sys.argv[2])
rate = float(sys.argv[sys.argv.index("--per-second") + 1]) if "--per-second" in sys.argv else 0
idle = int(sys.argv[sys.argv.index("--idle-fds") + 1]) if "--idle-fds" in sys.argv else 0
libc = ctypes.CDLL(None, use_errno=True)
server = listener()
# Many queues: a unix socket's queue holds a bounded number of messages.
pairs = []
parked = 0


def park_one():
    global parked
    if parked % 200 == 0:
        pairs.append(socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))
    client = leak_one(server)
    socket.send_fds(pairs[-1][0], [b"x"], [client.fileno()])
    client.close()  # only the queued message holds it now
    parked += 1


helpers = []
per_helper = 19000
for i in range(0, idle, per_helper):
    n = min(per_helper, idle - i)
    pid = os.fork()
    if pid == 0:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
        null = os.open("/dev/null", os.O_RDONLY)
        kept = [os.dup(null) for _ in range(n)]
        while True:
            signal.pause()
    helpers.append(pid)
for _ in range(count):
    park_one()
time.sleep(0.5)  # the helpers finish their dups
print(json.dumps({"ready": True, "pid": os.getpid(), "parked": parked, "idle": idle}), flush=True)
end = time.monotonic() + seconds
next_park = time.monotonic() + (1 / rate if rate else 1e9)
while time.monotonic() < end:
    readable, _, _ = select.select([sys.stdin], [], [], 0.1)
    if readable and not sys.stdin.read(1):
        break
    if time.monotonic() >= next_park:
        park_one()
        next_park += 1 / rate
for pid in helpers:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

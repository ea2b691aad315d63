#!/usr/bin/env python3
"""A process that leaks CLOSE_WAIT sockets in a network namespace of its own, then moves to
a fresh one: the first lives on only through its sockets, with no task in it (issue 17,
row 1, "moved"). Needs CAP_SYS_ADMIN (run as root) or a user namespace.

usage: moved-netns-leaker.py COUNT SECONDS
Prints {"ready", "pid", "netns"} once the sockets sit in CLOSE_WAIT; on the line "move" on
stdin, moves to a new namespace and prints {"moved", "netns"}; ends after SECONDS or EOF.
"""
import ctypes, json, os, select, sys, time

from loopback import close_wait, loopback_up

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
count, seconds = int(sys.argv[1]), float(sys.argv[2])


def new_netns():
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    loopback_up()
    return int(os.readlink("/proc/self/ns/net")[5:-1])


netns = new_netns()
listener, held = close_wait(count)
listener.close()
print(json.dumps({"ready": True, "pid": os.getpid(), "netns": netns}), flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    readable, _, _ = select.select([sys.stdin], [], [], 0.5)
    if readable:
        line = sys.stdin.readline()
        if not line:
            break
        if line.strip() == "move":
            print(json.dumps({"moved": True, "netns": new_netns()}), flush=True)

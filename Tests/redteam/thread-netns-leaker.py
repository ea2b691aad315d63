#!/usr/bin/env python3
"""A process whose leader stays in the caller's network namespace while one thread
unshares a network namespace of its own and leaks CLOSE_WAIT sockets there (issue 17, row 1).

usage: thread-netns-leaker.py COUNT SECONDS
Prints one JSON line once the sockets sit in CLOSE_WAIT: {"ready", "pid", "tid", "netns"};
exits after SECONDS (bounded), or when stdin closes.
"""
import ctypes, json, os, subprocess, sys, threading, time

from loopback import close_wait

CLONE_NEWNET = 0x40000000
count, seconds = int(sys.argv[1]), float(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
held = []


def leak():
    if libc.unshare(CLONE_NEWNET) != 0:
        print(json.dumps({"error": os.strerror(ctypes.get_errno())}), flush=True)
        os._exit(1)
    # A child forked by this thread starts in this thread's namespace.
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    listener, sockets = close_wait(count)
    held.extend(sockets)
    listener.close()
    netns = os.readlink("/proc/thread-self/ns/net")
    print(json.dumps({"ready": True, "pid": os.getpid(), "tid": threading.get_native_id(),
                      "netns": int(netns[5:-1])}), flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
    os._exit(0)


threading.Thread(target=leak, daemon=True).start()
# The leader keeps the caller's namespace; it ends with stdin or the deadline.
sys.stdin.read()
os._exit(0)

#!/usr/bin/env python3
"""Network-namespace attacks by an unprivileged user (issue 17, rows 3, 4 and 5), bounded in
count and time, on loopback inside namespaces this script makes.

usage: netns-flood.py timewait COUNT SECONDS [--leakers N --leak M]
         one user+net namespace filled with COUNT TIME_WAIT entries (its own
         tcp_max_tw_buckets raised); with --leakers, N processes there each hold M CLOSE_WAIT
         sockets (row 5: they cross count_warning together).
       netns-flood.py busy COUNT SECONDS
         COUNT user+net namespaces, each making one loopback connection a second (its TCP
         counters move, so its table is read again each tick).
Run it as the unprivileged user; it unshares user namespaces itself. Prints one JSON line
when ready; ends after SECONDS or when stdin closes; its children die with it.
"""
import ctypes, json, os, select, signal, socket, struct, sys, time

from loopback import close_wait, leak_one, listener, loopback_up

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
mode, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
leakers = int(sys.argv[sys.argv.index("--leakers") + 1]) if "--leakers" in sys.argv else 0
leak = int(sys.argv[sys.argv.index("--leak") + 1]) if "--leak" in sys.argv else 0


def enter_namespace():
    """A user namespace mapping us to root, and a network namespace with lo up."""
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    open("/proc/self/setgroups", "w").write("deny")
    open("/proc/self/uid_map", "w").write(f"0 {uid} 1")
    open("/proc/self/gid_map", "w").write(f"0 {gid} 1")
    loopback_up()


def die_with_parent():
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def wait(deadline):
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sys.stdin], [], [], 0.5)
        if readable and not sys.stdin.read(1):
            return


children = []
deadline = time.monotonic() + seconds
if mode == "timewait":
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        die_with_parent()
        enter_namespace()
        open("/proc/sys/net/ipv4/tcp_max_tw_buckets", "w").write(str(count * 2))
        open("/proc/sys/net/ipv4/ip_local_port_range", "w").write("1024 65535")
        listeners = []
        for port in range(20000, 20000 + count // 60000 + 2):
            l = socket.socket()
            l.bind(("127.0.0.1", port))
            l.listen(4096)
            listeners.append(l)
        made = 0
        while made < count and time.monotonic() < deadline:
            l = listeners[made % len(listeners)]
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 0, 0))
            c.connect(l.getsockname())
            a, _ = l.accept()
            c.close()  # the active closer keeps TIME_WAIT
            a.close()
            made += 1
        for _ in range(leakers):
            if os.fork() == 0:
                die_with_parent()
                _, held = close_wait(leak)
                while True:
                    signal.pause()
        time.sleep(1)
        os.write(ready_w, json.dumps({"timewait": made, "netns": os.readlink("/proc/self/ns/net")}).encode())
        while True:
            signal.pause()
    children.append(pid)
    info = json.loads(os.read(ready_r, 4096))
    print(json.dumps({"ready": True, "pid": pid, **info}), flush=True)
elif mode == "busy":
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            die_with_parent()
            enter_namespace()
            l = listener(16)
            while True:
                leak_one(l).close()  # a connection made and closed: the counters move
                time.sleep(1)
        children.append(pid)
    time.sleep(2)
    print(json.dumps({"ready": True, "pid": os.getpid(), "namespaces": len(children)}), flush=True)
wait(deadline)
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)

"""Shared by the redteam helpers: CLOSE_WAIT sockets on loopback, and `lo` up in a fresh
network namespace."""
import fcntl, socket, struct

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1


def loopback_up():
    """Brings `lo` up in the caller's network namespace."""
    s = socket.socket()
    try:
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14s", b"lo", 0, b"")))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))
    finally:
        s.close()


def listener(backlog=1024):
    """A listening socket on 127.0.0.1, an ephemeral port."""
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(backlog)
    return l


def leak_one(l):
    """One client socket in CLOSE_WAIT: connected to `l`, whose accepted end is closed at
    once (the peer's FIN arrives; the client never closes)."""
    client = socket.create_connection(l.getsockname())
    accepted, _ = l.accept()
    accepted.close()
    return client


def close_wait(n):
    """`n` CLOSE_WAIT sockets, and the listener they came from."""
    l = listener(n + 8)
    return l, [leak_one(l) for _ in range(n)]

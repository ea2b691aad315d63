#!/usr/bin/env python3
"""Hostile clients of closewaitd's /metrics endpoint (issue 17, rows 8 and 11), bounded in
count and time, loopback only.

usage: metrics-attack.py silent|slow PORT CONNECTIONS SECONDS
  silent: CONNECTIONS connections that never send a byte; each one the server closes is
          replaced at once.
  slow:   CONNECTIONS clients that send a whole request, then read the answer one byte
          every 100 ms through a tiny receive window; each closed one is replaced at once.
Prints "ready" once the connections are open, then a JSON summary at the end.
"""
import json, selectors, socket, sys, time

mode, port, count, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sel = selectors.DefaultSelector()
opened = closed = 0


def connect():
    global opened
    s = socket.socket()
    if mode == "slow":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256)
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    opened += 1
    sel.register(s, selectors.EVENT_WRITE if mode == "slow" else selectors.EVENT_READ, {"sent": False})


for _ in range(count):
    connect()
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    for key, events in sel.select(timeout=0.1):
        s, data = key.fileobj, key.data
        try:
            if mode == "slow" and not data["sent"] and events & selectors.EVENT_WRITE:
                s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                data["sent"] = True
                sel.modify(s, selectors.EVENT_READ, data)
                continue
            chunk = s.recv(1)
            if chunk:
                continue
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            pass
        sel.unregister(s)
        s.close()
        closed += 1
        connect()
    if mode == "slow":
        time.sleep(0.1)  # one byte per connection per 100 ms at most
print(json.dumps({"opened": opened, "closed": closed}), flush=True)

#!/usr/bin/python3
"""Python HTTP clients, leaking and healthy, one request a second to the corpus server, for at
most --count requests (bounded in count and time). Modes:

  session-per-request  requests.Session() per request, kept and never closed (abandoned)
  stream-unread        requests.get(stream=True), the response kept, never read nor closed
  urllib3-unread       a urllib3 PoolManager, preload_content=False, never read nor released
  urllib3-pool         a urllib3 pool used correctly: at most a few idle connections
  session-reused       one requests.Session for every request (healthy)

Prints `{"ready": true, "pid": N}` before its first request."""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("mode")
parser.add_argument("url")
parser.add_argument("--count", type=int, default=300)
parser.add_argument("--interval", type=float, default=1.0)
args = parser.parse_args()

import requests  # noqa: E402
import urllib3  # noqa: E402

kept = []  # what a leaking program forgets to close, kept alive as a cache or a list would
pool = urllib3.PoolManager(maxsize=5) if args.mode.startswith("urllib3") else None
shared = requests.Session() if args.mode == "session-reused" else None
print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
deadline = time.monotonic() + args.count * args.interval + 30
for i in range(args.count):
    if time.monotonic() > deadline:
        break
    if args.mode == "session-per-request":
        s = requests.Session()
        s.get(args.url).content
        kept.append(s)
    elif args.mode == "stream-unread":
        kept.append(requests.get(args.url, stream=True))
    elif args.mode == "urllib3-unread":
        kept.append(pool.request("GET", args.url, preload_content=False))
    elif args.mode == "urllib3-pool":
        pool.request("GET", args.url).data
    elif args.mode == "session-reused":
        shared.get(args.url).content
    else:
        sys.exit("unknown mode " + args.mode)
    time.sleep(args.interval)

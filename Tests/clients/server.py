#!/usr/bin/python3
"""A loopback HTTP/1.1 server for the client corpus: keep-alive, and an idle keep-alive
connection is closed by the server after --idle seconds (as nginx's keepalive_timeout does),
so a client that never closes its side is left in CLOSE_WAIT.

Prints one line `{"ready": true, "port": N}` once it listens, then serves until killed or
--seconds pass. Every response body is --body bytes (`x` repeated)."""
import argparse
import http.server
import json
import socket
import struct
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--idle", type=float, default=5.0)
parser.add_argument("--body", type=int, default=64)
parser.add_argument("--seconds", type=float, default=600)
parser.add_argument("--family", choices=["v4", "v6"], default="v4")
parser.add_argument("--reset-after", type=float, default=0,
                    help="after closing an idle connection (FIN), reset it (RST) this many seconds later")
args = parser.parse_args()
body = b"x" * args.body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = args.idle  # an idle keep-alive connection is closed after this

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

    def log_error(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET6 if args.family == "v6" else socket.AF_INET

    def handle_error(self, request, client_address):
        pass  # a client that vanished mid-request is not news

    def shutdown_request(self, request):
        if args.reset_after <= 0:
            return super().shutdown_request(request)
        # FIN now (the client's side enters CLOSE_WAIT), an RST later (the kernel moves it to
        # CLOSE and out of every table; a client that never closed still holds the fd).
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass

        def reset():
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                request.close()

        timer = threading.Timer(args.reset_after, reset)
        timer.daemon = True
        timer.start()


server = Server(("::1" if args.family == "v6" else "127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(json.dumps({"ready": True, "port": server.server_address[1]}), flush=True)
time.sleep(args.seconds)
sys.exit(0)

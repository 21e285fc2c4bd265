#!/usr/bin/env python3
"""A loopback HTTP/1.1 receiver for the uploader's tests and benchmark.

It answers the three endpoints sleuth uploads to:
  POST .../push.v1.PusherService/Push   Pyroscope's Connect push API
  POST .../ingest?name=...              Pyroscope's legacy ingest API
  POST <any other path>                 the multipart "http" protocol
and records every request into --dir: NNNNNN.json (method, path, query,
headers, connection number, status answered, arrival time) and, unless
--no-save-bodies, NNNNNN.body. The JSON is written last, through a rename,
so a reader never sees half a record. Decoding is left to the C++ tests.

Behaviour is programmable through a control endpoint:
  POST /_control/script  {"responses": [R, ...], "default": R}
      each request takes the next R of the list; once it is empty, the
      default. R = {"status": 200, "body": "...", "headers": {...},
      "delay_ms": 0}.
  GET  /_control/stats   {"requests": N, "connections": M}

It prints "PORT <n>" on stdout once it listens (--port 0 picks a free one).
With --tls-cert and --tls-key it speaks HTTPS instead. Standard library
only; keep-alive; one thread per connection.
"""

import argparse
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class State:
    def __init__(self, record_dir, save_bodies):
        self.lock = threading.Lock()
        self.record_dir = record_dir
        self.save_bodies = save_bodies
        self.requests = 0
        self.connections = 0
        self.script = []
        self.default = {"status": 200}


STATE = None


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with STATE.lock:
            STATE.connections += 1
            self.connection_number = STATE.connections

    def log_message(self, fmt, *args):  # quiet: the records are the log
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def control(self, path, body):
        if path == "/_control/script":
            spec = json.loads(body or b"{}")
            with STATE.lock:
                STATE.script = list(spec.get("responses", []))
                STATE.default = spec.get("default", {"status": 200})
            self.reply(200, b"{}", {"Content-Type": "application/json"})
        elif path == "/_control/stats":
            with STATE.lock:
                stats = {"requests": STATE.requests, "connections": STATE.connections}
            self.reply(200, json.dumps(stats).encode(), {"Content-Type": "application/json"})
        else:
            self.reply(404, b"no such control endpoint")

    def do_GET(self):
        path = urlsplit(self.path).path
        if path.startswith("/_control/"):
            self.control(path, b"")
        else:
            self.reply(405, b"uploads are POSTed")

    def do_POST(self):
        try:
            self.handle_post()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test)

    def handle_post(self):
        arrived = time.time()
        parts = urlsplit(self.path)
        body = self.read_body()
        if parts.path.startswith("/_control/"):
            self.control(parts.path, body)
            return
        with STATE.lock:
            STATE.requests += 1
            seq = STATE.requests
            response = STATE.script.pop(0) if STATE.script else STATE.default
        status = int(response.get("status", 200))
        headers = dict(response.get("headers", {}))
        reply_body = response.get("body", "").encode()
        if parts.path.endswith("/push.v1.PusherService/Push"):
            endpoint = "push"
            if status == 200 and not reply_body:
                headers.setdefault("Content-Type", "application/proto")
        elif parts.path.endswith("/ingest"):
            endpoint = "ingest"
        else:
            endpoint = "http"
        base = os.path.join(STATE.record_dir, "%06d" % seq)
        if STATE.save_bodies:
            write_atomic(base + ".body", body)
        record = {
            "seq": seq,
            "time": arrived,
            "method": self.command,
            "endpoint": endpoint,
            "path": parts.path,
            "query": parts.query,
            "headers": [[k, v] for k, v in self.headers.items()],
            "connection": self.connection_number,
            "status": status,
            "body_bytes": len(body),
        }
        write_atomic(base + ".json", json.dumps(record).encode())
        delay_ms = int(response.get("delay_ms", 0))
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        self.reply(status, reply_body, headers)


def main():
    global STATE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where requests are recorded")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-save-bodies", action="store_true")
    parser.add_argument("--script", default="", help="initial script, as for /_control/script")
    parser.add_argument("--tls-cert", default="", help="PEM certificate: serve HTTPS")
    parser.add_argument("--tls-key", default="", help="PEM private key of --tls-cert")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    STATE = State(args.dir, not args.no_save_bodies)
    if args.script:
        spec = json.loads(args.script)
        STATE.script = list(spec.get("responses", []))
        STATE.default = spec.get("default", {"status": 200})
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        # A client that rejects the certificate fails accept(), which the
        # server ignores (ssl.SSLError is an OSError).
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

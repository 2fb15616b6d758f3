#!/usr/bin/env python3
"""hard_stub.py: a minimal control plane that answers with redirects, for
tests/e2e/hard_redirect.sh. Plain HTTP on 127.0.0.1 only (the agent allows
http:// to loopback with allow_insecure_http, which is what lets a test
observe every request). Standard library only.

    hard_stub.py --statement FILE --signature FILE --version V --size N --sha256 HEX \
                 --log FILE --reports FILE

Prints the base URL on its first line. Every request is appended to --log as
"METHOD PATH". Behaviour:
  - the first registration and the first two heartbeats answer 302, to
    http://<self>/trap and to file:///etc/passwd;
  - later heartbeats answer 200; tasks 1 and 2 ride on them, one after the
    other, each until the agent reports it final; their build URLs answer 302
    to file:///etc/passwd and to http://<self>/trap respectively;
  - reports are appended to --reports (one JSON object per line);
  - /trap answers 200 with a body that is not a package: it must never be
    requested.
"""
import argparse
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "stub-token-" + "x" * 32


def main():
    ap = argparse.ArgumentParser()
    for opt in ("statement", "signature", "version", "size", "sha256", "log", "reports"):
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--channel", help="a release channel (and CHANNEL.sig) to announce and serve")
    args = ap.parse_args()
    channel = None
    if args.channel:
        doc, sig = open(args.channel, "rb").read(), open(args.channel + ".sig", "rb").read()
        channel = {"name": "stable", "serial": json.loads(doc)["serial"],
                   "channel": base64.b64encode(doc).decode(),
                   "signature": base64.b64encode(sig).decode()}
    statement = open(args.statement, "rb").read()
    signature = open(args.signature, "rb").read()
    lock = threading.Lock()
    state = {"registers": 0, "heartbeats": 0, "done": set()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def base(self):
            return "http://127.0.0.1:%d" % self.server.server_address[1]

        def send(self, status, body=None, headers=()):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def redirect(self, where):
            self.send(302, {"status": 302, "code": "moved", "message": "elsewhere"},
                      [("Location", where)])

        def record(self):
            with lock:
                with open(args.log, "a") as f:
                    f.write("%s %s\n" % (self.command, self.path))

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def task_command(self):
            now = int(time.time() * 1000)
            for tid in ("1", "2"):
                if tid not in state["done"]:
                    return {
                        "type": "upgrade", "taskId": tid, "toVersion": args.version,
                        "requestTime": now, "expiresAt": now + 1800000,
                        "build": {
                            "version": args.version, "url": "/builds/task-%s.tar.gz" % tid,
                            "size": int(args.size), "sha256": args.sha256,
                            "statement": base64.b64encode(statement).decode(),
                            "signature": base64.b64encode(signature).decode(),
                        },
                    }
            return None

        def do_GET(self):
            self.record()
            if channel and self.path.startswith("/api/v1/collector/channel"):
                return self.send(200, channel)
            if self.path.startswith("/builds/task-1"):
                return self.redirect("file:///etc/passwd")
            if self.path.startswith("/builds/task-2"):
                return self.redirect(self.base() + "/trap")
            self.send(200 if self.path == "/trap" else 404, {"trap": True})

        def do_POST(self):
            self.record()
            data = self.body()
            path = self.path.split("?")[0]
            with lock:
                if path == "/api/v1/collector/register":
                    state["registers"] += 1
                    if state["registers"] == 1:
                        return self.redirect(self.base() + "/trap")
                    return self.send(200, {"collectorId": 7, "token": TOKEN,
                                           "heartbeatIntervalMs": 200, "name": "stub"})
                if path == "/api/v1/collector/heartbeat":
                    state["heartbeats"] += 1
                    if state["heartbeats"] == 1:
                        return self.redirect(self.base() + "/trap")
                    if state["heartbeats"] == 2:
                        return self.redirect("file:///etc/passwd")
                    reply = {"heartbeatIntervalMs": 200, "longPoll": False,
                             "serverTime": int(time.time() * 1000),
                             "command": self.task_command()}
                    if channel:
                        reply["channelSerial"] = channel["serial"]
                    return self.send(200, reply)
                if path == "/api/v1/collector/reports":
                    report = json.loads(data or b"{}")
                    with open(args.reports, "a") as f:
                        f.write(json.dumps(report) + "\n")
                    if report.get("status") in (2, 3):
                        state["done"].add(str(report.get("taskId")))
                    return self.send(200, {"accepted": True, "taskStatus": report.get("status")})
            self.send(404, {"status": 404, "code": "not.found", "message": "no such path"})

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print("http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())

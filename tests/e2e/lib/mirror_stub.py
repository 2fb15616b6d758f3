#!/usr/bin/env python3
"""mirror_stub.py: a download mirror with fault modes, for tests/e2e/upgrade_mirrors.sh.
HTTPS on 127.0.0.1 with the e2e control plane's throwaway certificate (signed by the CA the
agent trusts). Standard library only.

    mirror_stub.py --dir DIR --cert PEM --key KEY --mode-file FILE --log FILE

Prints its base URL (https://127.0.0.1:PORT) on its first line. GET /NAME serves DIR/NAME
(NAME without '/'), honouring "Range: bytes=N-" with a 206, and sends an ETag of its own
("stub-PORT-SIZE"), so a test can see whether one mirror's validator reached another. Every
request is appended to --log as one JSON line: path, range, ifRange, authorization (the header as
received: the agent must never send one here) and what the stub did. The mode is read from
--mode-file at each request (a test switches it between tasks):
  ok        serve the file;
  404       answer 404;
  cut       send the headers of the whole answer, then close once the file's first half is out
            (a request starting past the half gets its headers and nothing else);
  wrong     serve bytes of the right length with the second half inverted (a bad sha256);
  redirect  answer 302 to file:///etc/passwd;
  slow      serve at 128 KiB/s.
"""
import argparse
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    for opt in ("dir", "cert", "key", "mode-file", "log"):
        ap.add_argument("--" + opt, required=True)
    args = ap.parse_args()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def record(self, action):
            entry = {"path": self.path, "range": self.headers.get("Range"),
                     "ifRange": self.headers.get("If-Range"),
                     "authorization": self.headers.get("Authorization"), "action": action}
            with lock, open(args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

        def mode(self):
            try:
                with open(args.mode_file) as f:
                    return f.read().strip() or "ok"
            except OSError:
                return "ok"

        def plain(self, status, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            mode = self.mode()
            name = self.path.lstrip("/")
            path = os.path.join(args.dir, name)
            if mode == "404" or "/" in name or not name or not os.path.isfile(path):
                self.record("404")
                return self.plain(404)
            if mode == "redirect":
                self.record("302")
                return self.plain(302, [("Location", "file:///etc/passwd")])
            with open(path, "rb") as f:
                data = f.read()
            size = len(data)
            if mode == "wrong":
                half = size // 2
                data = data[:half] + bytes(b ^ 0xFF for b in data[half:])
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if m and int(m.group(1)) < size:
                start = int(m.group(1))
            self.record("%s from %d" % (mode, start))
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
            self.send_header("Content-Length", str(size - start))
            self.send_header("ETag", '"stub-%d-%d"' % (self.server.server_address[1], size))
            self.end_headers()
            end = size
            if mode == "cut":
                end = max(start, size // 2)
            step = 16384
            for off in range(start, end, step):
                try:
                    self.wfile.write(data[off:min(off + step, end)])
                    self.wfile.flush()
                except OSError:
                    return
                if mode == "slow":
                    time.sleep(step / 131072)
            if end < size:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("https://127.0.0.1:%d" % srv.server_address[1], flush=True)
    sys.stdout.close()
    srv.serve_forever()


if __name__ == "__main__":
    main()

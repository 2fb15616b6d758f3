"""HTTP and auth for the reference control plane: the request loop, routing, bodies, Basic and
Bearer authentication, the rate limit, replies and their counters, the threaded TLS server.

HttpApp holds the plumbing that server.App's API mixins (cp_management, cp_protocol, cp_downloads,
cp_admin) share; App itself sets up the state these methods use and the route table.
"""

import base64
import collections
import email.utils
import hmac
import json
import random
import re
import socket
import ssl
import string
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cp_common import ApiError, bad_request, log

MAX_BODY = 1024 * 1024
DRAIN_MAX = 16 * 1024 * 1024
JSON_TYPE = "application/json"
REASONS = {200: "OK", 202: "Accepted", 206: "Partial Content", 304: "Not Modified",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 412: "Precondition Failed",
           413: "Payload Too Large", 415: "Unsupported Media Type",
           416: "Range Not Satisfiable", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
ERROR_CODES = {429: "rate.limit.exceeded", 500: "internal.error", 502: "bad.gateway",
               503: "service.unavailable", 504: "gateway.timeout"}


class Abort(Exception):
    """Close the connection without (the rest of) a reply: a dropped connection."""

    def __init__(self, reset=False):
        super().__init__()
        self.reset = reset


class Response:
    __slots__ = ("status", "body", "headers", "close")

    def __init__(self, status, body=b"", headers=None, close=False):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.close = close


def json_response(status, obj, headers=None):
    h = {"Content-Type": JSON_TYPE}
    h.update(headers or {})
    return Response(status, json.dumps(obj, separators=(",", ":")).encode("utf-8"), h)


def request_id():
    alphabet = string.ascii_uppercase + string.digits
    return "-".join("".join(random.choice(alphabet) for _ in range(5)) for _ in range(3))


class Counters:
    """Requests per endpoint and status, for benchmarks (GET /api/v1/admin/stats)."""

    def __init__(self, clock):
        self.clock = clock
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.since = self.clock.now()
            self.since_mono = time.monotonic()
            self.total = 0
            self.by_endpoint = collections.defaultdict(lambda: collections.Counter())
            self.bytes_by_endpoint = collections.Counter()
            self.bytes_sent = 0
            self.mirror = collections.Counter()
            # Per file under /builds/ (only files that exist: bounded by the directory), so
            # a benchmark can tell deltas from full packages among the downloads.
            self.files = collections.defaultdict(collections.Counter)

    def mirror_request(self, with_credentials):
        with self.lock:
            self.mirror["requests"] += 1
            self.mirror["withCredentials"] += int(with_credentials)

    def add(self, key, status):
        with self.lock:
            self.total += 1
            self.by_endpoint[key][str(status)] += 1

    def add_bytes(self, key, n, file=None):
        with self.lock:
            self.bytes_sent += n
            self.bytes_by_endpoint[key] += n
            if file is not None:
                self.files[file]["bytes"] += n

    def add_file(self, name):
        """A reply under /builds/ that began (counted as add counts it), by file name."""
        with self.lock:
            self.files[name]["requests"] += 1

    def snapshot(self):
        with self.lock:
            elapsed = max(time.monotonic() - self.since_mono, 1e-6)
            return {
                "since": self.since, "elapsedMs": int(elapsed * 1000), "total": self.total,
                "requestsPerSecond": round(self.total / elapsed, 2),
                "bytesSent": self.bytes_sent,
                "mirror": {"requests": self.mirror["requests"],
                           "withCredentials": self.mirror["withCredentials"]},
                "endpoints": {k: {"count": sum(v.values()), "statuses": dict(v),
                                  "bytes": self.bytes_by_endpoint[k]}
                              for k, v in sorted(self.by_endpoint.items())},
                "files": {k: {"requests": v["requests"], "bytes": v["bytes"]}
                          for k, v in sorted(self.files.items())},
            }


class RateLimiter:
    """The documents' limits per access id: `rate` requests a second and 10 at a time."""

    def __init__(self, rate):
        self.rate = rate
        self.lock = threading.Lock()
        self.times = collections.defaultdict(collections.deque)
        self.inflight = collections.Counter()

    def enter(self, who):
        if self.rate <= 0:
            return True
        now = time.monotonic()
        with self.lock:
            q = self.times[who]
            while q and q[0] <= now - 1.0:
                q.popleft()
            if len(q) >= self.rate or self.inflight[who] >= 10:
                return False
            q.append(now)
            self.inflight[who] += 1
            return True

    def leave(self, who):
        if self.rate > 0:
            with self.lock:
                self.inflight[who] -= 1


class Route:
    def __init__(self, method, pattern, func, auth, key):
        self.method = method
        self.regex = re.compile("^" + pattern + "$")
        self.func = func
        self.auth = auth  # basic | admin | register | bearer | download
        self.key = key


class HttpApp:
    """Request plumbing shared by the API mixins of server.App."""

    def _route(self, method, pattern, func, auth, tail=None):
        key = method + " " + (re.sub(r"\(\?P<\w+>[^)]*\)", tail or "{}", pattern))
        self.routes.append(Route(method, pattern, func, auth, key))

    # ------------------------------------------------------------ request plumbing

    def handle(self, h):
        rid = request_id()
        h.cp_key = h.command + " (unrouted)"
        h.cp_counted = False
        status = 500
        who = None
        try:
            url = urlsplit(h.path)
            path = url.path
            if len(path) > 1 and path.endswith("/"):
                path = path[:-1]
            query = parse_qs(url.query, keep_blank_values=True)
            body = self._read_body(h)
            route, params, allowed = self._match(h.command, path)
            if route is None:
                if allowed:
                    raise ApiError(405, "method.invalid", "%s is not allowed here; use %s"
                                   % (h.command, ", ".join(sorted(allowed))),
                                   {"Allow": ", ".join(sorted(allowed))})
                raise ApiError(404, "resource.notfound", "No such resource: %s" % path)
            h.cp_key = route.key
            if body and path.startswith("/api/"):
                ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype != JSON_TYPE:
                    raise ApiError(415, "media.type.unsupported",
                                   "The request body must be application/json.")
            collector = None
            bearer = self._bearer(h)
            if bearer is not None:
                collector = self.store.by_token(bearer)
            if route.auth != "admin":
                resp = self._request_faults(h.command, path, collector, bearer is not None)
                if resp is not None:
                    status = resp.status
                    self._send(h, resp, rid)
                    return
            collector = self._authenticate(h, route, bearer, collector)
            if route.auth == "basic":
                who = "mgmt"
                if not self.limiter.enter(who):
                    who = None
                    raise ApiError(429, "rate.limit.exceeded", "More than %d requests per second "
                                   "(or 10 at once) for this access id." % self.args.rate_limit,
                                   {"Retry-After": "1"})
            req = Request(h, path, query, body, collector, params)
            resp = route.func(req)
            if resp is None:  # streamed by the handler
                status = req.status
                return
            status = resp.status
            self._send(h, resp, rid)
        except ApiError as e:
            status = e.status
            err = {"status": e.status, "id": rid, "code": e.code, "message": e.message}
            resp = json_response(e.status, err, e.headers)
            if e.status == 413:
                resp.close = True
            try:
                self._send(h, resp, rid)
            except OSError:  # the client has gone: nothing to tell it
                h.close_connection = True
        except Abort as e:
            status = 0
            self._abort(h, e.reset)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            status = 0
            h.close_connection = True
        except Exception:  # a bug: say so loudly, answer 500, keep serving
            traceback.print_exc(file=sys.stderr)
            status = 500
            try:
                self._send(h, json_response(500, {"status": 500, "id": rid,
                                                  "code": "internal.error",
                                                  "message": "internal server error"}), rid)
            except OSError:
                h.close_connection = True
        finally:
            if who:
                self.limiter.leave(who)
            if not h.cp_counted:
                self.counters.add(h.cp_key, status)

    def _match(self, method, path):
        allowed = set()
        for rt in self.routes:
            m = rt.regex.match(path)
            if m:
                if rt.method == method:
                    return rt, m.groupdict(), allowed
                allowed.add(rt.method)
        return None, None, allowed

    def _read_body(self, h):
        te = (h.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = h.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    h.close_connection = True
                    raise bad_request("bad chunked encoding")
                if n == 0:
                    while h.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += n
                if total > MAX_BODY:
                    h.close_connection = True
                    raise ApiError(413, "request.too.large", "The body is larger than 1 MiB.")
                chunks.append(h.rfile.read(n))
                h.rfile.readline(1024)
            return b"".join(chunks)
        length = h.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            h.close_connection = True
            raise bad_request("bad Content-Length")
        if n > MAX_BODY:
            h.close_connection = True
            if n <= DRAIN_MAX:  # read it away, so that the client gets to read the answer
                while n > 0:
                    got = h.rfile.read(min(n, 65536))
                    if not got:
                        break
                    n -= len(got)
            raise ApiError(413, "request.too.large", "The body is larger than 1 MiB.")
        return h.rfile.read(n)

    @staticmethod

    def _bearer(h):
        auth = h.headers.get("Authorization") or ""
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    def _basic_ok(self, h):
        auth = h.headers.get("Authorization") or ""
        if auth[:6].lower() != "basic ":
            return False
        try:
            raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        uid, _, key = raw.partition(":")
        ok_id = hmac.compare_digest(uid.encode(), self.args.access_id.encode())
        ok_key = hmac.compare_digest(key.encode(), self.args.access_key.encode())
        return ok_id and ok_key

    def _authenticate(self, h, route, bearer, collector):
        if route.auth in ("basic", "admin"):
            if not self._basic_ok(h):
                raise ApiError(401, "unauthorized", "Credential could not be verified.",
                               {"WWW-Authenticate": 'Basic realm="molt"'})
            return None
        if route.auth == "register":
            if not self._basic_ok(h):
                raise ApiError(401, "credentials.invalid", "access id or key not recognised")
            return None
        if route.auth == "download" and bearer is None and self._basic_ok(h):
            return None
        if route.auth == "download" and self.on_mirror(h):
            # A public mirror needs no credentials; one that is sent any is counted.
            self.counters.mirror_request(h.headers.get("Authorization") is not None)
            return None
        if collector is None:
            raise ApiError(401, "token.invalid", "collector token not recognised")
        return collector

    def _sleep(self, seconds):
        self.stop_event.wait(max(0.0, seconds))

    def count(self, h, status):
        """Count a request before its reply leaves, so a client reading the counters right
        after a reply sees its own request."""
        if not h.cp_counted:
            h.cp_counted = True
            self.counters.add(h.cp_key, status)

    def _send(self, h, resp, rid):
        self.count(h, resp.status)
        if resp.status == 0:  # injected drop: raw bytes then close
            if resp.body:
                h.wfile.write(resp.body)
                self.counters.add_bytes(h.cp_key, len(resp.body))
            raise Abort(resp.headers.get("reset", False))
        head = ["HTTP/1.1 %d %s" % (resp.status, REASONS.get(resp.status, "Status")),
                "Server: molt-controlplane", "Date: " + email.utils.formatdate(usegmt=True),
                "X-Request-Id: " + rid]
        headers = dict(resp.headers)
        headers.setdefault("Content-Length", str(len(resp.body)))
        if resp.close or h.close_connection:
            headers["Connection"] = "close"
            h.close_connection = True
        head += ["%s: %s" % kv for kv in headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if h.command != "HEAD" and resp.status != 304:
            data += resp.body
        h.wfile.write(data)
        self.counters.add_bytes(h.cp_key, len(data))
        if self.verbose:
            log("http", method=h.command, path=h.path, status=resp.status)

    def _abort(self, h, reset=False):
        h.close_connection = True
        try:
            if reset:  # SO_LINGER 0: close() sends RST instead of FIN
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                h.connection.close()
            else:
                h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def build_base(self, h):
        """Where commands tell collectors to download builds: this server, or, with
        --mirror-host, the same port under another name, standing for a public mirror."""
        if self.args.mirror_host:
            return "%s://%s:%s" % (self.scheme, self.args.mirror_host,
                                   self.base_url.rsplit(":", 1)[1])
        return self.request_base(h)

    def on_mirror(self, h):
        host = (h.headers.get("Host") or "").rsplit(":", 1)[0]
        return bool(self.args.mirror_host) and host.lower() == self.args.mirror_host.lower()

    def request_base(self, h):
        host = h.headers.get("Host") or ""
        if re.fullmatch(r"[A-Za-z0-9.\-]+(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?", host):
            return "%s://%s" % (self.scheme, host)
        return self.base_url

    # ------------------------------------------------------------ parameters

    @staticmethod

    def q_int(req, name, default, minimum=0):
        v = req.query.get(name)
        if not v:
            return default
        try:
            n = int(v[-1])
        except ValueError:
            raise bad_request("%s must be an integer" % name)
        if n < minimum or n > 10 ** 9:
            raise bad_request("%s must be at least %d" % (name, minimum))
        return n

    @staticmethod

    def json_body(req, required=True):
        if not req.body:
            if required:
                raise bad_request("a JSON body is required")
            return None
        try:
            return json.loads(req.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise bad_request("the body is not valid JSON")

    @staticmethod

    def int_id(text, status=404, code="InvalidCollector", message=None):
        if not text.isdigit() or len(text) > 18:
            raise ApiError(status, code, message or "The specified Collector ID is invalid.")
        return int(text)


class Request:
    __slots__ = ("h", "path", "query", "body", "collector", "params", "status")

    def __init__(self, h, path, query, body, collector, params):
        self.h = h
        self.path = path
        self.query = query
        self.body = body
        self.collector = collector
        self.params = params
        self.status = 200


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "molt-controlplane"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections are closed after this

    def log_message(self, fmt, *args):
        if self.server.app.verbose:
            sys.stderr.write("cp: http %s\n" % (fmt % args))

    def do_GET(self):
        self.server.app.handle(self)

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, app, ssl_ctx):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.app = app
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a slow client
        # cannot hold up accept() for everyone else.
        if self.ssl_ctx is not None:
            request.settimeout(10)
            try:
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                if self.app.verbose:
                    log("tls.handshake.failed", peer=client_address[0], error=repr(e))
                return
            request.settimeout(None)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.ssl_ctx is not None:
                try:
                    request.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout)):
            return
        super().handle_error(request, client_address)

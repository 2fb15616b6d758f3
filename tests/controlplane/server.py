#!/usr/bin/env python3
"""Reference control plane for molt: the server side of docs/protocol.md, for tests and the demo.

    python3 tests/controlplane/server.py --listen 127.0.0.1:0 --data DIR --builds DIR \
        --access-id ID --access-key KEY [--tls-cert C --tls-key K]

prints its base URL as the first line of stdout. It serves the management API of the seed
documents (Basic auth), the collector protocol (register, heartbeat with long-poll, reports,
builds), package downloads with Range, and an admin API for fault injection, request counters,
task event logs and a shiftable clock. State is in SQLite under --data; builds are read from
--builds as molt-pack wrote them. Standard library only.
"""

import argparse
import base64
import collections
import email.utils
import errno
import fcntl
import hmac
import ipaddress
import json
import os
import random
import re
import signal
import socket
import ssl
import stat
import string
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

sys.dont_write_bytecode = True  # never litter the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cp_builds  # noqa: E402
import cp_faults  # noqa: E402
import cp_store  # noqa: E402
from cp_store import ApiError, bad_request, log  # noqa: E402

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
FORBIDDEN_NAME_CHARS = set(";/%\\")


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


def parse_duration(text):
    """'15' or '15s', '200ms', '30m', '12h' -> milliseconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError("not a duration: %r (use 15, 15s, 200ms, 30m, 12h)" % text)
    n = float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, None: 1000}[m.group(2)]
    if n < 1:
        raise argparse.ArgumentTypeError("duration too short: %r" % text)
    return int(n)


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

    def mirror_request(self, with_credentials):
        with self.lock:
            self.mirror["requests"] += 1
            self.mirror["withCredentials"] += int(with_credentials)

    def add(self, key, status):
        with self.lock:
            self.total += 1
            self.by_endpoint[key][str(status)] += 1

    def add_bytes(self, key, n):
        with self.lock:
            self.bytes_sent += n
            self.bytes_by_endpoint[key] += n

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


class App:
    def __init__(self, args, store, builds, clock, base_url):
        self.args = args
        self.store = store
        self.builds = builds
        self.clock = clock
        self.base_url = base_url
        self.scheme = base_url.split(":", 1)[0]
        self.faults = cp_faults.Faults()
        self.counters = Counters(clock)
        self.limiter = RateLimiter(args.rate_limit)
        self.stop_event = threading.Event()
        self.verbose = args.verbose
        self.routes = []
        r = self._route
        a = "/api/v1"
        r("GET", a + "/collectors", self.list_collectors, "basic")
        r("POST", a + "/collectors", self.create_hosted, "basic")
        r("GET", a + "/collectors/offline", self.get_offline, "basic")
        r("DELETE", a + "/collectors/offline", self.delete_offline, "basic")
        r("GET", a + "/collectors/upgrades/targets", self.targets, "basic")
        r("GET", a + "/collectors/upgrades/collectors", self.upgradable, "basic")
        r("POST", a + "/collectors/upgrades", self.create_task, "basic")
        r("GET", a + "/collectors/upgrades/(?P<tid>[^/]+)", self.get_task, "basic", "{id}")
        r("DELETE", a + "/collectors/upgrades/(?P<tid>[^/]+)", self.cancel_task, "basic", "{id}")
        r("GET", a + "/collectors/name/(?P<name>[^/]+)", self.get_by_name, "basic", "{name}")
        r("GET", a + "/collectors/(?P<cid>[^/]+)", self.get_collector, "basic", "{id}")
        r("PUT", a + "/collectors/(?P<cid>[^/]+)", self.put_collector, "basic", "{id}")
        r("DELETE", a + "/collectors/(?P<cid>[^/]+)", self.delete_collector, "basic", "{id}")
        r("POST", a + "/collector/register", self.register, "register")
        r("POST", a + "/collector/heartbeat", self.heartbeat, "bearer")
        r("POST", a + "/collector/reports", self.report, "bearer")
        r("GET", a + "/collector/builds/(?P<version>[^/]+)", self.get_build, "bearer", "{version}")
        r("GET", "/builds/(?P<file>[^/]+)", self.download, "download", "{file}")
        r("HEAD", "/builds/(?P<file>[^/]+)", self.download, "download", "{file}")
        r("GET", a + "/admin/faults", self.admin_state, "admin")
        r("POST", a + "/admin/faults", self.admin_add_faults, "admin")
        r("DELETE", a + "/admin/faults", self.admin_reset_faults, "admin")
        r("DELETE", a + "/admin/faults/(?P<fid>[0-9]+)", self.admin_remove_fault, "admin", "{id}")
        r("GET", a + "/admin/stats", self.admin_stats, "admin")
        r("DELETE", a + "/admin/stats", self.admin_reset_stats, "admin")
        r("GET", a + "/admin/clock", self.admin_clock, "admin")
        r("POST", a + "/admin/clock", self.admin_set_clock, "admin")
        r("GET", a + "/admin/collectors/(?P<cid>[0-9]+)/heartbeats", self.admin_heartbeats,
          "admin", "{id}")
        r("GET", a + "/admin/tasks", self.admin_tasks, "admin")
        r("GET", a + "/admin/tasks/(?P<tid>[0-9]+)", self.admin_task, "admin", "{id}")
        r("GET", a + "/admin/tasks/(?P<tid>[0-9]+)/events", self.admin_task_events, "admin",
          "{id}")

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

    def _request_faults(self, method, path, collector, bearer):
        cid = collector["id"] if collector is not None else None
        download = path.startswith(cp_faults.DOWNLOAD_PREFIX)
        waits = ("delay",) if download else ("delay", "stall")
        for f in self.faults.take(waits, method, path, cid, bearer):
            self._sleep(f["ms"] / 1000.0 if f["type"] == "delay" else f["seconds"])
        kinds = ("error", "token", "malformed") + (() if download else ("drop",))
        taken = self.faults.take(kinds, method, path, cid, bearer, first_only=True)
        if not taken:
            return None
        f = taken[0]
        log("fault.fired", type=f["type"], id=f["id"], path=path)
        if f["type"] == "error":
            headers = {}
            if f["retryAfter"] is not None:
                headers["Retry-After"] = str(f["retryAfter"])
            code = f["code"] or ERROR_CODES.get(f["status"], "injected.fault")
            return json_response(f["status"], {"status": f["status"], "id": request_id(),
                                               "code": code,
                                               "message": f["message"] or "injected fault"},
                                 headers)
        if f["type"] == "token":
            return json_response(401, {"status": 401, "id": request_id(), "code": "token.invalid",
                                       "message": "collector token not recognised"})
        if f["type"] == "malformed":
            return Response(f["status"], cp_faults.malformed_body(f), {"Content-Type": JSON_TYPE})
        # drop: a reply cut after afterBytes bytes, then the connection closed
        partial = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200"
                   b"\r\n\r\n{\"heartbeatIntervalMs\": 15000, \"longPoll\": true, \"command\"")
        return Response(0, partial[: f["afterBytes"]], {"reset": f["reset"]}, close=True)

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

    # ------------------------------------------------------------ management API

    def list_collectors(self, req):
        flt = req.query.get("filter", [None])[-1]
        if flt == "":
            flt = None
        if flt not in (None, "installed", "hosted", "dead", "alive"):
            raise bad_request("filter must be one of installed, hosted, dead, alive")
        limit = self.q_int(req, "limit", 1000)
        offset = self.q_int(req, "offset", 0)
        return json_response(200, {"collectors": self.store.list_collectors(flt, limit, offset)})

    def create_hosted(self, req):
        c, tag = self.store.create_hosted(self.json_body(req))
        return json_response(200, {"collector": c}, {"ETag": tag})

    def _offline_days(self, req):
        return self.q_int(req, "aliveBeforeDays", 100, minimum=1)

    def get_offline(self, req):
        days = self._offline_days(req)
        limit = self.q_int(req, "limit", 1000)
        offset = self.q_int(req, "offset", 0)
        return json_response(200, {"collectors": self.store.offline(days, limit, offset)})

    def delete_offline(self, req):
        n = self.store.delete_offline(self._offline_days(req))
        return Response(200, b"The delete task has been initiated.",
                        {"Content-Type": "text/plain; charset=utf-8",
                         "X-Deleted-Collectors": str(n)})

    def _collector_reply(self, req, c, tag):
        inm = req.h.headers.get("If-None-Match")
        if inm and tag in [t.strip() for t in inm.split(",")]:
            return Response(304, b"", {"ETag": tag, "Content-Length": "0"})
        return json_response(200, {"collector": c}, {"ETag": tag})

    def get_collector(self, req):
        c, tag = self.store.get_collector(cid=self.int_id(req.params["cid"]))
        return self._collector_reply(req, c, tag)

    def get_by_name(self, req):
        name = unquote(req.params["name"])
        if any(ch in FORBIDDEN_NAME_CHARS for ch in name) or "\x00" in name:
            raise bad_request("collector names with ; / % or \\ are not supported",
                              "collector.name.invalid")
        c, tag = self.store.get_collector(name=name)
        return self._collector_reply(req, c, tag)

    def put_collector(self, req):
        cid = self.int_id(req.params["cid"])
        body = self.json_body(req)
        c, tag = self.store.update_collector(cid, req.h.headers.get("If-Match"), body)
        return json_response(200, {"collector": c}, {"ETag": tag})

    def delete_collector(self, req):
        self.store.delete_collector(self.int_id(req.params["cid"]))
        return Response(200, b"")

    def targets(self, req):
        versions = self.builds.versions()
        latest = versions[-1] if versions else None
        return json_response(200, {"targets": [{"version": v, "latest": v == latest}
                                               for v in versions]})

    def upgradable(self, req):
        to = req.query.get("toVersion", [None])[-1] or None
        limit = self.q_int(req, "limit", 50)
        offset = self.q_int(req, "offset", 0)
        return json_response(200, {"collectors": self.store.upgradable(to, limit, offset)})

    def create_task(self, req):
        tid = self.store.create_task(self.json_body(req))
        href = "/v1/collectors/upgrades/%d" % tid
        return json_response(202, {"id": str(tid), "link": {"rel": "self", "href": href}},
                             {"Location": "/api" + href})

    def _task_id(self, req):
        return self.int_id(req.params["tid"], 404, "task.unknown",
                           "The upgrade task ID was not found.")

    def get_task(self, req):
        return json_response(200, {"upgrade": self.store.get_task(self._task_id(req))})

    def cancel_task(self, req):
        return json_response(200, {"upgrade": self.store.cancel_task(self._task_id(req))})

    # ------------------------------------------------------------ collector protocol

    def register(self, req):
        return json_response(200, self.store.register(self.json_body(req)))

    def heartbeat(self, req):
        wait = self.q_int(req, "waitMs", 0)
        cfg = self.store.cfg
        wait = min(wait, cfg.long_poll_max_ms) if cfg.long_poll else 0
        body = self.json_body(req)
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        reply = self.store.heartbeat(req.collector["id"], body, wait, self.build_base(req.h))
        return json_response(200, reply)

    def report(self, req):
        return json_response(200, self.store.report(req.collector["id"], self.json_body(req)))

    def get_build(self, req):
        os_name, arch = self.store.collector_platform(req.collector["id"])
        os_name = req.query.get("os", [os_name])[-1]
        arch = req.query.get("arch", [arch])[-1]
        version = unquote(req.params["version"])
        b = self.builds.find(version, os_name, arch)
        if b is None:
            raise ApiError(404, "build.unknown", "There is no build of %s for %s/%s."
                           % (version, os_name, arch))
        return json_response(200, b.command_object(self.build_base(req.h)))

    # ------------------------------------------------------------ package downloads

    def download(self, req):
        h = req.h
        name = unquote(req.params["file"])
        if "/" in name or "\x00" in name or name.startswith("."):
            raise ApiError(404, "file.unknown", "No such file.")
        path = os.path.join(self.builds.dir, name)
        try:
            f = open(path, "rb")
        except OSError:
            raise ApiError(404, "file.unknown", "No such file: %s" % name)
        with f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ApiError(404, "file.unknown", "No such file: %s" % name)
            size = st.st_size
            etag = '"%x-%x-%x"' % (st.st_ino, st.st_mtime_ns, size)
            last_mod = email.utils.formatdate(st.st_mtime, usegmt=True)
            start, end, status = 0, size - 1, 200
            headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
                       "ETag": etag, "Last-Modified": last_mod}
            rng = h.headers.get("Range")
            if_range = h.headers.get("If-Range")
            if rng and if_range is not None and if_range.strip() not in (etag, last_mod):
                rng = None  # the client's copy is of another file: send it all
            if rng:
                parsed = parse_range(rng, size)
                if parsed == "unsatisfiable":
                    headers["Content-Range"] = "bytes */%d" % size
                    raise ApiError(416, "range.invalid", "Range not satisfiable: %s" % rng,
                                   headers)
                if parsed is not None:
                    start, end = parsed
                    status = 206
                    headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
            length = max(0, end - start + 1)
            headers["Content-Length"] = str(length)
            req.status = status
            head = ["HTTP/1.1 %d %s" % (status, REASONS[status]), "Server: molt-controlplane",
                    "Date: " + email.utils.formatdate(usegmt=True)]
            if h.close_connection:
                headers["Connection"] = "close"
            head += ["%s: %s" % kv for kv in headers.items()]
            self.count(h, status)
            h.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            if h.command == "HEAD" or length == 0:
                return None
            cid = req.collector["id"] if req.collector is not None else None
            faults = self.faults.take(cp_faults.DOWNLOAD_TYPES, h.command, req.path, cid,
                                      self._bearer(h) is not None)
            for fl in faults:
                log("fault.fired", type=fl["type"], id=fl["id"], path=req.path)
            self._stream(h, f, start, length, faults)
        return None

    def _stream(self, h, f, start, length, faults):
        drop = next((x for x in faults if x["type"] == "drop"), None)
        stall = next((x for x in faults if x["type"] == "stall"), None)
        throttle = next((x for x in faults if x["type"] == "throttle"), None)
        corrupt = [x for x in faults if x["type"] == "corrupt"]
        if not faults:
            sent = h.connection.sendfile(f, start, length)
            self.counters.add_bytes(h.cp_key, sent)
            if sent < length:
                raise Abort()
            return
        chunk = 256 * 1024
        if throttle:
            chunk = max(1, min(chunk, throttle["bytesPerSecond"] // 20 or 1))
        f.seek(start)
        sent = 0
        t0 = time.monotonic()
        stalled = False
        while sent < length:
            n = min(chunk, length - sent)
            if drop is not None:
                n = min(n, drop["afterBytes"] - sent)
            if stall is not None and not stalled:
                n = min(n, stall["afterBytes"] - sent) if stall["afterBytes"] > sent else n
                if stall["afterBytes"] <= sent:
                    stalled = True
                    self._sleep(stall["seconds"])
                    if self.stop_event.is_set():
                        raise Abort()
                    continue
            if n <= 0:
                raise Abort(bool(drop and drop["reset"]))  # drop: closed mid-body
            data = bytearray(f.read(n))
            if not data:
                raise Abort()  # the file shrank under us
            pos = start + sent
            for c in corrupt:
                if pos <= c["offset"] < pos + len(data):
                    data[c["offset"] - pos] ^= (c["xor"] & 0xFF) or 0xFF
            h.wfile.write(data)
            sent += len(data)
            self.counters.add_bytes(h.cp_key, len(data))
            if throttle:
                ahead = sent / throttle["bytesPerSecond"] - (time.monotonic() - t0)
                if ahead > 0:
                    self._sleep(ahead)
                if self.stop_event.is_set():
                    raise Abort()

    # ------------------------------------------------------------ admin API

    def admin_state(self, req):
        return json_response(200, {"faults": self.faults.list(), "counters":
                                   self.counters.snapshot(), "config": self._config(),
                                   "clockOffsetMs": self.clock.offset_ms,
                                   "now": self.clock.now()})

    def _config(self):
        c = self.store.cfg.as_json()
        c.update({"rateLimit": self.args.rate_limit, "baseUrl": self.base_url,
                  "builds": self.builds.dir, "longPollsWaiting": self.store.long_polls})
        return c

    def admin_add_faults(self, req):
        body = self.json_body(req)
        specs = body.get("faults") if isinstance(body, dict) and "faults" in body else [body]
        if not isinstance(specs, list) or not specs:
            raise bad_request('the body is a fault object or {"faults": [...]}')
        try:
            norm = [cp_faults.normalize(s) for s in specs]
        except cp_faults.FaultError as e:
            raise bad_request(str(e), "fault.invalid")
        out = []
        for f in norm:
            if f["type"] == "revoke":
                if not self.store.revoke_token(f["collectorId"]):
                    raise ApiError(404, "InvalidCollector", "No collector %d." % f["collectorId"])
                log("fault.revoked", collector=f["collectorId"])
                out.append(dict(f, revoked=True))
            else:
                out.append(self.faults.add(f))
                log("fault.armed", **{k: v for k, v in out[-1].items() if v is not None})
        return json_response(200, {"faults": out})

    def admin_reset_faults(self, req):
        self.faults.reset()
        log("fault.reset")
        return json_response(200, {"faults": []})

    def admin_remove_fault(self, req):
        if not self.faults.remove(int(req.params["fid"])):
            raise ApiError(404, "fault.unknown", "No such fault.")
        return json_response(200, {"faults": self.faults.list()})

    def admin_stats(self, req):
        s = self.counters.snapshot()
        s["longPollsWaiting"] = self.store.long_polls
        return json_response(200, s)

    def admin_reset_stats(self, req):
        self.counters.reset()
        return json_response(200, self.counters.snapshot())

    def admin_clock(self, req):
        return json_response(200, {"offsetMs": self.clock.offset_ms, "now": self.clock.now()})

    def admin_set_clock(self, req):
        body = self.json_body(req)
        if not isinstance(body, dict):
            raise bad_request('the body is {"advanceMs": N} or {"offsetMs": N}')
        for k in ("advanceMs", "offsetMs"):
            v = body.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise bad_request("%s must be an integer" % k)
        if body.get("offsetMs") is not None:
            self.clock.offset_ms = body["offsetMs"]
        elif body.get("advanceMs") is not None:
            self.clock.offset_ms += body["advanceMs"]
        else:
            raise bad_request('the body is {"advanceMs": N} or {"offsetMs": N}')
        log("clock.set", offsetMs=self.clock.offset_ms)
        self.store.expire_tasks()
        self.store.expire_ephemeral()
        return self.admin_clock(req)

    def admin_heartbeats(self, req):
        cid = int(req.params["cid"])
        return json_response(200, {"collectorId": cid, "heartbeats": self.store.heartbeats(cid)})

    def admin_tasks(self, req):
        cid = req.query.get("collectorId", [None])[-1]
        st = req.query.get("status", [None])[-1]
        try:
            cid = int(cid) if cid else None
            st = int(st) if st else None
        except ValueError:
            raise bad_request("collectorId and status are integers")
        return json_response(200, {"tasks": self.store.list_tasks(cid, st)})

    def admin_task(self, req):
        tid = int(req.params["tid"])
        return json_response(200, {"upgrade": self.store.get_task(tid),
                                   "events": self.store.task_events(tid)})

    def admin_task_events(self, req):
        tid = int(req.params["tid"])
        return json_response(200, {"taskId": str(tid), "events": self.store.task_events(tid)})


def parse_range(value, size):
    """(start, end) of a single byte range, 'unsatisfiable', or None to send the whole file."""
    m = re.fullmatch(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", value)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # multiple or malformed ranges: RFC 9110 lets us ignore them
    if m.group(1) == "":
        n = int(m.group(2))
        if n == 0:
            return "unsatisfiable"
        return (max(0, size - n), size - 1) if size else "unsatisfiable"
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if m.group(2) and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


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


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(text):
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:([0-9]+)|([^:\[\]]+):([0-9]+)", text)
    if not m:
        raise argparse.ArgumentTypeError("--listen wants HOST:PORT or [V6]:PORT, got %r" % text)
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if port > 65535:
        raise argparse.ArgumentTypeError("port out of range: %d" % port)
    return host, port


def build_parser():
    p = argparse.ArgumentParser(
        prog="server.py",
        description="molt reference control plane (management API, collector protocol, "
                    "package repository, fault injection).")
    p.add_argument("--listen", required=True, type=parse_listen, metavar="HOST:PORT",
                   help="address to listen on; port 0 picks a free port")
    p.add_argument("--data", required=True, help="state directory (SQLite database)")
    p.add_argument("--builds", required=True, help="directory of packages, statements, signatures")
    p.add_argument("--access-id", required=True, help="access id for Basic auth")
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--access-key", help="access key for Basic auth")
    key.add_argument("--access-key-file", metavar="FILE",
                     help="read the access key from FILE (keeps it out of the process list)")
    p.add_argument("--tls-cert", help="server certificate (PEM); HTTPS when given")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--heartbeat-interval", type=parse_duration, default=15000, metavar="DUR",
                   help="heartbeatIntervalMs given to agents (default 15s)")
    p.add_argument("--alive-timeout", type=parse_duration, default=1800000, metavar="DUR",
                   help="a collector is not alive after this long without heartbeat (30m)")
    p.add_argument("--task-timeout", type=parse_duration, default=1800000, metavar="DUR",
                   help="an unfinished task fails this long after its request (30m)")
    p.add_argument("--ephemeral-timeout", type=parse_duration, default=43200000, metavar="DUR",
                   help="an inactive ephemeral collector is deleted after this long (12h)")
    p.add_argument("--long-poll-max", type=parse_duration, default=None, metavar="DUR",
                   help="longest a heartbeat is held open (default: the heartbeat interval)")
    p.add_argument("--no-long-poll", action="store_true",
                   help="answer heartbeats at once and tell agents longPoll: false")
    p.add_argument("--rate-limit", type=int, default=4, metavar="N",
                   help="management API requests per second per access id (default 4, 0: off)")
    p.add_argument("--mirror-host", metavar="HOST",
                   help="give build URLs under HOST (this server's port), served without "
                        "credentials like a public mirror; /admin/stats counts requests to it "
                        "that carry any")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    host, port = args.listen
    if bool(args.tls_cert) != bool(args.tls_key):
        print("server.py: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if not args.tls_cert and not is_loopback(host):
        print("server.py: plain HTTP is allowed only on a loopback address; give --tls-cert "
              "and --tls-key to listen on %s" % host, file=sys.stderr)
        return 2
    if args.access_key_file:
        try:
            with open(args.access_key_file) as f:
                args.access_key = f.readline().strip()
        except OSError as e:
            print("server.py: cannot read %s: %s" % (args.access_key_file, e.strerror),
                  file=sys.stderr)
            return 2
    if not args.access_id or not args.access_key:
        print("server.py: --access-id and --access-key must not be empty", file=sys.stderr)
        return 2
    os.makedirs(args.data, exist_ok=True)
    os.makedirs(args.builds, exist_ok=True)
    lock = open(os.path.join(args.data, "controlplane.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
            print("server.py: %s is in use by another control plane" % args.data,
                  file=sys.stderr)
            return 1
        raise
    ssl_ctx = None
    if args.tls_cert:
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as e:
            print("server.py: cannot load TLS certificate/key: %s" % e, file=sys.stderr)
            return 2
        ssl_ctx.set_alpn_protocols(["http/1.1"])
    cfg = cp_store.Config(args.heartbeat_interval, args.alive_timeout, args.task_timeout,
                          args.ephemeral_timeout, not args.no_long_poll, args.long_poll_max)
    clock = cp_store.Clock()
    builds = cp_builds.BuildIndex(os.path.abspath(args.builds))
    store = cp_store.Store(args.data, builds, cfg, clock)
    try:
        httpd = Server((host, port), None, ssl_ctx)
    except OSError as e:
        print("server.py: cannot listen on %s:%d: %s" % (host, port, e.strerror), file=sys.stderr)
        return 1
    bound = httpd.server_address[1]
    shown = "[%s]" % host if ":" in host else host
    base_url = "%s://%s:%d" % ("https" if ssl_ctx else "http", shown, bound)
    app = App(args, store, builds, clock, base_url)
    httpd.app = app

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                               daemon=True)
    serving.start()

    def sweep():
        tick = max(0.02, min(1.0, cfg.task_timeout_ms / 20000.0,
                             cfg.ephemeral_timeout_ms / 20000.0))
        while not stop.wait(tick):
            try:
                store.expire_tasks()
                store.expire_ephemeral()
            except Exception:
                traceback.print_exc(file=sys.stderr)

    threading.Thread(target=sweep, daemon=True).start()
    print(base_url, flush=True)
    log("started", url=base_url, data=os.path.abspath(args.data), builds=builds.dir,
        pid=os.getpid())
    while not stop.wait(0.2):
        pass
    log("stopping")
    app.stop_event.set()
    store.stop()
    httpd.shutdown()
    httpd.server_close()
    if store.lock.acquire(timeout=2):
        store.db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fault injection for the reference control plane.

Tests arm faults through the admin API (POST /api/v1/admin/faults); each fault matches requests by
path prefix, and optionally by method and by the collector whose token the request carries, and
fires for its next `count` matching requests (null: until reset). Admin requests are never faulted.

Request faults act before the request is handled (nothing is recorded for it): error, token,
malformed, drop (on API paths), delay and stall (on API paths). Download faults shape a package
response under /builds/: drop, stall, throttle, corrupt.
"""

import itertools
import json
import threading

DOWNLOAD_PREFIX = "/builds/"

# type -> (default path prefix, default count, {param: (type, default or REQUIRED)})
REQUIRED = object()
_SPECS = {
    "error": ("/", 1, {"status": (int, 500), "retryAfter": (int, None), "code": (str, None),
                       "message": (str, None)}),
    "drop": (DOWNLOAD_PREFIX, 1, {"afterBytes": (int, 0), "reset": (bool, False)}),
    "stall": (DOWNLOAD_PREFIX, None, {"afterBytes": (int, 0), "seconds": ((int, float), 3600)}),
    "throttle": (DOWNLOAD_PREFIX, None, {"bytesPerSecond": (int, REQUIRED)}),
    "corrupt": (DOWNLOAD_PREFIX, None, {"offset": (int, REQUIRED), "xor": (int, 0xFF)}),
    "delay": ("/api/v1/collector/heartbeat", None, {"ms": (int, REQUIRED)}),
    "token": ("/api/v1/collector/", 1, {}),
    "malformed": ("/api/v1/collector/heartbeat", 1, {"kind": (str, "garbage"),
                                                    "body": (str, None), "status": (int, 200),
                                                    "bytes": (int, None), "overBytes": (int, None)}),
}
DOWNLOAD_TYPES = ("drop", "stall", "throttle", "corrupt")
MALFORMED_KINDS = ("garbage", "truncated", "types", "absurd", "huge", "deep", "empty", "body",
                   "padded")


class FaultError(ValueError):
    pass


def _check_type(name, value, typ):
    if typ in (int, (int, float)) and isinstance(value, bool):
        return False
    return isinstance(value, typ)


def _kind(typ):
    return {str: "a string", bool: "true or false"}.get(typ, "a number")


def normalize(spec):
    """Validate a fault spec from the admin API; returns the stored dict or raises FaultError."""
    if not isinstance(spec, dict):
        raise FaultError("a fault is a JSON object")
    ftype = spec.get("type")
    if ftype not in _SPECS and ftype != "revoke":
        raise FaultError("fault type must be one of %s" % ", ".join(sorted(list(_SPECS) + ["revoke"])))
    if ftype == "revoke":
        cid = spec.get("collectorId")
        if not _check_type("collectorId", cid, int):
            raise FaultError("revoke needs an integer collectorId")
        return {"type": "revoke", "collectorId": cid}
    path, count, params = _SPECS[ftype]
    known = set(params) | {"type", "path", "method", "collectorId", "count"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise FaultError("unknown field(s) for a %s fault: %s" % (ftype, ", ".join(unknown)))
    out = {"type": ftype}
    out["path"] = spec.get("path", path)
    if not isinstance(out["path"], str) or not out["path"].startswith("/"):
        raise FaultError("path must be a string starting with /")
    if out["path"].startswith("/api/v1/admin"):
        raise FaultError("admin requests cannot be faulted")
    method = spec.get("method")
    if method is not None and (not isinstance(method, str) or not method.isalpha()):
        raise FaultError("method must be an HTTP method name")
    out["method"] = method.upper() if method else None
    cid = spec.get("collectorId")
    if cid is not None and not _check_type("collectorId", cid, int):
        raise FaultError("collectorId must be an integer")
    out["collectorId"] = cid
    c = spec.get("count", count)
    if c is not None and (not _check_type("count", c, int) or c < 1):
        raise FaultError("count must be a positive integer or null")
    out["count"] = c
    for name, (typ, default) in params.items():
        if name in spec and spec[name] is not None:
            v = spec[name]
            if not _check_type(name, v, typ):
                raise FaultError("%s must be %s" % (name, _kind(typ)))
            if typ not in (str, bool) and v < 0:
                raise FaultError("%s must not be negative" % name)
            out[name] = v
        elif default is REQUIRED:
            raise FaultError("a %s fault needs %s" % (ftype, name))
        else:
            out[name] = default
    if ftype == "error":
        if not 400 <= out["status"] <= 599:
            raise FaultError("status must be a 4xx or 5xx code")
        if out["retryAfter"] is None and out["status"] in (429, 503):
            out["retryAfter"] = 1
    if ftype == "throttle" and out["bytesPerSecond"] < 1:
        raise FaultError("bytesPerSecond must be at least 1")
    if ftype == "malformed":
        if out["kind"] not in MALFORMED_KINDS:
            raise FaultError("kind must be one of %s" % ", ".join(MALFORMED_KINDS))
        if out["body"] is not None:
            out["kind"] = "body"
        elif out["kind"] == "body":
            raise FaultError("kind body needs a body string")
        if out["kind"] == "padded" and (out["bytes"] is None or out["bytes"] < 16):
            raise FaultError("kind padded needs bytes (at least 16)")
        if out["overBytes"] is not None and out["overBytes"] < 16:
            raise FaultError("overBytes must be at least 16")
    return out


def padded_body(size):
    """A valid heartbeat reply of exactly size bytes that costs its parser the most: an array of
    zeros (one JSON value per two bytes), then spaces."""
    n = max(1, (size - 12) // 2)
    body = b'{"pad":[' + b"0," * (n - 1) + b"0]}"
    return body + b" " * (size - len(body))


def malformed_body(fault):
    """The bytes of a malformed reply. A padded fault with overBytes alternates: its first,
    third... replies are `bytes` long, the second, fourth... `overBytes`."""
    kind = fault["kind"]
    if kind == "padded":
        over = fault.get("overBytes")
        return padded_body(over if over and fault.get("fired", 1) % 2 == 0 else fault["bytes"])
    if kind == "body":
        return fault["body"].encode("utf-8")
    if kind == "garbage":
        return b"<html><body>502 Bad Gateway</body></html>\x00\xff"
    if kind == "truncated":
        return b'{"heartbeatIntervalMs": 15000, "longPoll": true, "command": {"type": "upgr'
    if kind == "types":
        return json.dumps({"heartbeatIntervalMs": "soon", "longPoll": "yes", "serverTime": [],
                           "command": "upgrade"}).encode()
    if kind == "absurd":
        return json.dumps({
            "heartbeatIntervalMs": -1, "longPoll": True, "serverTime": 0,
            "command": {"type": "upgrade", "taskId": "../../1", "toVersion": "../../etc/passwd",
                        "requestTime": -1, "expiresAt": 2 ** 62,
                        "build": {"version": "x" * 5000, "url": "file:///etc/shadow", "size": -1,
                                  "sha256": "zz", "statement": "!!!not base64",
                                  "signature": ""}}}).encode()
    if kind == "huge":
        return b'{"heartbeatIntervalMs": 15000, "pad": "' + b"A" * (2 * 1024 * 1024) + b'"}'
    if kind == "deep":
        return b"[" * 5000 + b"]" * 5000
    return b""  # empty


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        self._ids = itertools.count(1)
        self.fired = 0

    def add(self, spec):
        f = dict(spec)
        with self._lock:
            f["id"] = next(self._ids)
            f["fired"] = 0
            self._faults.append(f)
        return dict(f)

    def remove(self, fid):
        with self._lock:
            n = len(self._faults)
            self._faults = [f for f in self._faults if f["id"] != fid]
            return len(self._faults) != n

    def reset(self):
        with self._lock:
            self._faults = []

    def list(self):
        with self._lock:
            return [dict(f) for f in self._faults]

    @staticmethod
    def _matches(f, method, path, collector_id, bearer):
        if not path.startswith(f["path"]):
            return False
        if f["method"] and f["method"] != method:
            return False
        if f["collectorId"] is not None and f["collectorId"] != collector_id:
            return False
        if f["type"] == "token" and not bearer:
            return False
        return True

    def take(self, types, method, path, collector_id, bearer, first_only=False):
        """Consume and return the armed faults of `types` that match this request (oldest first)."""
        out = []
        with self._lock:
            for f in self._faults:
                if f["type"] in types and self._matches(f, method, path, collector_id, bearer):
                    f["fired"] += 1
                    self.fired += 1
                    if f["count"] is not None:
                        f["count"] -= 1
                    out.append(dict(f))
                    if first_only:
                        break
            self._faults = [f for f in self._faults if f["count"] is None or f["count"] > 0]
        return out

"""Builds and downloads: the build object a collector asks for, and GET/HEAD /builds/<file> with
Range, If-Range, ETag and the download faults (drop, stall, throttle, corrupt). A mixin of
server.App; the build index is cp_builds.
"""

import email.utils
import os
import re
import stat
import time
from urllib.parse import unquote

import cp_faults
from cp_common import ApiError, log
from cp_http import REASONS, Abort, json_response


class Downloads:
    """GET /api/v1/collector/builds/{version} and the package repository under /builds/."""

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
            self.counters.add_file(name)
            h.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            if h.command == "HEAD" or length == 0:
                return None
            cid = req.collector["id"] if req.collector is not None else None
            faults = self.faults.take(cp_faults.DOWNLOAD_TYPES, h.command, req.path, cid,
                                      self._bearer(h) is not None)
            for fl in faults:
                log("fault.fired", type=fl["type"], id=fl["id"], path=req.path)
            self._stream(h, name, f, start, length, faults)
        return None

    def _stream(self, h, name, f, start, length, faults):
        drop = next((x for x in faults if x["type"] == "drop"), None)
        stall = next((x for x in faults if x["type"] == "stall"), None)
        throttle = next((x for x in faults if x["type"] == "throttle"), None)
        corrupt = [x for x in faults if x["type"] == "corrupt"]
        if not faults:
            sent = h.connection.sendfile(f, start, length)
            self.counters.add_bytes(h.cp_key, sent, name)
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
            self.counters.add_bytes(h.cp_key, len(data), name)
            if throttle:
                ahead = sent / throttle["bytesPerSecond"] - (time.monotonic() - t0)
                if ahead > 0:
                    self._sleep(ahead)
                if self.stop_event.is_set():
                    raise Abort()


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

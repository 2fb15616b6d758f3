"""Helpers for the control plane's own tests: start server.py as a real process, talk HTTP(S) to it,
make fake builds, a throwaway CA, and a scripted fake agent.

The fake agent here is a scripted client of the collector protocol, so the server's side of every
exchange can be checked step by step; the real agent is tested against this server elsewhere.
"""

import base64
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("MOLT_TOP_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
SERVER = os.path.join(TOP, "tests", "controlplane", "server.py")
PYTHON = os.environ.get("PYTHON3") or sys.executable

_live = []


def make_build(builds_dir, version, min_version="", os_name="linux", arch="amd64", size=4096,
               ext="tar.gz", data=None):
    """Write a fake package, its statement and a dummy signature (the server never verifies)."""
    data = os.urandom(size) if data is None else data
    pkg = "molt-%s-%s-%s.%s" % (version, os_name, arch, ext)
    st = {"name": "molt", "version": version, "release": "test", "os": os_name, "arch": arch,
          "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
          "minVersion": min_version, "created": int(time.time() * 1000), "package": pkg}
    stmt = json.dumps(st, indent=1).encode() + b"\n"
    sig = b"dummy-signature:" + os.urandom(16)
    for name, content in ((pkg, data), (pkg + ".statement.json", stmt), (pkg + ".sig", sig)):
        tmp = os.path.join(builds_dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(content)
        os.rename(tmp, os.path.join(builds_dir, name))
    return {"package": pkg, "data": data, "statement": stmt, "signature": sig,
            "version": version, "sha256": st["sha256"], "size": len(data)}


def make_tls(directory):
    """A throwaway CA and a server certificate for 127.0.0.1/localhost; returns (ca, cert, key)."""
    os.makedirs(directory, exist_ok=True)
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr = os.path.join(directory, "server.key"), os.path.join(directory, "server.csr")
    cert, ext = os.path.join(directory, "server.pem"), os.path.join(directory, "server.ext")
    if os.path.exists(cert):
        return ca, cert, key

    def run(*cmd):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=molt test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Reply %d %r>" % (self.status, self.body[:300])


class Server:
    """server.py run as a child process on 127.0.0.1 with a random port."""

    def __init__(self, workdir, tls=False, args=(), access_id=None, access_key=None):
        self.workdir = workdir
        self.data = os.path.join(workdir, "data")
        self.builds = os.path.join(workdir, "builds")
        os.makedirs(self.builds, exist_ok=True)
        self.tls = make_tls(os.path.join(workdir, "tls")) if tls else None
        self.args = list(args)
        self.access_id = access_id or "id" + secrets.token_hex(4)
        self.access_key = access_key or secrets.token_hex(16)
        self.log_path = os.path.join(workdir, "server.log")
        self.proc = None
        self.url = None
        self.port = 0

    def command(self, port=None):
        cmd = [PYTHON, SERVER, "--listen", "127.0.0.1:%d" % (self.port if port is None else port),
               "--data", self.data, "--builds", self.builds, "--access-id", self.access_id,
               "--access-key", self.access_key, "--rate-limit", "0"]
        if self.tls:
            cmd += ["--tls-cert", self.tls[1], "--tls-key", self.tls[2]]
        return cmd + self.args

    def start(self, port=None):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(port), stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        _live.append(self.proc)
        line = _readline_with_timeout(self.proc.stdout, 20)
        if not line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not print its URL; log:\n" + self.log_tail())
        self.url = line.decode().strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        if self.proc in _live:
            _live.remove(self.proc)
        self.proc = None
        return rc

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    # -- HTTP

    def ssl_context(self):
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.tls[0])

    def connect(self, timeout=30):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.ssl_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def basic(self, access_id=None, access_key=None):
        raw = "%s:%s" % (access_id or self.access_id, access_key or self.access_key)
        return "Basic " + base64.b64encode(raw.encode()).decode()

    def request(self, method, path, body=None, headers=None, auth="basic", timeout=30, conn=None):
        """One request; body may be a dict (sent as JSON) or bytes. Returns a Reply."""
        hdrs = {}
        if auth == "basic":
            hdrs["Authorization"] = self.basic()
        elif auth:
            hdrs["Authorization"] = auth
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        own = conn is None
        c = conn or self.connect(timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return Reply(r.status, r.getheaders(), data)
        finally:
            if own:
                c.close()

    def api(self, method, path, body=None, **kw):
        return self.request(method, "/api/v1" + path, body, **kw)

    def admin(self, method, path, body=None):
        r = self.api(method, "/admin" + path, body)
        if r.status != 200:
            raise AssertionError("admin %s %s: %r" % (method, path, r))
        return r.json

    def fault(self, **spec):
        return self.admin("POST", "/faults", spec)["faults"][0]

    def faults_reset(self):
        self.admin("DELETE", "/faults")

    def advance_clock(self, ms):
        return self.admin("POST", "/clock", {"advanceMs": ms})

    def events(self, task_id):
        return self.admin("GET", "/tasks/%s/events" % task_id)["events"]

    def task(self, task_id):
        r = self.api("GET", "/collectors/upgrades/%s" % task_id)
        if r.status != 200:
            raise AssertionError("task %s: %r" % (task_id, r))
        return r.json["upgrade"]

    def create_task(self, collector_id, to_version=None):
        body = {"collectorId": collector_id}
        if to_version:
            body["toVersion"] = to_version
        r = self.api("POST", "/collectors/upgrades", body)
        if r.status != 202:
            raise AssertionError("create task: %r" % r)
        return r.json["id"]

    def collector(self, cid):
        r = self.api("GET", "/collectors/%d" % cid)
        if r.status != 200:
            raise AssertionError("collector %s: %r" % (cid, r))
        return r.json["collector"]

    def wait_for(self, what, predicate, timeout=15, interval=0.05):
        """Poll predicate() until true; bounded in time, never a timing assertion."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))

    def agent(self, name=None, **kw):
        return FakeAgent(self, name or "host-" + uuid.uuid4().hex[:8], **kw)


def _readline_with_timeout(stream, timeout):
    out = []
    t = threading.Thread(target=lambda: out.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return out[0] if out else b""


class FakeAgent:
    """A scripted collector: each call is one protocol exchange, checked by the test."""

    def __init__(self, server, name, machine_id=None, version="20.1-2749", arch="amd64",
                 os_name="Linux"):
        self.server = server
        self.name = name
        self.machine_id = machine_id or uuid.uuid4().hex
        self.version = version
        self.arch = arch
        self.os_name = os_name
        self.id = None
        self.token = None
        self.started = time.monotonic()

    def register_body(self, **extra):
        body = {"name": self.name, "hostName": self.name + ".example.com",
                "machineId": self.machine_id, "ephemeral": False, "category": "",
                "description": "", "fields": {}, "collectorVersion": self.version,
                "osName": self.os_name, "osVersion": "6.1.0-18-amd64", "osArch": self.arch,
                "osTime": 1234, "timeZone": "UTC"}
        body.update(extra)
        return body

    def register(self, **extra):
        r = self.server.api("POST", "/collector/register", self.register_body(**extra))
        if r.status != 200:
            raise AssertionError("register: %r" % r)
        self.id = r.json["collectorId"]
        self.token = r.json["token"]
        return r.json

    def facts(self, task=None):
        return {"collectorVersion": self.version, "osName": self.os_name,
                "osVersion": "6.1.0-18-amd64", "osArch": self.arch,
                "osTime": int((time.monotonic() - self.started) * 1000) + 1,
                "uptimeMs": 990000000, "hostName": self.name + ".example.com",
                "timeZone": "UTC", "task": task}

    def heartbeat(self, task=None, wait_ms=None, timeout=30, token=None, conn=None):
        path = "/collector/heartbeat" + ("?waitMs=%d" % wait_ms if wait_ms is not None else "")
        return self.server.api("POST", path, self.facts(task), auth="Bearer " + (token or self.token),
                               timeout=timeout, conn=conn)

    def beat(self, task=None, wait_ms=None, timeout=30):
        """A heartbeat that must succeed; returns its command (or None)."""
        r = self.heartbeat(task, wait_ms, timeout)
        if r.status != 200:
            raise AssertionError("heartbeat: %r" % r)
        return r.json["command"]

    def report(self, rep, token=None):
        return self.server.api("POST", "/collector/reports", rep,
                               auth="Bearer " + (token or self.token))

    def event(self, ev, token=None):
        return self.server.api("POST", "/collector/events", ev,
                               auth="Bearer " + (token or self.token))

    def progress(self, task_id, stage, build_version, status=6, message="", **extra):
        stages = ["accepted", "preflight", "downloading", "verifying", "staging", "switching",
                  "restarting", "health-check", "committed"]
        rep = {"taskId": str(task_id), "status": status, "stage": stage,
               "stageIndex": stages.index(stage) + 1 if stage in stages else 0,
               "stageCount": len(stages), "bytesDone": 0, "bytesTotal": 0,
               "version": self.version, "buildVersion": build_version, "message": message}
        rep.update(extra)
        return rep


class ServerTestCase(unittest.TestCase):
    """One server per test class, in a temporary directory removed afterwards."""

    server_args = ()
    tls = False
    builds = ()  # (version, minVersion) pairs made before start

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="molt-cp-test-")
        cls.srv = Server(cls.tmp, tls=cls.tls, args=cls.server_args)
        cls.build_files = {}
        for v, mv in cls.builds:
            cls.build_files[v] = make_build(cls.srv.builds, v, mv)
        try:
            cls.srv.start()
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tap_diagnostics(self):
        """Added to a failing test's TAP diagnostics by taprunner."""
        return "server log (tail):\n" + self.srv.log_tail(25)

    def assertError(self, reply, status, code=None):
        """The legacy error body: {"status", "id", "code", "message"}."""
        self.assertEqual(reply.status, status, reply)
        body = reply.json
        self.assertEqual(body["status"], status)
        self.assertIsInstance(body["id"], str)
        self.assertTrue(body["id"])
        self.assertIsInstance(body["message"], str)
        self.assertTrue(body["message"])
        if code is not None:
            self.assertEqual(body["code"], code, body)
        return body


def kill_all():
    for p in list(_live):
        if p.poll() is None:
            p.kill()


import atexit  # noqa: E402

atexit.register(kill_all)

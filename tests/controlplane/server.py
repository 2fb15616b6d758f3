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
import errno
import fcntl
import ipaddress
import os
import re
import signal
import ssl
import sys
import threading
import traceback

sys.dont_write_bytecode = True  # never litter the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cp_builds  # noqa: E402
import cp_channel  # noqa: E402
import cp_faults  # noqa: E402
import cp_store  # noqa: E402
from cp_admin import AdminApi  # noqa: E402
from cp_common import log  # noqa: E402
from cp_downloads import Downloads  # noqa: E402
from cp_http import Counters, HttpApp, RateLimiter, Server  # noqa: E402
from cp_management import ManagementApi  # noqa: E402
from cp_protocol import CollectorProtocol  # noqa: E402


def parse_duration(text):
    """'15' or '15s', '200ms', '30m', '12h' -> milliseconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError("not a duration: %r (use 15, 15s, 200ms, 30m, 12h)" % text)
    n = float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, None: 1000}[m.group(2)]
    if n < 1:
        raise argparse.ArgumentTypeError("duration too short: %r" % text)
    return int(n)


class App(HttpApp, ManagementApi, CollectorProtocol, Downloads, AdminApi):
    def __init__(self, args, store, builds, clock, base_url):
        self.args = args
        self.store = store
        self.builds = builds
        self.channels = cp_channel.ChannelIndex(builds.dir)
        self.keyrings = cp_channel.KeyringIndex(builds.dir)
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
        r("POST", a + "/collector/events", self.event, "bearer")
        r("GET", a + "/collector/builds/(?P<version>[^/]+)", self.get_build, "bearer", "{version}")
        r("GET", a + "/collector/channel", self.get_channel, "bearer")
        r("GET", a + "/collector/keyring", self.get_keyring, "bearer")
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

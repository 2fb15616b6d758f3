#!/usr/bin/env python3
"""The server as a process and over time: command line, SIGTERM (also during a long-poll),
restart and SIGKILL persistence, TLS, the 30-minute task timeout, alive transitions, ephemeral
collectors and offline collectors (with the admin clock, or short timeouts)."""

import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cptest  # noqa: E402
import taprunner  # noqa: E402

DAY = 86400000
BUILDS = (("20.1-2749", ""), ("20.2-100", "20.1-0"))


def have_openssl():
    return shutil.which("openssl") is not None


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="molt-cp-life-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop(signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, tls=False, args=()):
        s = cptest.Server(self.tmp, tls=tls, args=args)
        for v, mv in BUILDS:
            if not os.path.exists(os.path.join(s.builds, "molt-%s-linux-amd64.tar.gz" % v)):
                cptest.make_build(s.builds, v, mv)
        self.servers.append(s)
        return s

    def tap_diagnostics(self):
        return "\n".join("server log (tail):\n" + s.log_tail(20) for s in self.servers)


class CommandLineTest(TempDirTest):
    def run_server(self, *args, timeout=20):
        return subprocess.run([cptest.PYTHON, cptest.SERVER] + list(args), capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def base(self, listen="127.0.0.1:0"):
        return ["--listen", listen, "--data", os.path.join(self.tmp, "d"), "--builds",
                os.path.join(self.tmp, "b"), "--access-id", "i", "--access-key", "k"]

    def test_first_line_is_the_url(self):
        s = self.server().start()
        self.assertRegex(s.url, r"^http://127\.0\.0\.1:[0-9]+$")
        self.assertNotEqual(s.port, 0)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(s.url + "/api/v1/collectors/upgrades/targets", timeout=10)
        self.assertEqual(cm.exception.code, 401, "it answers, and wants credentials")
        cm.exception.close()

    def test_first_line_is_the_url_ipv6(self):
        s = self.server()
        s.args = []
        try:
            proc = subprocess.Popen([cptest.PYTHON, cptest.SERVER] + self.base("[::1]:0"),
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as e:
            self.skipTest("cannot start: %s" % e)
        try:
            line = cptest._readline_with_timeout(proc.stdout, 20).decode().strip()
            if not line and proc.poll() is not None:
                self.skipTest("no IPv6 loopback here")
            self.assertRegex(line, r"^http://\[::1\]:[0-9]+$")
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()

    def test_plain_http_only_on_loopback(self):
        r = self.run_server(*self.base("0.0.0.0:0"))
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"loopback", r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_bad_arguments(self):
        r = self.run_server(*(self.base() + ["--tls-cert", "/nonexistent"]))
        self.assertEqual(r.returncode, 2)
        r = self.run_server(*(self.base() + ["--tls-cert", "/nonexistent", "--tls-key", "/no"]))
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"certificate", r.stderr)
        r = self.run_server("--listen", "nonsense")
        self.assertEqual(r.returncode, 2)
        r = self.run_server(*(self.base() + ["--task-timeout", "soon"]))
        self.assertEqual(r.returncode, 2)

    def test_data_dir_in_use(self):
        s = self.server().start()
        proc = subprocess.run(s.command(port=0), capture_output=True, timeout=20)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"in use", proc.stderr)

    def test_sigterm_during_long_poll(self):
        s = self.server(args=("--heartbeat-interval", "120s")).start()
        a = s.agent()
        a.register()
        out = {}

        def poll():
            try:
                out["reply"] = a.heartbeat(wait_ms=120000, timeout=60)
            except Exception as e:
                out["error"] = e

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        s.wait_for("the long-poll", lambda: s.admin("GET", "/stats")["longPollsWaiting"] == 1)
        proc = s.proc
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0, "SIGTERM stops it (bounded wait, not a timing check)")
        t.join(20)
        self.assertFalse(t.is_alive())
        s.stop()


class PersistenceTest(TempDirTest):
    def scenario(self, sig):
        s = self.server().start()
        a = s.agent()
        a.register()
        tid = s.create_task(a.id, "20.2-100")
        a.beat()
        a.beat(a.progress(tid, "downloading", "20.2-100"))
        put = s.api("GET", "/collectors/%d" % a.id)
        c = dict(put.json["collector"], description="kept")
        self.assertEqual(s.api("PUT", "/collectors/%d" % a.id, {"collector": c},
                               headers={"If-Match": put.headers["etag"]}).status, 200)
        before = s.collector(a.id)
        events = s.events(tid)
        old_port = s.port
        s.stop(sig)
        s.start(port=old_port)
        self.assertEqual(s.port, old_port)
        self.assertEqual(s.collector(a.id), before)
        self.assertEqual(s.task(tid)["status"], 6)
        self.assertEqual(s.events(tid), events)
        self.assertEqual(a.beat(a.progress(tid, "verifying", "20.2-100")), None,
                         "the token is still valid and the task goes on")
        a.version = "20.2-100"
        r = a.report(a.progress(tid, "committed", "20.2-100", status=2))
        self.assertEqual(r.json["taskStatus"], 2)
        b = s.agent()
        b.register()
        self.assertGreater(b.id, a.id, "ids are not reused")
        self.assertGreater(int(s.create_task(b.id)), int(tid))

    def test_restart_after_sigterm(self):
        self.scenario(signal.SIGTERM)

    def test_restart_after_sigkill(self):
        self.scenario(signal.SIGKILL)


@unittest.skipUnless(have_openssl(), "openssl command not found")
class TLSTest(TempDirTest):
    def test_https(self):
        s = self.server(tls=True).start()
        self.assertRegex(s.url, r"^https://127\.0\.0\.1:[0-9]+$")
        r = s.api("GET", "/collectors/upgrades/targets")
        self.assertEqual(r.status, 200)
        a = s.agent()
        a.register()
        tid = s.create_task(a.id, "20.2-100")
        cmd = a.beat()
        self.assertTrue(cmd["build"]["url"].startswith(s.url + "/builds/"))
        self.assertEqual(s.task(tid)["status"], 1)
        ctx = ssl.create_default_context(cafile=s.tls[0])
        req = urllib.request.Request(s.url.replace("127.0.0.1", "localhost") + "/api/v1/collectors",
                                     headers={"Authorization": s.basic()})
        with urllib.request.urlopen(req, context=ctx) as resp:
            self.assertEqual(resp.status, 200, "the certificate names localhost too")

    def test_untrusted_client_fails(self):
        s = self.server(tls=True).start()
        with self.assertRaises(urllib.error.URLError) as cm:
            urllib.request.urlopen(s.url + "/api/v1/collectors", timeout=10,
                                   context=ssl.create_default_context())
        self.assertIsInstance(cm.exception.reason, ssl.SSLError)
        with self.assertRaises(Exception):
            urllib.request.urlopen(s.url.replace("https", "http") + "/api/v1/collectors",
                                   timeout=10)
        self.assertEqual(s.api("GET", "/collectors").status, 200, "still serving")


class ClockTest(cptest.ServerTestCase):
    """Default (documented) timeouts, crossed with the admin clock instead of waiting."""
    builds = BUILDS

    def tearDown(self):
        self.srv.admin("POST", "/clock", {"offsetMs": 0})

    def test_task_times_out_after_30_minutes(self):
        a = self.srv.agent()
        a.register()
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        rep = a.progress(tid, "downloading", "20.2-100")
        a.beat(rep)
        self.srv.advance_clock(29 * 60 * 1000)
        self.assertEqual(self.srv.task(tid)["status"], 6)
        self.srv.advance_clock(61 * 1000)
        t = self.srv.task(tid)
        self.assertEqual((t["status"], t["message"]), (3, "timed out after 30 minutes"))
        self.assertEqual(a.beat(rep), {"type": "cancel", "taskId": tid})
        err = self.assertError(a.report(a.progress(tid, "committed", "20.2-100", status=2)), 409,
                               "task.closed")
        self.assertEqual(err["message"],
                         "task %s already failed: timed out after 30 minutes" % tid)
        r = a.report(a.progress(tid, "downloading", "20.2-100", status=3, message="cancelled"))
        self.assertEqual(r.status, 200)
        self.assertIn("timed-out", [e["what"] for e in self.srv.events(tid)])

    def test_undelivered_task_times_out(self):
        a = self.srv.agent()
        a.register()
        tid = self.srv.create_task(a.id, "20.2-100")
        self.srv.advance_clock(31 * 60 * 1000)
        self.assertEqual(self.srv.task(tid)["status"], 3)
        self.assertIsNone(a.beat(), "nothing to cancel: it never reached the agent")

    def test_alive_transitions(self):
        a = self.srv.agent()
        a.register()
        self.assertIs(self.srv.collector(a.id)["alive"], True)
        self.srv.advance_clock(29 * 60 * 1000)
        self.assertIs(self.srv.collector(a.id)["alive"], True)
        self.srv.advance_clock(2 * 60 * 1000)
        c = self.srv.collector(a.id)
        self.assertIs(c["alive"], False)
        dead = [x["id"] for x in self.srv.api("GET", "/collectors?filter=dead").json["collectors"]]
        self.assertIn(a.id, dead)
        r = self.srv.api("POST", "/collectors/upgrades", {"collectorId": a.id})
        self.assertError(r, 400, "collector.not.alive")
        up = self.srv.api("GET", "/collectors/upgrades/collectors").json["collectors"]
        self.assertNotIn(a.id, [x["id"] for x in up])
        a.beat()
        c2 = self.srv.collector(a.id)
        self.assertIs(c2["alive"], True)
        self.assertGreater(c2["lastSeenAlive"], c["lastSeenAlive"])

    def test_ephemeral_deleted_after_12_hours(self):
        e = self.srv.agent()
        e.register(ephemeral=True)
        keep = self.srv.agent()
        keep.register()
        self.assertIs(self.srv.collector(e.id)["ephemeral"], True)
        self.srv.advance_clock(11 * 3600 * 1000)
        self.assertEqual(self.srv.api("GET", "/collectors/%d" % e.id).status, 200)
        self.srv.advance_clock(3600 * 1000 + 1000)
        self.assertEqual(self.srv.api("GET", "/collectors/%d" % e.id).status, 404)
        self.assertError(e.heartbeat(), 401, "token.invalid")
        self.assertEqual(self.srv.api("GET", "/collectors/%d" % keep.id).status, 200)

    def test_offline(self):
        a = self.srv.agent()
        a.register()
        h = self.srv.api("POST", "/collectors", {"collector": {"collectorType": "Hosted",
                                                               "name": "h-" + a.name}}).json
        self.srv.advance_clock(11 * DAY)
        fresh = self.srv.agent()
        fresh.register()
        ids = lambda q: [c["id"] for c in self.srv.api(  # noqa: E731
            "GET", "/collectors/offline" + q).json["collectors"]]
        self.assertIn(a.id, ids("?aliveBeforeDays=10"))
        self.assertNotIn(a.id, ids("?aliveBeforeDays=12"))
        self.assertNotIn(a.id, ids(""), "default: 100 days")
        self.assertNotIn(fresh.id, ids("?aliveBeforeDays=1"))
        self.assertNotIn(h["collector"]["id"], ids("?aliveBeforeDays=1"), "installed only")
        r = self.srv.api("DELETE", "/collectors/offline?aliveBeforeDays=10")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.srv.api("GET", "/collectors/%d" % a.id).status, 404)
        self.assertEqual(self.srv.api("GET", "/collectors/%d" % fresh.id).status, 200)
        self.assertEqual(self.srv.api("GET", "/collectors/%d" % h["collector"]["id"]).status, 200)

    def test_clock_api(self):
        c = self.srv.admin("GET", "/clock")
        self.assertEqual(c["offsetMs"], 0)
        self.assertEqual(self.srv.advance_clock(5000)["offsetMs"], 5000)
        self.assertError(self.srv.api("POST", "/admin/clock", {"advanceMs": "x"}), 400)
        self.assertError(self.srv.api("POST", "/admin/clock", {}), 400)


class ShortTimeoutTest(cptest.ServerTestCase):
    """The options that shorten the documented timeouts, for tests of the agent."""
    builds = BUILDS
    server_args = ("--task-timeout", "1s", "--alive-timeout", "1500ms")

    def test_short_task_timeout(self):
        a = self.srv.agent()
        a.register()
        tid = self.srv.create_task(a.id, "20.2-100")
        cmd = a.beat()
        self.assertEqual(cmd["expiresAt"] - cmd["requestTime"], 1000)
        t = self.srv.wait_for("the timeout", lambda: self.srv.task(tid)["status"] == 3
                              and self.srv.task(tid))
        self.assertEqual(t["message"], "timed out after 1 second")

    def test_short_alive_timeout(self):
        a = self.srv.agent()
        a.register()
        self.srv.wait_for("alive: false", lambda: not self.srv.collector(a.id)["alive"])
        a.beat()
        self.assertIs(self.srv.collector(a.id)["alive"], True)


if __name__ == "__main__":
    taprunner.main()

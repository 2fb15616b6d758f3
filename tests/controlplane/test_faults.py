#!/usr/bin/env python3
"""Every fault control of the admin API: errors with counts and path prefixes, 429 with
Retry-After, rejected and revoked tokens, malformed replies, delays, dropped, stalled, throttled and
corrupted downloads; reset; request counters and task event logs."""

import http.client
import json
import os
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cptest  # noqa: E402
import taprunner  # noqa: E402


class FaultTest(cptest.ServerTestCase):
    builds = (("20.1-2749", ""), ("20.2-100", "20.1-0"))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pkg = cptest.make_build(cls.srv.builds, "20.3-1", size=200000)
        cls.path = "/builds/" + cls.pkg["package"]

    def setUp(self):
        self.srv.faults_reset()
        self.a = self.srv.agent()
        self.a.register()

    def tearDown(self):
        self.srv.faults_reset()

    def download(self, headers=None, timeout=30):
        """(status, body bytes received, whether the body ended early)."""
        conn = self.srv.connect(timeout)
        try:
            h = {"Authorization": "Bearer " + self.a.token}
            h.update(headers or {})
            conn.request("GET", self.path, headers=h)
            r = conn.getresponse()
            try:
                return r.status, r.read(), False
            except http.client.IncompleteRead as e:
                return r.status, e.partial, True
        finally:
            conn.close()

    # -- request faults

    def test_error_next_n(self):
        f = self.srv.fault(type="error", status=500, count=2, path="/api/v1/collector/")
        self.assertEqual((f["count"], f["status"]), (2, 500))
        self.assertError(self.a.heartbeat(), 500, "internal.error")
        self.assertEqual(self.srv.api("GET", "/collectors").status, 200, "outside the prefix")
        self.assertError(self.a.heartbeat(), 500)
        self.assertEqual(self.a.heartbeat().status, 200, "two, then normal again")
        self.assertEqual(self.srv.admin("GET", "/faults")["faults"], [])

    def test_error_429_retry_after(self):
        self.srv.fault(type="error", status=429, retryAfter=7, path="/api/v1/collector/heartbeat")
        r = self.a.heartbeat()
        self.assertError(r, 429, "rate.limit.exceeded")
        self.assertEqual(r.headers["retry-after"], "7")
        self.srv.fault(type="error", status=503)
        r = self.srv.api("GET", "/collectors")
        self.assertError(r, 503)
        self.assertEqual(r.headers["retry-after"], "1")

    def test_error_filters(self):
        other = self.srv.agent()
        other.register()
        self.srv.fault(type="error", status=502, collectorId=other.id, count=1)
        self.assertEqual(self.a.heartbeat().status, 200)
        self.assertError(other.heartbeat(), 502)
        self.srv.fault(type="error", status=500, method="GET", path="/api/v1/collectors")
        self.assertEqual(self.a.heartbeat().status, 200)
        self.assertError(self.srv.api("GET", "/collectors"), 500)

    def test_error_does_not_process_request(self):
        tid = self.srv.create_task(self.a.id, "20.2-100")
        self.srv.fault(type="error", status=500, path="/api/v1/collector/heartbeat")
        self.assertEqual(self.a.heartbeat().status, 500)
        self.assertEqual(self.srv.task(tid)["status"], 0, "the failed heartbeat delivered nothing")
        self.assertEqual(self.a.beat()["taskId"], tid)

    def test_token_rejected(self):
        self.srv.fault(type="token", count=2)
        self.assertError(self.a.heartbeat(), 401, "token.invalid")
        self.assertEqual(self.srv.api("POST", "/collector/register",
                                      self.a.register_body()).status, 200,
                         "registration (no token) is not affected")
        self.a.register()
        self.assertError(self.a.heartbeat(), 401, "token.invalid")
        self.assertEqual(self.a.heartbeat().status, 200, "the token itself still works")

    def test_token_rejected_for_one_collector(self):
        other = self.srv.agent()
        other.register()
        self.srv.fault(type="token", collectorId=other.id, count=None)
        for _ in range(3):
            self.assertEqual(self.a.heartbeat().status, 200)
            self.assertError(other.heartbeat(), 401, "token.invalid")

    def test_revoke(self):
        old = self.a.token
        r = self.srv.admin("POST", "/faults", {"type": "revoke", "collectorId": self.a.id})
        self.assertIs(r["faults"][0]["revoked"], True)
        self.assertError(self.a.heartbeat(token=old), 401, "token.invalid")
        old_id = self.a.id
        self.a.register()
        self.assertEqual(self.a.id, old_id, "registering again gets the same collector back")
        self.assertEqual(self.a.heartbeat().status, 200)
        r = self.srv.api("POST", "/admin/faults", {"type": "revoke", "collectorId": 1})
        self.assertError(r, 404)

    def test_malformed_replies(self):
        for kind in ("garbage", "truncated", "types", "absurd", "huge", "deep", "empty"):
            with self.subTest(kind=kind):
                self.srv.fault(type="malformed", kind=kind)
                r = self.a.heartbeat()
                self.assertEqual(r.status, 200)
                try:
                    body = json.loads(r.body)
                except (ValueError, RecursionError):
                    body = None
                if body is not None:
                    bad_types = not isinstance(body.get("heartbeatIntervalMs"), int) or \
                        body["heartbeatIntervalMs"] <= 0 or isinstance(body.get("command"), str)
                    self.assertTrue(bad_types or len(r.body) > 1024 * 1024, kind)
                self.assertEqual(self.a.heartbeat().json["command"], None, "next one is normal")
        self.srv.fault(type="malformed", body='{"command": 42}', status=202)
        r = self.a.heartbeat()
        self.assertEqual((r.status, r.body), (202, b'{"command": 42}'))

    def test_padded_replies(self):
        # Valid JSON of exactly `bytes`, alternating with `overBytes` when that is given.
        self.srv.fault(type="malformed", kind="padded", bytes=1000, overBytes=1001, count=4)
        sizes = []
        for _ in range(4):
            r = self.a.heartbeat()
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.body)["pad"][0], 0)
            sizes.append(len(r.body))
        self.assertEqual(sizes, [1000, 1001, 1000, 1001])
        self.assertEqual(self.a.heartbeat().json["command"], None, "next one is normal")
        for spec in ({"type": "malformed", "kind": "padded"},
                     {"type": "malformed", "kind": "padded", "bytes": 8},
                     {"type": "malformed", "kind": "padded", "bytes": 100, "overBytes": 3}):
            with self.subTest(spec=spec):
                self.assertError(self.srv.api("POST", "/admin/faults", spec), 400)

    def test_delay(self):
        self.srv.fault(type="delay", ms=300, count=1)
        t0 = time.monotonic()
        r = self.a.heartbeat()
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3, "a sleep lasts at least its length")
        f = self.srv.admin("GET", "/faults")["faults"]
        self.assertEqual(f, [], "a counted delay is used up")

    def test_stall_api(self):
        self.srv.fault(type="stall", path="/api/v1/collector/heartbeat", seconds=30)
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.a.heartbeat(timeout=0.5)
        self.srv.faults_reset()

    def test_drop_api(self):
        for after in (0, 100):
            with self.subTest(afterBytes=after):
                self.srv.fault(type="drop", path="/api/v1/collector/heartbeat", afterBytes=after)
                with self.assertRaises((http.client.HTTPException, ConnectionError)):
                    self.a.heartbeat()
                self.assertEqual(self.a.heartbeat().status, 200)

    # -- download faults

    def test_drop_download(self):
        self.srv.admin("DELETE", "/stats")
        self.srv.fault(type="drop", afterBytes=5000, count=2)
        for _ in range(2):
            status, body, short = self.download()
            self.assertEqual((status, short, len(body)), (200, True, 5000))
            self.assertEqual(body, self.pkg["data"][:5000])
        status, body, short = self.download({"Range": "bytes=5000-"})
        self.assertEqual((status, short, body), (206, False, self.pkg["data"][5000:]))
        ep = self.srv.admin("GET", "/stats")["endpoints"]["GET /builds/{file}"]
        self.assertEqual(ep["statuses"], {"200": 2, "206": 1}, "counted as the reply began")
        self.assertEqual(ep["bytes"], 10000 + len(self.pkg["data"]) - 5000,
                         "body bytes served, for 'downloaded less than 1.5 x' checks")

    def test_drop_with_reset(self):
        self.srv.fault(type="drop", afterBytes=3000, reset=True)
        try:
            status, body, short = self.download()
            self.assertTrue(short, "a reset ends the body early")
            self.assertLessEqual(len(body), 3000)
        except ConnectionResetError:
            pass  # the reset arrived before the client read what was sent
        self.assertEqual(self.download()[1], self.pkg["data"])
        self.srv.fault(type="drop", path="/api/v1/collector/heartbeat", reset=True)
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            self.a.heartbeat()

    def test_drop_counts_bytes_of_this_response(self):
        self.srv.fault(type="drop", afterBytes=100)
        status, body, short = self.download({"Range": "bytes=1000-"})
        self.assertEqual((status, body, short), (206, self.pkg["data"][1000:1100], True))

    def test_stall_download(self):
        self.srv.fault(type="stall", afterBytes=1000, seconds=0.3, count=1)
        t0 = time.monotonic()
        status, body, short = self.download()
        self.assertEqual((status, short, body), (200, False, self.pkg["data"]))
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.srv.fault(type="stall", afterBytes=1000, seconds=30, count=1)
        conn = self.srv.connect(timeout=0.5)
        try:
            conn.request("GET", self.path, headers={"Authorization": "Bearer " + self.a.token})
            r = conn.getresponse()
            got = r.read(1000)
            self.assertEqual(got, self.pkg["data"][:1000])
            with self.assertRaises((socket.timeout, TimeoutError)):
                r.read(1)
        finally:
            conn.close()

    def test_throttle(self):
        self.srv.fault(type="throttle", bytesPerSecond=400000)
        t0 = time.monotonic()
        status, body, _ = self.download()
        self.assertEqual((status, body), (200, self.pkg["data"]))
        self.assertGreaterEqual(time.monotonic() - t0, 0.45, "200 kB at 400 kB/s")
        self.assertEqual(len(self.srv.admin("GET", "/faults")["faults"]), 1, "until reset")

    def test_corrupt(self):
        self.srv.fault(type="corrupt", offset=12345, count=2)
        status, body, _ = self.download()
        self.assertEqual((status, len(body)), (200, len(self.pkg["data"])))
        diff = [i for i in range(len(body)) if body[i] != self.pkg["data"][i]]
        self.assertEqual(diff, [12345])
        self.assertEqual(body[12345], self.pkg["data"][12345] ^ 0xFF)
        status, body, _ = self.download({"Range": "bytes=12000-12999"})
        self.assertEqual(body[345], self.pkg["data"][12345] ^ 0xFF, "file offsets, not response")
        status, body, _ = self.download()
        self.assertEqual(body, self.pkg["data"], "two corrupted downloads, then clean")

    def test_download_faults_leave_api_alone(self):
        self.srv.fault(type="drop", afterBytes=0, count=None)
        self.assertEqual(self.a.heartbeat().status, 200)
        self.assertEqual(self.download()[2], True)

    # -- admin

    def test_reset_and_remove(self):
        f1 = self.srv.fault(type="error", status=500, count=None)
        self.srv.fault(type="throttle", bytesPerSecond=100)
        self.assertEqual(len(self.srv.admin("GET", "/faults")["faults"]), 2)
        self.srv.admin("DELETE", "/faults/%d" % f1["id"])
        self.assertEqual([f["type"] for f in self.srv.admin("GET", "/faults")["faults"]],
                         ["throttle"])
        self.assertError(self.srv.api("DELETE", "/admin/faults/%d" % f1["id"]), 404)
        self.srv.faults_reset()
        self.assertEqual(self.srv.admin("GET", "/faults")["faults"], [])
        self.assertEqual(self.download()[1], self.pkg["data"])

    def test_several_faults_in_one_request(self):
        r = self.srv.admin("POST", "/faults", {"faults": [
            {"type": "error", "status": 500, "path": "/api/v1/collector/heartbeat"},
            {"type": "error", "status": 503, "path": "/api/v1/collector/heartbeat"}]})
        self.assertEqual(len(r["faults"]), 2)
        self.assertError(self.a.heartbeat(), 500)
        self.assertError(self.a.heartbeat(), 503)
        self.assertEqual(self.a.heartbeat().status, 200)

    def test_invalid_faults(self):
        for spec in ({"type": "explode"}, {"type": "throttle"}, {"type": "error", "status": 99},
                     {"type": "error", "path": "/api/v1/admin/stats"}, [], {"faults": []}):
            with self.subTest(spec=spec):
                self.assertError(self.srv.api("POST", "/admin/faults", spec), 400)

    def test_admin_needs_credentials(self):
        self.assertError(self.srv.api("GET", "/admin/faults", auth=None), 401)
        self.assertError(self.srv.api("POST", "/admin/faults", {"type": "error"},
                                      auth=self.srv.basic(access_key="x")), 401)

    def test_admin_is_never_faulted(self):
        self.srv.fault(type="error", status=500, count=None, path="/")
        self.assertEqual(self.srv.api("GET", "/admin/stats").status, 200)
        self.assertError(self.srv.api("GET", "/collectors"), 500)

    def test_counters(self):
        self.srv.admin("DELETE", "/stats")
        for _ in range(3):
            self.a.heartbeat()
        self.srv.api("GET", "/collectors/%d" % self.a.id)
        s = self.srv.admin("GET", "/stats")
        ep = s["endpoints"]
        hb = ep["POST /api/v1/collector/heartbeat"]
        self.assertEqual((hb["count"], hb["statuses"]), (3, {"200": 3}))
        self.assertGreater(hb["bytes"], 0)
        self.assertEqual(ep["GET /api/v1/collectors/{id}"]["count"], 1)
        self.assertGreaterEqual(s["total"], 4)
        self.assertIn("requestsPerSecond", s)
        state = self.srv.admin("GET", "/faults")
        self.assertIn("counters", state)
        self.assertEqual(state["config"]["taskTimeoutMs"], 1800000)

    def test_heartbeat_log(self):
        self.a.beat()
        self.a.version = "20.2-100"
        self.a.beat(self.a.progress(424242, "health-check", "20.2-100"))
        hb = self.srv.admin("GET", "/collectors/%d/heartbeats" % self.a.id)["heartbeats"]
        self.assertEqual([(h["version"], h.get("stage")) for h in hb],
                         [("20.1-2749", None), ("20.2-100", "health-check")])
        self.assertLessEqual(hb[0]["time"], hb[1]["time"])
        self.assertLessEqual(hb[0]["monotonicMs"], hb[1]["monotonicMs"])
        self.assertError(self.srv.api("GET", "/admin/collectors/1/heartbeats"), 404)

    def test_task_views(self):
        tid = self.srv.create_task(self.a.id, "20.2-100")
        self.a.beat()
        self.a.beat(self.a.progress(tid, "accepted", "20.2-100"))
        t = self.srv.admin("GET", "/tasks/%s" % tid)
        self.assertEqual(t["upgrade"]["status"], 6)
        self.assertEqual([e["what"] for e in t["events"]], ["created", "delivered", "report"])
        lst = self.srv.admin("GET", "/tasks?collectorId=%d" % self.a.id)["tasks"]
        self.assertEqual([x["id"] for x in lst], [int(tid)])
        self.assertEqual(self.srv.admin("GET", "/tasks?status=6&collectorId=%d" % self.a.id)
                         ["tasks"][0]["status"], 6)
        self.assertError(self.srv.api("GET", "/admin/tasks/1/events"), 404)


if __name__ == "__main__":
    taprunner.main()

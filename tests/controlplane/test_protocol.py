#!/usr/bin/env python3
"""The collector protocol (docs/protocol.md) as a scripted fake agent sees it: registration,
heartbeats and host facts, commands and their repetition, progress and final reports, incremental
hops, cancellation, long-poll wake-ups, the builds endpoint, many agents at once, and a mixed
fleet (each collector sent the build of its own osArch)."""

import base64
import json
import os
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cptest  # noqa: E402
import taprunner  # noqa: E402

BUILDS = (("20.1-2749", "20.0-0"), ("20.2-100", "20.1-0"), ("21.0-1", "20.2-0"))


class ProtocolTest(cptest.ServerTestCase):
    builds = BUILDS
    # Long holds so that a missing wake-up shows as a client timeout, never as a slow pass.
    server_args = ("--heartbeat-interval", "120s")

    def agent(self, **kw):
        a = self.srv.agent(**kw)
        a.register()
        return a

    # -- registration

    def test_register(self):
        a = self.srv.agent()
        r = self.srv.api("POST", "/collector/register", a.register_body())
        self.assertEqual(r.status, 200, r)
        body = r.json
        self.assertIsInstance(body["collectorId"], int)
        self.assertGreaterEqual(len(body["token"]), 32)
        self.assertEqual(body["heartbeatIntervalMs"], 120000)
        self.assertEqual(body["name"], a.name)
        c = self.srv.collector(body["collectorId"])
        self.assertEqual((c["name"], c["hostName"], c["collectorVersion"], c["alive"]),
                         (a.name, a.name + ".example.com", "20.1-2749", True))

    def test_register_errors(self):
        a = self.srv.agent()
        r = self.srv.api("POST", "/collector/register", a.register_body(),
                         auth=self.srv.basic(access_key="nope"))
        self.assertError(r, 401, "credentials.invalid")
        r = self.srv.api("POST", "/collector/register", a.register_body(), auth=None)
        self.assertError(r, 401, "credentials.invalid")
        cases = [({"machineId": None}, "machineId"), ({"machineId": 5}, "machineId"),
                 ({"collectorVersion": None}, "collectorVersion"),
                 ({"collectorVersion": "../x"}, "collectorVersion"),
                 ({"ephemeral": "no"}, "ephemeral"), ({"osTime": "long"}, "osTime"),
                 ({"name": None, "hostName": None}, "name"), ({"fields": [1]}, "fields")]
        for change, field in cases:
            with self.subTest(change=change):
                body = a.register_body()
                for k, v in change.items():
                    if v is None:
                        body.pop(k)
                    else:
                        body[k] = v
                err = self.assertError(self.srv.api("POST", "/collector/register", body), 400,
                                       "request.invalid")
                self.assertIn(field, err["message"])
        self.assertError(self.srv.api("POST", "/collector/register", [1, 2]), 400)

    def test_register_again_same_host(self):
        a = self.agent()
        old_id, old_token = a.id, a.token
        a.register()
        self.assertEqual(a.id, old_id, "same machine id and name: same collector")
        self.assertNotEqual(a.token, old_token)
        self.assertError(a.heartbeat(token=old_token), 401, "token.invalid")
        self.assertEqual(a.heartbeat().status, 200)

    def test_register_clone_is_a_new_collector(self):
        a = self.agent()
        clone = self.srv.agent(name=a.name)  # same name, another machine id
        body = clone.register()
        self.assertNotEqual(clone.id, a.id)
        self.assertNotEqual(body["name"], a.name, "names stay unique")
        self.assertTrue(body["name"].startswith(a.name))
        self.assertEqual(a.heartbeat().status, 200, "the parent keeps working")
        clone.register()
        self.assertEqual(clone.register()["collectorId"], clone.id,
                         "the clone registering again gets its own collector back")

    def test_name_defaults_to_host_name(self):
        a = self.srv.agent()
        body = a.register_body()
        del body["name"]
        r = self.srv.api("POST", "/collector/register", body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["name"], a.name + ".example.com")

    # -- heartbeat

    def test_heartbeat_reply_and_facts(self):
        a = self.agent()
        before = self.srv.collector(a.id)["lastSeenAlive"]
        a.version = "20.2-100"
        r = a.heartbeat()
        self.assertEqual(r.status, 200)
        reply = r.json
        self.assertEqual(reply["heartbeatIntervalMs"], 120000)
        self.assertIs(reply["longPoll"], True)
        self.assertIsInstance(reply["serverTime"], int)
        self.assertIsNone(reply["command"])
        c = self.srv.collector(a.id)
        self.assertEqual(c["collectorVersion"], "20.2-100")
        self.assertGreaterEqual(c["lastSeenAlive"], before)
        self.assertGreater(c["osTime"], 0)
        self.assertEqual((c["osName"], c["osVersion"], c["osArch"], c["timeZone"]),
                         ("Linux", "6.1.0-18-amd64", "amd64", "UTC"))

    def test_heartbeat_errors(self):
        a = self.agent()
        self.assertError(a.heartbeat(token="x" * 40), 401, "token.invalid")
        r = self.srv.api("POST", "/collector/heartbeat", {"collectorVersion": "1.0"}, auth=None)
        self.assertError(r, 401, "token.invalid")
        auth = "Bearer " + a.token
        r = self.srv.api("POST", "/collector/heartbeat", b"not json", auth=auth,
                         headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "request.invalid")
        for bad in ({"collectorVersion": 5}, {"collectorVersion": "1.0", "osTime": "x"},
                    {"collectorVersion": "1.0", "task": {"taskId": "1", "status": 4}},
                    {"collectorVersion": "1.0", "task": "busy"}, {}):
            with self.subTest(body=bad):
                r = self.srv.api("POST", "/collector/heartbeat", bad, auth=auth)
                self.assertError(r, 400, "request.invalid")
        self.assertError(self.srv.api("POST", "/collector/heartbeat?waitMs=x", a.facts(),
                                      auth=auth), 400)

    def test_keep_alive_connection(self):
        a = self.agent()
        conn = self.srv.connect()
        try:
            for _ in range(5):
                r = a.heartbeat(conn=conn)
                self.assertEqual(r.status, 200)
        finally:
            conn.close()

    # -- commands and reports

    def test_upgrade_flow(self):
        """1 on delivery, repeated until progress, 6 with stages, then 2, all recorded in order"""
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        cmd = a.beat()
        self.assertEqual(cmd["type"], "upgrade")
        self.assertEqual((cmd["taskId"], cmd["toVersion"]), (tid, "20.2-100"))
        t = self.srv.task(tid)
        self.assertEqual(t["status"], 1)
        self.assertEqual(cmd["requestTime"], t["requestTime"])
        self.assertEqual(cmd["expiresAt"], t["requestTime"] + 30 * 60 * 1000)
        b = cmd["build"]
        made = self.build_files["20.2-100"]
        self.assertEqual(b["version"], "20.2-100")
        self.assertEqual(b["url"], self.srv.url + "/builds/" + made["package"])
        self.assertEqual((b["size"], b["sha256"]), (made["size"], made["sha256"]))
        self.assertEqual(base64.b64decode(b["statement"]), made["statement"])
        self.assertEqual(base64.b64decode(b["signature"]), made["signature"])
        self.assertEqual(a.beat(), cmd, "repeated on every heartbeat until progress")
        stages = ["accepted", "preflight", "downloading", "downloading", "verifying", "staging",
                  "switching", "restarting", "health-check", "committed"]
        for i, stage in enumerate(stages):
            rep = a.progress(tid, stage, "20.2-100", bytesDone=i * 10, bytesTotal=100)
            if stage == "restarting":
                a.version = "20.2-100"
            self.assertIsNone(a.beat(rep), stage)
            self.assertEqual(self.srv.task(tid)["status"], 6)
        prog = self.srv.task(tid)["progress"]
        self.assertEqual((prog["stage"], prog["stageIndex"], prog["stageCount"]),
                         ("committed", 9, 9))
        final = a.progress(tid, "committed", "20.2-100", status=2)
        r = a.report(final)
        self.assertEqual((r.status, r.json), (200, {"accepted": True, "taskStatus": 2}))
        r = a.report(final)
        self.assertEqual((r.status, r.json["taskStatus"]), (200, 2), "a repeat is idempotent")
        t = self.srv.task(tid)
        self.assertEqual((t["status"], t["message"]), (2, ""))
        self.assertIsNone(a.beat())
        ev = self.srv.events(tid)
        self.assertEqual([(e["source"], e["what"], e["status"]) for e in ev[:2]],
                         [("server", "created", 0), ("server", "delivered", 1)])
        agent_stages = [e["stage"] for e in ev if e["source"] == "agent" and e["status"] == 6]
        self.assertEqual(agent_stages, [s for i, s in enumerate(stages)
                                        if i == 0 or stages[i - 1] != s],
                         "every stage once, in order (repeats are folded)")
        self.assertEqual(sum(1 for e in ev if e.get("stage") == "switching"), 1)
        self.assertEqual(ev[-1]["status"], 2)
        dl = [e for e in ev if e.get("stage") == "downloading"][0]
        self.assertEqual((dl["repeats"], dl["bytesDone"]), (2, 30))

    def test_progress_through_reports_endpoint(self):
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        r = a.report(a.progress(tid, "downloading", "20.2-100"))
        self.assertEqual((r.status, r.json), (200, {"accepted": True, "taskStatus": 6}))
        self.assertIsNone(a.beat(), "progress stops the repetition of the command")
        r = a.report(a.progress(tid, "verifying", "20.2-100", status=3,
                                message="verifying: signature: no trusted key"))
        self.assertEqual((r.status, r.json["taskStatus"]), (200, 3))
        t = self.srv.task(tid)
        self.assertEqual((t["status"], t["message"]), (3, "verifying: signature: no trusted key"))

    def test_late_heartbeat_does_not_go_back(self):
        """a heartbeat built before a later stage was posted arrives after it: the later stands"""
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        self.assertIsNone(a.beat(a.progress(tid, "accepted", "20.2-100")))
        r = a.report(a.progress(tid, "preflight", "20.2-100"))
        self.assertEqual((r.status, r.json), (200, {"accepted": True, "taskStatus": 6}))
        self.assertIsNone(a.beat(a.progress(tid, "accepted", "20.2-100")))
        self.assertEqual(self.srv.task(tid)["progress"]["stage"], "preflight")
        stages = [e["stage"] for e in self.srv.events(tid) if e["source"] == "agent"]
        self.assertEqual(stages, ["accepted", "preflight"])
        self.assertIsNone(a.beat(a.progress(tid, "downloading", "20.2-100")))
        self.assertEqual(self.srv.task(tid)["progress"]["stage"], "downloading")

    def test_report_answers(self):
        a = self.agent()
        other = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        self.assertError(a.report(a.progress(999999, "accepted", "20.2-100", status=2)), 404,
                         "task.unknown")
        self.assertError(other.report(other.progress(tid, "accepted", "20.2-100")), 404,
                         "task.unknown")
        self.assertError(a.report({"taskId": tid, "status": 7}), 400)
        self.assertError(a.report({"taskId": "12a", "status": 2}), 400)
        self.assertError(a.report(a.progress(tid, "x", "20.2-100"), token="y" * 40), 401)
        a.beat()
        a.report(a.progress(tid, "accepted", "20.2-100", status=3, message="accepted: disk full"))
        err = self.assertError(a.report(a.progress(tid, "committed", "20.2-100", status=2)),
                               409, "task.closed")
        self.assertEqual(err["message"], "task %s already failed: accepted: disk full" % tid)
        r = a.report(a.progress(tid, "accepted", "20.2-100", status=3, message="again"))
        self.assertEqual((r.status, r.json["taskStatus"]), (200, 3), "same final: idempotent")

    def _committed_task(self, a):
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        a.version = "20.2-100"
        a.report(a.progress(tid, "committed", "20.2-100", status=2))
        return tid

    def test_event_after_commit(self):
        """rolled-back-after-commit: kept among the closed task's events, once per rollback"""
        a = self.agent()
        tid = self._committed_task(a)
        ev = {"taskId": str(tid), "type": "rolled-back-after-commit", "fromVersion": "20.2-100",
              "toVersion": "20.1-2749", "at": 1700000000000,
              "reason": "watch: 20.2-100 started 3 times within 10 min of its commit"}
        r = a.event(ev)
        self.assertEqual((r.status, r.json), (200, {"taskId": str(tid), "recorded": True}))
        r = a.event(ev)
        self.assertEqual((r.status, r.json["recorded"]), (200, False), "a resend is folded")
        t = self.srv.task(tid)
        self.assertEqual(t["status"], 2, "the task stays 2")
        got = [e for e in self.srv.events(tid) if e["what"] == "rolled-back-after-commit"]
        self.assertEqual(len(got), 1, got)
        e = got[0]
        self.assertEqual((e["source"], e["via"], e["fromVersion"], e["toVersion"], e["at"],
                          e["message"], e["repeats"]),
                         ("collector", "events", "20.2-100", "20.1-2749", 1700000000000,
                          ev["reason"], 2))
        r = a.event(dict(ev, at=1700000000001))
        self.assertEqual(r.json["recorded"], True, "another rollback (another at) is another event")

    def test_event_errors(self):
        """a bad event is refused with the field named, and nothing is stored"""
        a = self.agent()
        other = self.agent()
        tid = self._committed_task(a)
        good = {"taskId": str(tid), "type": "rolled-back-after-commit",
                "fromVersion": "20.2-100", "toVersion": "20.1-2749", "reason": "watch: x",
                "at": 5}
        cases = [({"type": "rolled-back"}, "event.type"), ({"type": None}, "event.type"),
                 ({"taskId": "12a"}, "event.taskId"), ({"taskId": 12}, "event.taskId"),
                 ({"taskId": "1" * 19}, "event.taskId"),
                 ({"fromVersion": "../x"}, "fromVersion"), ({"toVersion": None}, "toVersion"),
                 ({"toVersion": "20.2-100"}, "must differ"),
                 ({"reason": "r" * 513}, "reason"), ({"reason": 5}, "reason"),
                 ({"reason": "a\nb"}, "control characters"), ({"reason": None}, "reason"),
                 ({"at": -1}, "event.at"), ({"at": "now"}, "event.at"), ({"at": 2 ** 60}, "at"),
                 ({"extra": 1}, "event.extra")]
        for change, field in cases:
            with self.subTest(change=change):
                body = dict(good)
                for k, v in change.items():
                    if v is None:
                        body.pop(k)
                    else:
                        body[k] = v
                err = self.assertError(a.event(body), 400, "request.invalid")
                self.assertIn(field, err["message"])
        self.assertError(a.event([good]), 400, "request.invalid")
        self.assertError(a.event(dict(good, taskId="999999")), 404, "task.unknown")
        self.assertError(other.event(good), 404, "task.unknown")
        self.assertError(a.event(good, token="y" * 40), 401)
        self.assertEqual([e for e in self.srv.events(tid) if e["source"] == "collector"], [],
                         "nothing stored")

    def test_refused_command(self):
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        msg = "another task is in progress: 12344"
        r = a.report(a.progress(tid, "accepted", "20.2-100", status=3, message=msg))
        self.assertEqual(r.status, 200)
        self.assertEqual((self.srv.task(tid)["status"], self.srv.task(tid)["message"]), (3, msg))

    def test_version_already_running(self):
        a = self.agent(version="20.2-100")
        tid = self.srv.create_task(a.id, "20.2-100")
        cmd = a.beat()
        self.assertEqual(cmd["build"]["version"], "20.2-100")
        r = a.report(a.progress(tid, "accepted", "20.2-100", status=2))
        self.assertEqual(r.json["taskStatus"], 2)

    def test_incremental_hops(self):
        """one task, one hop per command, 6 between hops, 2 at the target"""
        a = self.agent()
        tid = self.srv.create_task(a.id, "21.0-1")
        cmd = a.beat()
        self.assertEqual((cmd["toVersion"], cmd["build"]["version"]), ("21.0-1", "20.2-100"))
        a.beat(a.progress(tid, "accepted", "20.2-100"))
        a.version = "20.2-100"
        r = a.report(a.progress(tid, "committed", "20.2-100", status=2))
        self.assertEqual(r.json, {"accepted": True, "taskStatus": 6})
        self.assertEqual(self.srv.task(tid)["status"], 6)
        cmd2 = a.beat()
        self.assertEqual((cmd2["taskId"], cmd2["build"]["version"]), (tid, "21.0-1"))
        r = a.report(a.progress(tid, "committed", "20.2-100", status=2))
        self.assertEqual(r.json["taskStatus"], 6, "a repeated report of the first hop is harmless")
        self.assertEqual(a.beat(), cmd2)
        a.beat(a.progress(tid, "downloading", "21.0-1"))
        a.version = "21.0-1"
        r = a.report(a.progress(tid, "committed", "21.0-1", status=2))
        self.assertEqual(r.json["taskStatus"], 2)
        ev = self.srv.events(tid)
        self.assertEqual([e["buildVersion"] for e in ev
                          if e["what"] in ("delivered", "command")], ["20.2-100", "21.0-1"])
        self.assertEqual(self.srv.task(tid)["progress"]["hopsDone"], ["20.2-100"])
        self.assertEqual(self.srv.collector(a.id)["collectorVersion"], "21.0-1")

    def test_hop_ends_with_committed_progress(self):
        """molt's agent ends an intermediate hop as 6 'committed' from the hop's version"""
        a = self.agent()
        tid = self.srv.create_task(a.id, "21.0-1")
        self.assertEqual(a.beat()["build"]["version"], "20.2-100")
        a.beat(a.progress(tid, "switching", "20.2-100"))
        a.version = "20.2-100"
        done = a.progress(tid, "committed", "20.2-100")
        cmd = a.beat(done)
        self.assertEqual((cmd["taskId"], cmd["build"]["version"]), (tid, "21.0-1"),
                         "the same reply carries the next hop")
        r = a.report(done)
        self.assertEqual(r.json, {"accepted": True, "taskStatus": 6}, "a repeat changes nothing")
        self.assertEqual(self.srv.task(tid)["progress"]["hopsDone"], ["20.2-100"])
        a.beat(a.progress(tid, "accepted", "21.0-1"))
        a.version = "21.0-1"
        self.assertIsNone(a.beat(a.progress(tid, "committed", "21.0-1")),
                          "at the target, committed progress is just progress")
        self.assertEqual(self.srv.task(tid)["status"], 6)
        self.assertEqual(a.report(a.progress(tid, "committed", "21.0-1", status=2)).json,
                         {"accepted": True, "taskStatus": 2})
        switches = {e["buildVersion"] for e in self.srv.events(tid) if e.get("stage") == "switching"}
        self.assertEqual(switches, {"20.2-100"})

    def test_lost_final_report(self):
        """the target running, the task no longer mentioned: the task succeeded"""
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        a.beat(a.progress(tid, "switching", "20.2-100"))
        a.version = "20.2-100"
        a.beat(a.progress(tid, "health-check", "20.2-100"))
        self.assertEqual(self.srv.task(tid)["status"], 6, "still in its trial")
        a.beat(None)
        self.assertEqual(self.srv.task(tid)["status"], 2)

    def test_cancel_is_delivered(self):
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        rep = a.progress(tid, "downloading", "20.2-100")
        self.assertIsNone(a.beat(rep))
        self.assertEqual(self.srv.api("DELETE", "/collectors/upgrades/" + tid).status, 200)
        cmd = a.beat(rep)
        self.assertEqual(cmd, {"type": "cancel", "taskId": tid})
        self.assertEqual(a.beat(rep), cmd, "repeated while the agent reports progress")
        r = a.report(a.progress(tid, "downloading", "20.2-100", status=3, message="cancelled"))
        self.assertEqual((r.status, r.json["taskStatus"]), (200, 3))
        self.assertIsNone(a.beat(None))
        self.assertEqual(self.srv.task(tid)["message"], "cancelled")
        whats = [e["what"] for e in self.srv.events(tid) if e["source"] == "server"]
        self.assertEqual(whats, ["created", "delivered", "cancelled", "cancel-sent"])

    def test_cancel_before_delivery_sends_nothing(self):
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        self.srv.api("DELETE", "/collectors/upgrades/" + tid)
        self.assertIsNone(a.beat())

    def test_deleting_collector_fails_its_task(self):
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        self.srv.api("DELETE", "/collectors/%d" % a.id)
        t = self.srv.task(tid)
        self.assertEqual((t["status"], t["message"]), (3, "collector deleted"))

    # -- long-poll

    def _long_poll(self, a, task=None, wait_ms=120000):
        out = {}

        def run():
            try:
                out["reply"] = a.heartbeat(task, wait_ms=wait_ms, timeout=30)
            except Exception as e:  # reported by the test below
                out["error"] = e

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, out

    def _waiting(self, n):
        self.srv.wait_for("%d long-poll(s) waiting" % n,
                          lambda: self.srv.admin("GET", "/stats")["longPollsWaiting"] >= n)

    def test_long_poll_wakes_on_task(self):
        a = self.agent()
        t, out = self._long_poll(a)
        self._waiting(1)
        tid = self.srv.create_task(a.id, "20.2-100")
        t.join(30)
        self.assertNotIn("error", out, "the held heartbeat was not woken (client timed out)")
        cmd = out["reply"].json["command"]
        self.assertEqual((cmd["type"], cmd["taskId"]), ("upgrade", tid))
        self.assertEqual(self.srv.task(tid)["status"], 1)

    def test_long_poll_wakes_on_cancel(self):
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        rep = a.progress(tid, "downloading", "20.2-100")
        t, out = self._long_poll(a, rep)
        self._waiting(1)
        self.srv.api("DELETE", "/collectors/upgrades/" + tid)
        t.join(30)
        self.assertNotIn("error", out)
        self.assertEqual(out["reply"].json["command"], {"type": "cancel", "taskId": tid})

    def test_repeats_come_at_the_end_of_the_hold(self):
        """a command already sent is repeated when the hold ends, so an agent cannot spin"""
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        t, out = self._long_poll(a)  # held up to 120 s, the client gives up after 30
        t.join(30)
        self.assertNotIn("error", out)
        cmd = out["reply"].json["command"]
        self.assertEqual(cmd["taskId"], tid, "the first delivery is immediate")
        t0 = time.monotonic()
        self.assertEqual(a.beat(wait_ms=400), cmd)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4, "held: a lower bound, never flaky")
        self.assertEqual(a.beat(), cmd, "without long-poll, at once")
        rep = a.progress(tid, "switching", "20.2-100")
        self.assertIsNone(a.beat(rep))
        self.srv.api("DELETE", "/collectors/upgrades/" + tid)
        t, out = self._long_poll(a, rep)
        t.join(30)
        self.assertEqual(out["reply"].json["command"]["type"], "cancel", "first cancel: at once")
        t0 = time.monotonic()
        self.assertEqual(a.beat(rep, wait_ms=300)["type"], "cancel")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        sends = [e for e in self.srv.events(tid) if e["what"] in ("delivered", "cancel-sent")]
        self.assertEqual(len(sends), 2, "each recorded once")

    def test_long_poll_ends_empty(self):
        a = self.agent()
        r = a.heartbeat(wait_ms=50, timeout=30)
        self.assertEqual((r.status, r.json["command"]), (200, None))

    def test_long_poll_wakes_only_its_collector(self):
        a, b = self.agent(), self.agent()
        ta, outa = self._long_poll(a, wait_ms=1500)
        tb, outb = self._long_poll(b)
        self._waiting(2)
        tid = self.srv.create_task(b.id, "20.2-100")
        tb.join(30)
        self.assertEqual(outb["reply"].json["command"]["taskId"], tid)
        ta.join(30)
        self.assertIsNone(outa["reply"].json["command"])

    # -- builds endpoint

    def test_builds_endpoint(self):
        a = self.agent()
        auth = "Bearer " + a.token
        r = self.srv.api("GET", "/collector/builds/21.0-1?os=linux&arch=amd64", auth=auth)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["version"], "21.0-1")
        self.assertEqual(base64.b64decode(r.json["statement"]),
                         self.build_files["21.0-1"]["statement"])
        r = self.srv.api("GET", "/collector/builds/21.0-1", auth=auth)
        self.assertEqual(r.status, 200, "os and arch default to the collector's")
        self.assertError(self.srv.api("GET", "/collector/builds/21.0-1?arch=aarch64", auth=auth),
                         404, "build.unknown")
        self.assertError(self.srv.api("GET", "/collector/builds/9.9-9", auth=auth), 404,
                         "build.unknown")
        self.assertError(self.srv.api("GET", "/collector/builds/21.0-1"), 401)

    # -- the release channel (docs/security.md 6.5): served as on disk, announced, reported

    def test_channel_served_announced_and_reported(self):
        a = self.agent()
        auth = "Bearer " + a.token
        self.assertNotIn("channelSerial", a.heartbeat().json, "no channel: nothing announced")
        self.assertError(self.srv.api("GET", "/collector/channel?name=stable", auth=auth), 404,
                         "channel.unknown")
        doc = b'{"name":"stable","serial":7}\n'
        sig = b"molt-sig-1 not checked by the server\n"
        for name, data in (("stable.channel.json.sig", sig), ("stable.channel.json", doc)):
            path = os.path.join(self.srv.builds, name)
            with open(path, "wb") as f:
                f.write(data)
            self.addCleanup(os.remove, path)   # the server is shared with the other tests
        r = self.srv.api("GET", "/collector/channel?name=stable", auth=auth)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((base64.b64decode(r.json["channel"]), base64.b64decode(r.json["signature"]),
                          r.json["serial"]), (doc, sig, 7), "served exactly as on disk")
        self.assertError(self.srv.api("GET", "/collector/channel?name=beta", auth=auth), 404)
        self.assertError(self.srv.api("GET", "/collector/channel?name=../x", auth=auth), 404)
        self.assertError(self.srv.api("GET", "/collector/channel"), 401)
        body = dict(a.facts(), channelName="stable", channelSerial=6, channelAgeMs=-5,
                    channelState="expired")
        r = self.srv.api("POST", "/collector/heartbeat", body, auth=auth)
        self.assertEqual(r.json["channelSerial"], 7, "the newest serial is announced")
        self.assertEqual(self.srv.collector(a.id)["releaseChannel"],
                         {"name": "stable", "serial": 6, "ageMs": -5, "state": "expired"},
                         "the management API shows what the host holds")
        body = dict(body, channelName="beta")
        self.assertNotIn("channelSerial", self.srv.api("POST", "/collector/heartbeat", body,
                                                       auth=auth).json)
        for bad in ({"channelState": "fine"}, {"channelSerial": -1}, {"channelName": 5},
                    {"channelAgeMs": "old"}):
            with self.subTest(body=bad):
                r = self.srv.api("POST", "/collector/heartbeat", dict(a.facts(), **bad), auth=auth)
                self.assertError(r, 400, "request.invalid")

    def test_keyring_served_and_announced(self):
        a = self.agent()
        auth = "Bearer " + a.token
        self.assertNotIn("keyringSerial", a.heartbeat().json, "no keyring: nothing announced")
        self.assertError(self.srv.api("GET", "/collector/keyring", auth=auth), 404,
                         "keyring.unknown")
        doc = b'{"format":"molt-keyring-1","name":"release","serial":3}\n'
        sig = b"molt-sig-1 not checked by the server\n"
        for name, data in (("release.keyring.json.sig", sig), ("release.keyring.json", doc)):
            with open(os.path.join(self.srv.builds, name), "wb") as f:
                f.write(data)
            self.addCleanup(os.remove, os.path.join(self.srv.builds, name))
        r = self.srv.api("GET", "/collector/keyring", auth=auth)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((base64.b64decode(r.json["keyring"]), base64.b64decode(r.json["signature"]),
                          r.json["serial"]), (doc, sig, 3), "served exactly as on disk")
        self.assertEqual(a.heartbeat().json["keyringSerial"], 3, "the newest serial is announced")
        self.assertError(self.srv.api("GET", "/collector/keyring"), 401)
        body = dict(a.facts(), channelName="stable", channelSerial=6, channelAgeMs=5,
                    channelState="ok", keyringSerial=2)
        self.assertEqual(self.srv.api("POST", "/collector/heartbeat", body, auth=auth).status, 200)
        self.assertEqual(self.srv.collector(a.id)["releaseChannel"]["keyringSerial"], 2,
                         "the management API shows the keyring each host holds")
        for bad in (-1, "2", 2.5):
            with self.subTest(keyringSerial=bad):
                r = self.srv.api("POST", "/collector/heartbeat", dict(body, keyringSerial=bad),
                                 auth=auth)
                self.assertError(r, 400, "request.invalid")

    def test_rollout_decides_what_is_offered(self):
        """A build is offered only to hosts the channel's rollout admits ("force" is for tests
        of the agent's own check); the bucket is docs/security.md 6.4's."""
        import cp_channel
        a = self.agent()
        a.heartbeat()
        mid = a.register_body()["machineId"]
        pct = cp_channel.bucket(mid, "20.2-100") // 100   # just outside: bucket >= pct * 100

        def publish(percent):
            doc = {"name": "stable", "serial": 3, "builds": [
                {"version": "20.2-100", "os": "linux", "arch": "amd64",
                 "rollout": {"percent": percent, "notBefore": 0}}]}
            for name, data in (("stable.channel.json.sig", b"x\n"),
                               ("stable.channel.json", json.dumps(doc).encode())):
                path = os.path.join(self.srv.builds, name)
                with open(path, "wb") as f:
                    f.write(data)
                self.addCleanup(lambda p=path: os.path.exists(p) and os.remove(p))

        publish(pct)
        body = {"collectorId": a.id, "toVersion": "20.2-100"}
        self.assertError(self.srv.api("POST", "/collectors/upgrades", body), 400,
                         "collector.rollout.excluded")
        self.assertError(self.srv.api("POST", "/collectors/upgrades",
                                      {"collectorId": a.id, "toVersion": "21.0-1"}), 400,
                         "collector.rollout.excluded")
        r = self.srv.api("POST", "/collectors/upgrades", dict(body, force=True))
        self.assertEqual(r.status, 202, r)
        self.srv.api("DELETE", "/collectors/upgrades/" + r.json["id"])
        time.sleep(0.01)
        publish(pct + 1)
        self.assertEqual(self.srv.api("POST", "/collectors/upgrades", body).status, 202,
                         "widened to include the host's bucket")

    # -- many agents

    def test_many_agents_long_polling(self):
        """100 agents long-poll at once; a task for each reaches each"""
        n = 100
        agents = [self.srv.agent() for _ in range(n)]
        errors = []

        def reg(a):
            try:
                a.register()
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=reg, args=(a,)) for a in agents]
        [t.start() for t in threads]
        [t.join(60) for t in threads]
        self.assertEqual(errors, [])
        polls = [self._long_poll(a) for a in agents]
        self._waiting(n)
        tids = {a.id: self.srv.create_task(a.id, "20.2-100") for a in agents}
        for (t, out), a in zip(polls, agents):
            t.join(30)
            self.assertNotIn("error", out)
            cmd = out["reply"].json["command"]
            self.assertEqual(cmd["taskId"], tids[a.id])


class NoLongPollTest(cptest.ServerTestCase):
    builds = BUILDS
    server_args = ("--no-long-poll", "--heartbeat-interval", "2s")

    def test_replies_at_once(self):
        a = self.srv.agent()
        self.assertEqual(a.register()["heartbeatIntervalMs"], 2000)
        r = a.heartbeat(wait_ms=600000, timeout=20)
        self.assertEqual(r.status, 200)
        self.assertIs(r.json["longPoll"], False)
        self.assertEqual(r.json["heartbeatIntervalMs"], 2000)


class MixedFleetTest(cptest.ServerTestCase):
    """A version released once per arch, as a mixed fleet is released (README: one package,
    statement and signature per arch, the same version): each collector is sent the build of its
    own osArch, and a version with no build for a collector's arch is not offered to it."""
    builds = (("20.1-2749", ""),)

    def test_each_arch_gets_its_own_build(self):
        made = {arch: cptest.make_build(self.srv.builds, "20.2-100", arch=arch)
                for arch in ("amd64", "aarch64")}
        arm_only = cptest.make_build(self.srv.builds, "20.3-1", arch="aarch64")
        for arch in ("amd64", "aarch64"):
            with self.subTest(osArch=arch):
                a = self.srv.agent(arch=arch)
                a.register()
                self.srv.create_task(a.id, "20.2-100")
                build = a.beat()["build"]
                self.assertEqual((build["sha256"], build["size"]),
                                 (made[arch]["sha256"], made[arch]["size"]))
                self.assertTrue(build["url"].endswith("/" + made[arch]["package"]), build["url"])
        amd, arm = self.srv.agent(), self.srv.agent(arch="aarch64")
        amd.register()
        arm.register()
        r = self.srv.api("POST", "/collectors/upgrades",
                         {"collectorId": amd.id, "toVersion": "20.3-1"})
        self.assertError(r, 400, "collector.version.invalid")
        r = self.srv.api("GET", "/collector/builds/20.3-1", auth="Bearer " + amd.token)
        self.assertError(r, 404, "build.unknown")
        self.srv.create_task(arm.id, "20.3-1")
        self.assertEqual(arm.beat()["build"]["sha256"], arm_only["sha256"])


if __name__ == "__main__":
    taprunner.main()

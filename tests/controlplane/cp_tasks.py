"""Upgrade tasks in the store: creation and cancellation, timeouts, the event log, and the rules
of docs/protocol.md that reports and heartbeats drive (statuses, hops, commands, long-poll).
A mixin of cp_store.Store (its db, lock, transactions and wake-ups).
"""

import json
import time

import cp_builds
import cp_version
from cp_common import ApiError, bad_request, log
from cp_input import opt_int, opt_mirrors, parse_event, parse_facts, parse_report

ACTIVE = (0, 1, 6)
FIRST_TASK_ID = 12345
MAX_EVENTS_PER_TASK = 5000
STAGES = ("accepted", "preflight", "downloading", "verifying", "staging", "switching", "restarting",
          "health-check", "committed")


def human_duration(ms):
    """'30 minutes', '1 second', '1.5 seconds': the task timeout as the message states it."""

    def unit(n, word):
        return "%s %s%s" % (n, word, "" if n == 1 else "s")
    if ms >= 3600000 and ms % 3600000 == 0:
        return unit(ms // 3600000, "hour")
    if ms >= 60000 and ms % 60000 == 0:
        return unit(ms // 60000, "minute")
    if ms % 1000 == 0:
        return unit(ms // 1000, "second")
    return "%s seconds" % ("%.3f" % (ms / 1000.0)).rstrip("0").rstrip(".")


class Tasks:
    """Upgrade tasks, their events and the protocol rules; a mixin of cp_store.Store."""

    def _event(self, task_id, source, via, what="", status=None, r=None, message=None,
               build_version=None, dedupe=False):
        now = self.clock.now()
        r = r or {}
        vals = (status if status is not None else r.get("status"), r.get("stage"),
                r.get("stageIndex"), r.get("stageCount"), r.get("bytesDone"),
                r.get("bytesTotal"), r.get("version"),
                build_version if build_version is not None else r.get("buildVersion"),
                message if message is not None else r.get("message"))
        if dedupe:
            last = self.db.execute("SELECT * FROM events WHERE task_id=? ORDER BY id DESC LIMIT 1",
                                   (task_id,)).fetchone()
            if (last is not None and last["source"] == source and last["status"] == vals[0]
                    and last["stage"] == vals[1] and last["build_version"] == vals[7]
                    and last["message"] == vals[8] and last["version"] == vals[6]):
                self.db.execute("UPDATE events SET repeats=repeats+1, bytes_done=?, bytes_total=?, "
                                "time=? WHERE id=?", (vals[4], vals[5], now, last["id"]))
                return
        n = self.db.execute("SELECT COUNT(*) FROM events WHERE task_id=?", (task_id,)).fetchone()[0]
        if n >= MAX_EVENTS_PER_TASK:
            return
        self.db.execute("INSERT INTO events(task_id, time, source, via, what, status, stage, "
                        "stage_index, stage_count, bytes_done, bytes_total, version, "
                        "build_version, message) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (task_id, now, source, via, what) + vals)

    def _finish(self, tid, status, message, now, via):
        row = self.db.execute("SELECT collector_id, status FROM tasks WHERE id=?", (tid,)).fetchone()
        self.db.execute("UPDATE tasks SET status=?, message=?, finished=?, updated=? WHERE id=?",
                        (status, message, now, now, tid))
        what = {2: "succeeded", 3: "failed"}[status]
        if message in ("cancelled",) or message.startswith("timed out"):
            what = "cancelled" if message == "cancelled" else "timed-out"
        self._event(tid, "server", via, what, status=status, message=message)
        log("task." + what, id=tid, collector=row["collector_id"], message=repr(message))
        self.notify(row["collector_id"])

    def expire_tasks(self):
        """Fail every open task older than the task timeout (the documents' 30 minutes)."""
        with self.tx() as db:
            now = self.clock.now()
            rows = db.execute("SELECT id FROM tasks WHERE status IN (0,1,6) AND request_time<=?",
                              (now - self.cfg.task_timeout_ms,)).fetchall()
            msg = "timed out after " + human_duration(self.cfg.task_timeout_ms)
            for r in rows:
                self._finish(r["id"], 3, msg, now, "timeout")
        return len(rows)

    def _task(self, tid):
        return self.db.execute("SELECT * FROM tasks WHERE id=?", (tid,)).fetchone()

    def task_json(self, t):
        last = json.loads(t["last_report"]) if t["last_report"] else {}
        out = {
            "id": t["id"],
            "collectorId": t["collector_id"],
            "toVersion": t["to_version"],
            "requestTime": t["request_time"],
            "requestedTime": t["request_time"],
            "status": t["status"],
            "message": t["message"],
            "progress": {
                "fromVersion": t["from_version"],
                "buildVersion": t["hop"],
                "hopsDone": json.loads(t["hops_done"]),
                "stage": last.get("stage"),
                "stageIndex": last.get("stageIndex"),
                "stageCount": last.get("stageCount"),
                "bytesDone": last.get("bytesDone"),
                "bytesTotal": last.get("bytesTotal"),
                "updated": t["updated"],
            },
        }
        if t["max_rate"] is not None:
            out["maxBytesPerSecond"] = t["max_rate"]
        if t["mirrors"]:
            out["mirrors"] = json.loads(t["mirrors"])
        if last.get("servedBy"):
            out["progress"]["servedBy"] = last["servedBy"]
        return out

    def get_task(self, tid):
        self.expire_tasks()
        with self.lock:
            t = self._task(tid)
            if t is None:
                raise ApiError(404, "task.unknown", "The upgrade task ID was not found.")
            return self.task_json(t)

    def list_tasks(self, collector_id=None, status=None):
        self.expire_tasks()
        q, args = "SELECT * FROM tasks WHERE 1", []
        if collector_id is not None:
            q += " AND collector_id=?"
            args.append(collector_id)
        if status is not None:
            q += " AND status=?"
            args.append(status)
        with self.lock:
            return [self.task_json(t) for t in self.db.execute(q + " ORDER BY id", args)]

    def task_events(self, tid):
        with self.lock:
            if self._task(tid) is None:
                raise ApiError(404, "task.unknown", "The upgrade task ID was not found.")
            out = []
            for e in self.db.execute("SELECT * FROM events WHERE task_id=? ORDER BY id", (tid,)):
                d = {"seq": e["id"], "time": e["time"], "source": e["source"], "via": e["via"],
                     "what": e["what"], "status": e["status"], "repeats": e["repeats"]}
                for k, col in (("stage", "stage"), ("stageIndex", "stage_index"),
                               ("stageCount", "stage_count"), ("bytesDone", "bytes_done"),
                               ("bytesTotal", "bytes_total"), ("version", "version"),
                               ("buildVersion", "build_version"), ("message", "message"),
                               ("fromVersion", "from_version"), ("toVersion", "to_version"),
                               ("at", "at")):
                    if e[col] is not None:
                        d[k] = e[col]
                out.append(d)
            return out

    def _upgradable(self, row, target, now):
        if row["collector_type"] != "Installable" or not self.alive(row, now):
            return False
        if cp_version.equal(row["collector_version"], target):
            return False
        if self.db.execute("SELECT 1 FROM tasks WHERE collector_id=? AND status IN (0,1,6)",
                           (row["id"],)).fetchone():
            return False
        return self.builds.path_to(row["collector_version"], target, row["os_name"] or "linux",
                                   row["os_arch"] or "") is not None

    def _target(self, to_version):
        if to_version is None:
            latest = self.builds.latest()
            if latest is None:
                raise ApiError(400, "collector.version.invalid", "No build is available.")
            return latest
        if not isinstance(to_version, str) or not cp_version.valid(to_version):
            raise ApiError(400, "collector.version.invalid",
                           "The upgrade version is not valid: %r." % (to_version,))
        for v in self.builds.versions():
            if cp_version.equal(v, to_version):
                return v
        raise ApiError(400, "collector.version.invalid",
                       "There is no build of version %s." % to_version)

    def upgradable(self, to_version, limit, offset):
        self.expire_tasks()
        with self.lock:
            target = self._target(to_version)
            now = self.clock.now()
            rows = self.db.execute("SELECT * FROM collectors WHERE collector_type='Installable' "
                                   "ORDER BY id").fetchall()
            ok = [r for r in rows if self._upgradable(r, target, now)]
            return [self.collector_json(r, now) for r in ok[offset:offset + limit]]

    def create_task(self, body, offered=None):
        """A task for body's collector; offered(collector_row, version, os, arch) says whether the
        release channel offers that build to that host (the agent checks it again)."""
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        cid = body.get("collectorId")
        if isinstance(cid, str) and cid.isdigit():
            cid = int(cid)
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise ApiError(400, "collector.invalid", "The Collector ID was not provided.")
        # Passed through as the command's maxBytesPerSecond: the agent checks its range and
        # takes the lower of it and its own download_max_rate.
        rate = opt_int(body, "maxBytesPerSecond", minimum=1)
        # Each hop's build names the package on every mirror (downloadUrls), before our own URL.
        mirrors = opt_mirrors(body)
        self.expire_tasks()
        with self.tx() as db:
            now = self.clock.now()
            c = self._collector(cid)
            if c is None:
                raise ApiError(400, "collector.invalid", "Collector %d does not exist." % cid)
            if c["collector_type"] != "Installable":
                raise ApiError(400, "collector.type.invalid",
                               "Collector %d is not an Installed Collector." % cid)
            if not self.alive(c, now):
                raise ApiError(400, "collector.not.alive", "Collector %d is not running." % cid)
            busy = db.execute("SELECT id FROM tasks WHERE collector_id=? AND status IN (0,1,6)",
                              (cid,)).fetchone()
            if busy:
                raise ApiError(400, "collector.in.upgrading", "Collector %d is currently being "
                               "upgraded (task %d)." % (cid, busy["id"]))
            target = self._target(body.get("toVersion"))
            os_name = cp_builds.norm_os(c["os_name"] or "linux")
            arch = cp_builds.norm_arch(c["os_arch"] or "")
            if self.builds.find(target, os_name, arch) is None:
                raise ApiError(400, "collector.version.invalid", "There is no build of %s for "
                               "%s/%s." % (target, os_name, arch or "unknown arch"))
            if self.builds.path_to(c["collector_version"], target, os_name, arch) is None:
                raise ApiError(400, "collector.version.invalid", "No build sequence leads from "
                               "%s to %s." % (c["collector_version"], target))
            # "force": a molt extension for tests of the agent's own channel checks.
            if offered and body.get("force") is not True and \
                    not offered(c, target, os_name, arch):
                raise ApiError(400, "collector.rollout.excluded", "The release channel does not "
                               "offer %s to collector %d (not listed for %s/%s, or its rollout "
                               "does not include this host yet)." % (target, cid, os_name, arch))
            tid = self._next_id("tasks", FIRST_TASK_ID)
            db.execute("INSERT INTO tasks(id, collector_id, to_version, from_version, os, arch, "
                       "request_time, status, updated, max_rate, mirrors) "
                       "VALUES(?,?,?,?,?,?,?,0,?,?,?)",
                       (tid, cid, target, c["collector_version"], os_name, arch, now, now, rate,
                        json.dumps(mirrors) if mirrors else None))
            self._event(tid, "server", "api", "created", status=0, build_version=target)
        log("task.created", id=tid, collector=cid, toVersion=target)
        self.notify(cid)
        return tid

    def cancel_task(self, tid):
        self.expire_tasks()
        with self.tx():
            t = self._task(tid)
            if t is None:
                raise ApiError(404, "task.unknown", "The upgrade task ID was not found.")
            if t["status"] not in ACTIVE:
                raise ApiError(409, "task.closed", self._closed_message(t))
            self._finish(tid, 3, "cancelled", self.clock.now(), "api")
            return self.task_json(self._task(tid))

    @staticmethod

    def _closed_message(t):
        if t["status"] == 2:
            return "task %d already succeeded" % t["id"]
        return "task %d already failed: %s" % (t["id"], t["message"] or "failed")

    # -- the collector protocol

    def _apply_report(self, c, r, via, now):
        """Record report r from collector row c; returns (http status, body) for /reports."""
        t = self._task(int(r["taskId"]))
        if t is None or t["collector_id"] != c["id"]:
            return 404, {"code": "task.unknown", "message": "task %s is unknown" % r["taskId"]}
        tid = t["id"]
        if self._behind(t, r):
            # protocol.md: a heartbeat's report was taken before it was sent and may arrive
            # after a later stage's report posted on another connection; the furthest stands.
            return 200, {"accepted": True, "taskStatus": t["status"]}
        self._event(tid, "agent", via, "report", r=r, dedupe=True)
        if r.get("version") and r["status"] in (2, 3):
            self.db.execute("UPDATE collectors SET collector_version=? WHERE id=?",
                            (r["version"], c["id"]))
        if t["status"] not in ACTIVE:
            if r["status"] == t["status"]:
                return 200, {"accepted": True, "taskStatus": t["status"]}
            return 409, {"code": "task.closed", "message": self._closed_message(t)}
        done = json.loads(t["hops_done"])
        stale = (r["buildVersion"] is not None and t["hop"] is not None
                 and not cp_version.equal(r["buildVersion"], t["hop"])
                 and any(cp_version.equal(r["buildVersion"], h) for h in done))
        self.db.execute("UPDATE tasks SET last_report=?, updated=? WHERE id=?",
                        (json.dumps(r), now, tid))
        if stale:
            return 200, {"accepted": True, "taskStatus": t["status"]}
        if r["status"] == 6 and r.get("stage") == "committed" and t["hop"] is not None and \
                t["hop_state"] != "done" and not cp_version.equal(t["hop"], t["to_version"]) and \
                cp_version.equal(r["version"] or "", t["hop"]):
            # protocol.md: an intermediate hop may also end as progress "committed" from the
            # hop's version (molt's agent does so); the task stays 6 and the next heartbeat
            # reply carries the next hop.
            self._hop_done(t, t["hop"], via)
            return 200, {"accepted": True, "taskStatus": 6}
        if r["status"] == 6:
            if r["buildVersion"] is None or t["hop"] is None or \
                    cp_version.equal(r["buildVersion"], t["hop"]):
                self.db.execute("UPDATE tasks SET status=6, hop_state='progress' WHERE id=?",
                                (tid,))
            else:
                self.db.execute("UPDATE tasks SET status=6 WHERE id=?", (tid,))
            return 200, {"accepted": True, "taskStatus": 6}
        if r["status"] == 3:
            self._finish(tid, 3, r["message"] or "failed", now, via)
            return 200, {"accepted": True, "taskStatus": 3}
        running = r["version"] or r["buildVersion"]
        if cp_version.equal(running, t["to_version"]):
            self._finish(tid, 2, r["message"] if r["message"] else "", now, via)
            return 200, {"accepted": True, "taskStatus": 2}
        if t["hop"] is not None and t["hop_state"] != "done" and (
                cp_version.equal(running, t["hop"]) or cp_version.equal(r["buildVersion"], t["hop"])):
            self._hop_done(t, running or t["hop"], via)
        return 200, {"accepted": True, "taskStatus": 6}

    @staticmethod
    def _behind(t, r):
        """Progress of the hop last reported, at an earlier stage than that report."""
        last = json.loads(t["last_report"]) if t["last_report"] else {}
        return (t["status"] == 6 and r["status"] == 6 and last.get("status") == 6
                and r["buildVersion"] is not None and last.get("buildVersion") is not None
                and cp_version.equal(r["buildVersion"], last["buildVersion"])
                and (r.get("stageIndex") or 0) < (last.get("stageIndex") or 0))

    def _hop_done(self, t, running, via):
        done = json.loads(t["hops_done"]) + [t["hop"]]
        self.db.execute("UPDATE tasks SET status=6, hop_state='done', hops_done=? WHERE id=?",
                        (json.dumps(done), t["id"]))
        self.db.execute("UPDATE collectors SET collector_version=? WHERE id=?",
                        (running, t["collector_id"]))
        self._event(t["id"], "server", via, "hop-done", status=6, build_version=t["hop"])
        log("task.hop", id=t["id"], hop=t["hop"], toVersion=t["to_version"])
        self.notify(t["collector_id"])

    def _infer_from_version(self, c, r):
        """A final report may be lost: the version now running after a hop tells the outcome."""
        t = self.db.execute("SELECT * FROM tasks WHERE collector_id=? AND status IN (0,1,6)",
                            (c["id"],)).fetchone()
        if t is None or t["hop_state"] != "progress" or (r is not None and int(r["taskId"]) == t["id"]):
            return
        if not cp_version.equal(c["collector_version"], t["hop"]):
            return
        if cp_version.equal(t["hop"], t["to_version"]):
            self._finish(t["id"], 2, "", self.clock.now(), "heartbeat")
        else:
            self._hop_done(t, t["hop"], "heartbeat")

    def _command(self, cid, r, base_url, deliver):
        """(command, repeat) for the reply to a heartbeat that carried report r.

        `repeat` is true when an earlier reply already carried this command. With `deliver`, the
        delivery is recorded (status 0 -> 1, events, counters); without, nothing but the choice of
        the next hop is written, so a held long-poll can look again and again.
        """
        if r is not None and r["status"] == 6:
            t = self._task(int(r["taskId"]))
            if t is not None and t["collector_id"] == cid and t["status"] == 3:
                if deliver:
                    if t["cancels"] == 0:
                        self._event(t["id"], "server", "heartbeat", "cancel-sent", status=3)
                    self.db.execute("UPDATE tasks SET cancels=cancels+1 WHERE id=?", (t["id"],))
                return {"type": "cancel", "taskId": str(t["id"])}, t["cancels"] > 0
        t = self.db.execute("SELECT * FROM tasks WHERE collector_id=? AND status IN (0,1,6)",
                            (cid,)).fetchone()
        if t is None:
            return None, False
        c = self._collector(cid)
        now = self.clock.now()
        new_hop = False
        if t["hop"] is None or t["hop_state"] == "done":
            b = self.builds.next_hop(c["collector_version"], t["to_version"], t["os"], t["arch"])
            if b is None:
                self._finish(t["id"], 3, "no build of %s can be applied to %s" % (
                    t["to_version"], c["collector_version"]), now, "heartbeat")
                return None, False
            self.db.execute("UPDATE tasks SET hop=?, hop_state='pending', sends=0 WHERE id=?",
                            (b.version, t["id"]))
            t = self._task(t["id"])
            new_hop = True
        if t["hop_state"] != "pending":
            return None, False
        b = self.builds.find(t["hop"], t["os"], t["arch"])
        if b is None:
            self._finish(t["id"], 3, "build %s is no longer available" % t["hop"], now, "heartbeat")
            return None, False
        repeat = t["sends"] > 0
        if deliver:
            if t["status"] == 0:
                self.db.execute("UPDATE tasks SET status=1, updated=? WHERE id=?", (now, t["id"]))
                self._event(t["id"], "server", "heartbeat", "delivered", status=1,
                            build_version=b.version)
                log("task.delivered", id=t["id"], collector=cid, build=b.version)
            elif not repeat and (new_hop or t["hops_done"] != "[]"):
                self._event(t["id"], "server", "heartbeat", "command", status=t["status"],
                            build_version=b.version)
                log("task.command", id=t["id"], collector=cid, build=b.version)
            self.db.execute("UPDATE tasks SET sends=sends+1 WHERE id=?", (t["id"],))
        cmd = {
            "type": "upgrade",
            "taskId": str(t["id"]),
            "toVersion": t["to_version"],
            "requestTime": t["request_time"],
            "expiresAt": t["request_time"] + self.cfg.task_timeout_ms,
            "build": b.command_object(base_url, json.loads(t["mirrors"] or "null")),
        }
        delta = self.builds.delta_for(c["collector_version"], b, base_url)
        if delta is not None:
            cmd["build"]["delta"] = delta
        if t["max_rate"] is not None:
            cmd["maxBytesPerSecond"] = t["max_rate"]
        return cmd, repeat

    def heartbeat(self, cid, body, wait_ms, base_url):
        """Handle a heartbeat of collector cid; may hold it open up to wait_ms (long-poll).

        A new command is answered at once. A command the agent has already been sent and has not
        acknowledged (it reports no progress on it) is repeated only at the end of the hold, so an
        agent that cannot act on it at once does not spin.
        """
        facts = parse_facts(body, registering=False)
        r = body.get("task")
        if r is not None:
            r = parse_report(r, "task")
        self.expire_tasks()
        deadline = time.monotonic() + wait_ms / 1000.0
        with self.lock:
            with self.tx() as db:
                now = self.clock.now()
                c = self._collector(cid)
                if c is None:
                    raise ApiError(401, "token.invalid", "collector token not recognised")
                db.execute("UPDATE collectors SET collector_version=?, os_name=COALESCE(?, os_name),"
                           " os_version=COALESCE(?, os_version), os_arch=COALESCE(?, os_arch), "
                           "os_time=COALESCE(?, os_time), uptime_ms=COALESCE(?, uptime_ms), "
                           "host_name=COALESCE(?, host_name), time_zone=COALESCE(?, time_zone), "
                           "channel_name=?, channel_serial=?, channel_age_ms=?, channel_state=?, "
                           "keyring_serial=?, last_seen_alive=? WHERE id=?",
                           (facts["collector_version"], facts["os_name"], facts["os_version"],
                            facts["os_arch"], facts["os_time"], facts["uptime_ms"],
                            facts["host_name"], facts["time_zone"], facts["channel_name"],
                            facts["channel_serial"], facts["channel_age_ms"],
                            facts["channel_state"], facts["keyring_serial"], now, cid))
                c = self._collector(cid)
                self._log_beat(cid, now, facts, r)
                if r is not None:
                    self._apply_report(c, r, "heartbeat", now)
                self._infer_from_version(c, r)
                cmd, repeat = self._command(cid, r, base_url, deliver=False)
            if (cmd is None or repeat) and wait_ms > 0:
                cond = self._cond(cid)
                self.long_polls += 1
                try:
                    while not self.stopping:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        cond.wait(remaining)
                        if self.stopping:
                            break
                        with self.tx():
                            if self._collector(cid) is None:
                                break
                            cmd, repeat = self._command(cid, r, base_url, deliver=False)
                        if cmd is not None and not repeat:
                            break
                finally:
                    self.long_polls -= 1
            with self.tx():
                cmd = None
                if self._collector(cid) is not None:
                    cmd, _ = self._command(cid, r, base_url, deliver=True)
        return {"heartbeatIntervalMs": self.cfg.heartbeat_interval_ms,
                "longPoll": self.cfg.long_poll, "serverTime": self.clock.now(), "command": cmd}

    def report(self, cid, body):
        r = parse_report(body)
        self.expire_tasks()
        with self.tx():
            c = self._collector(cid)
            if c is None:
                raise ApiError(401, "token.invalid", "collector token not recognised")
            status, out = self._apply_report(c, r, "reports", self.clock.now())
        if status != 200:
            raise ApiError(status, out["code"], out["message"])
        return out

    def collector_event(self, cid, body):
        """An event (docs/protocol.md section 4) for one of this collector's tasks. Stored once: a
        repeat (same task, type and at: the agent resends until it has a 200) only counts in
        repeats. A closed task takes it (that is what it is for)."""
        e = parse_event(body)
        with self.tx() as db:
            if self._collector(cid) is None:
                raise ApiError(401, "token.invalid", "collector token not recognised")
            t = self._task(int(e["taskId"]))
            if t is None or t["collector_id"] != cid:
                raise ApiError(404, "task.unknown", "The upgrade task ID was not found.")
            tid = t["id"]
            same = db.execute("SELECT id FROM events WHERE task_id=? AND source='collector' AND "
                              "via='events' AND what=? AND at=?",
                              (tid, e["type"], e["at"])).fetchone()
            if same is not None:
                db.execute("UPDATE events SET repeats=repeats+1 WHERE id=?", (same["id"],))
                return {"taskId": e["taskId"], "recorded": False}
            n = db.execute("SELECT COUNT(*) FROM events WHERE task_id=?", (tid,)).fetchone()[0]
            if n >= MAX_EVENTS_PER_TASK:
                raise ApiError(409, "task.events_full", "the task has too many events")
            db.execute("INSERT INTO events(task_id, time, source, via, what, version, message, "
                       "from_version, to_version, at) VALUES(?,?,?,?,?,?,?,?,?,?)",
                       (tid, self.clock.now(), "collector", "events", e["type"], e["toVersion"],
                        e["reason"], e["fromVersion"], e["toVersion"], e["at"]))
            log("task." + e["type"], id=tid, collector=cid, reason=repr(e["reason"]))
        return {"taskId": e["taskId"], "recorded": True}

"""State of the reference control plane: collectors, upgrade tasks and their events, in SQLite.

One connection guarded by one re-entrant lock: every operation is short, so a single writer is both
simple and fast enough for hundreds of agents, and it lets long-polling heartbeats wait on condition
variables bound to that same lock (one per collector) without missing a wake-up. WAL mode with
synchronous=NORMAL survives a killed process: a restart loses nothing that was acknowledged.

This module holds the rules of docs/protocol.md (task statuses, hops, commands, reports); server.py
only speaks HTTP.
"""

import collections
import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import string
import sys
import threading
import time

import cp_builds
import cp_version

ACTIVE = (0, 1, 6)
FIRST_COLLECTOR_ID = 100000001
FIRST_TASK_ID = 12345
MAX_EVENTS_PER_TASK = 5000
HEARTBEAT_LOG = 1000  # heartbeats remembered per collector (in memory) for the admin API
_BEAT_FIELDS = ("time", "monotonicMs", "version", "osTime", "taskId", "status", "stage")
STAGES = ("accepted", "preflight", "downloading", "verifying", "staging", "switching", "restarting",
          "health-check", "committed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS collectors(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  reg_name TEXT,
  machine_id TEXT,
  collector_type TEXT NOT NULL,
  token_hash TEXT UNIQUE,
  ephemeral INTEGER NOT NULL DEFAULT 0,
  category TEXT, description TEXT, fields TEXT, host_name TEXT, time_zone TEXT,
  source_sync_mode TEXT NOT NULL DEFAULT 'UI', target_cpu INTEGER, cutoff_timestamp INTEGER,
  collector_version TEXT NOT NULL DEFAULT '', os_name TEXT, os_version TEXT, os_arch TEXT,
  os_time INTEGER, uptime_ms INTEGER, last_seen_alive INTEGER, created INTEGER NOT NULL,
  rev INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS collectors_machine ON collectors(machine_id, reg_name);
CREATE TABLE IF NOT EXISTS tasks(
  id INTEGER PRIMARY KEY,
  collector_id INTEGER NOT NULL,
  to_version TEXT NOT NULL,
  from_version TEXT NOT NULL DEFAULT '',
  os TEXT NOT NULL, arch TEXT NOT NULL,
  request_time INTEGER NOT NULL,
  status INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  hop TEXT, hop_state TEXT, hops_done TEXT NOT NULL DEFAULT '[]',
  sends INTEGER NOT NULL DEFAULT 0, cancels INTEGER NOT NULL DEFAULT 0,
  last_report TEXT, updated INTEGER, finished INTEGER);
CREATE INDEX IF NOT EXISTS tasks_collector ON tasks(collector_id, status);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(status, request_time);
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL,
  time INTEGER NOT NULL, source TEXT NOT NULL, via TEXT NOT NULL, what TEXT NOT NULL DEFAULT '',
  status INTEGER, stage TEXT, stage_index INTEGER, stage_count INTEGER,
  bytes_done INTEGER, bytes_total INTEGER, version TEXT, build_version TEXT, message TEXT,
  repeats INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS events_task ON events(task_id, id);
CREATE TABLE IF NOT EXISTS id_counters(
  name TEXT PRIMARY KEY,
  last INTEGER NOT NULL);
"""


class ApiError(Exception):
    """An error answered with the legacy body {"status", "id", "code", "message"}."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message, code="request.invalid"):
    return ApiError(400, code, message)


def log(event, **kv):
    parts = ["cp: " + event] + ["%s=%s" % (k, v) for k, v in kv.items()]
    print(" ".join(parts), file=sys.stderr, flush=True)


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


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Config:
    def __init__(self, heartbeat_interval_ms=15000, alive_timeout_ms=1800000,
                 task_timeout_ms=1800000, ephemeral_timeout_ms=43200000, long_poll=True,
                 long_poll_max_ms=None):
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.alive_timeout_ms = alive_timeout_ms
        self.task_timeout_ms = task_timeout_ms
        self.ephemeral_timeout_ms = ephemeral_timeout_ms
        self.long_poll = long_poll
        self.long_poll_max_ms = long_poll_max_ms or heartbeat_interval_ms

    def as_json(self):
        return {"heartbeatIntervalMs": self.heartbeat_interval_ms,
                "aliveTimeoutMs": self.alive_timeout_ms, "taskTimeoutMs": self.task_timeout_ms,
                "ephemeralTimeoutMs": self.ephemeral_timeout_ms, "longPoll": self.long_poll,
                "longPollMaxMs": self.long_poll_max_ms}


class Clock:
    """Wall clock in ms, shiftable through the admin API so tests can jump over 30 minutes."""

    def __init__(self):
        self.offset_ms = 0

    def now(self):
        return int(time.time() * 1000) + self.offset_ms


# ---------------------------------------------------------------- input validation

def _opt_str(obj, key, maxlen=256, required=False):
    v = obj.get(key)
    if v is None:
        if required:
            raise bad_request("%s is required" % key)
        return None
    if not isinstance(v, str):
        raise bad_request("%s must be a string" % key)
    if len(v) > maxlen:
        raise bad_request("%s is longer than %d characters" % (key, maxlen))
    return v


def _opt_int(obj, key, minimum=0, required=False):
    v = obj.get(key)
    if v is None:
        if required:
            raise bad_request("%s is required" % key)
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad_request("%s must be an integer" % key)
    if v < minimum or v > 2 ** 63 - 1:
        raise bad_request("%s is out of range" % key)
    return v


def _opt_bool(obj, key):
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise bad_request("%s must be true or false" % key)
    return v


def _opt_fields(obj, key="fields"):
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, dict) or len(v) > 64:
        raise bad_request("%s must be an object of at most 64 strings" % key)
    for k, x in v.items():
        if not isinstance(x, str) or len(k) > 255 or len(x) > 255:
            raise bad_request("%s.%s must be a string of at most 255 characters" % (key, k))
    return v


def _version(obj, key, required=False):
    v = _opt_str(obj, key, 64, required)
    if v is not None and not cp_version.valid(v):
        raise bad_request("%s is not a valid version: %r" % (key, v))
    return v


def parse_report(r, where="report"):
    """Validate a task report (docs/protocol.md, section 4)."""
    if not isinstance(r, dict):
        raise bad_request("%s must be a JSON object" % where)
    tid = r.get("taskId")
    if isinstance(tid, int) and not isinstance(tid, bool) and tid > 0:
        tid = str(tid)
    if not isinstance(tid, str) or not tid.isdigit() or not 0 < len(tid) <= 18:
        raise bad_request("%s.taskId must be a string of digits" % where)
    status = r.get("status")
    if status not in (2, 3, 6) or isinstance(status, bool):
        raise bad_request("%s.status must be 2, 3 or 6" % where)
    try:
        out = {
            "taskId": tid, "status": status,
            "stage": _opt_str(r, "stage", 64),
            "stageIndex": _opt_int(r, "stageIndex"),
            "stageCount": _opt_int(r, "stageCount"),
            "bytesDone": _opt_int(r, "bytesDone"),
            "bytesTotal": _opt_int(r, "bytesTotal"),
            "version": _version(r, "version"),
            "buildVersion": _version(r, "buildVersion"),
        }
    except ApiError as e:
        raise bad_request("%s.%s" % (where, e.message))
    msg = r.get("message")
    if msg is not None and not isinstance(msg, str):
        raise bad_request("%s.message must be a string" % where)
    out["message"] = (msg or "")[:4096]
    return out


def parse_facts(body, registering):
    """Host facts of a registration or heartbeat body."""
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    f = {
        "collector_version": _version(body, "collectorVersion", required=True),
        "os_name": _opt_str(body, "osName"),
        "os_version": _opt_str(body, "osVersion"),
        "os_arch": _opt_str(body, "osArch", 64),
        "os_time": _opt_int(body, "osTime"),
        "uptime_ms": _opt_int(body, "uptimeMs"),
        "host_name": _opt_str(body, "hostName", 128),
        "time_zone": _opt_str(body, "timeZone", 64),
    }
    if registering:
        f["machine_id"] = _opt_str(body, "machineId", 128, required=True)
        if not f["machine_id"].strip():
            raise bad_request("machineId must not be empty")
        name = _opt_str(body, "name", 128) or f["host_name"]
        if not name or not name.strip():
            raise bad_request("name (or hostName) is required")
        f["name"] = name
        f["ephemeral"] = _opt_bool(body, "ephemeral") or False
        f["category"] = _opt_str(body, "category", 1024)
        f["description"] = _opt_str(body, "description", 1024)
        f["fields"] = _opt_fields(body)
    return f


# ---------------------------------------------------------------- the store

class Store:
    def __init__(self, data_dir, builds, cfg, clock):
        self.builds = builds
        self.cfg = cfg
        self.clock = clock
        self.lock = threading.RLock()
        self._conds = {}
        self._beats = {}
        self.stopping = False
        self.long_polls = 0
        path = os.path.join(data_dir, "controlplane.sqlite3")
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                  timeout=10)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self):
        with self.lock:
            self.db.close()

    @contextlib.contextmanager
    def tx(self):
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # -- wake-ups for long-polls

    def _cond(self, cid):
        c = self._conds.get(cid)
        if c is None:
            c = self._conds[cid] = threading.Condition(self.lock)
        return c

    def notify(self, cid):
        with self.lock:
            c = self._conds.get(cid)
            if c is not None:
                c.notify_all()

    def stop(self):
        with self.lock:
            self.stopping = True
            for c in self._conds.values():
                c.notify_all()

    # -- collectors

    def _collector(self, cid):
        return self.db.execute("SELECT * FROM collectors WHERE id=?", (cid,)).fetchone()

    def alive(self, row, now):
        if row["collector_type"] != "Installable":
            return True
        last = row["last_seen_alive"]
        return last is not None and now - last < self.cfg.alive_timeout_ms

    @staticmethod
    def etag(row):
        cfg = [row["id"], row["rev"], row["name"], row["time_zone"], row["ephemeral"],
               row["source_sync_mode"], row["category"], row["description"], row["fields"],
               row["host_name"], row["target_cpu"], row["cutoff_timestamp"]]
        return '"%s"' % hashlib.md5(json.dumps(cfg).encode()).hexdigest()

    def collector_json(self, row, now):
        cid = row["id"]
        d = {
            "id": cid,
            "name": row["name"],
            "timeZone": row["time_zone"] or "UTC",
            "fields": json.loads(row["fields"]) if row["fields"] else {},
            "links": [{"rel": "sources", "href": "/v1/collectors/%d/sources" % cid}],
            "ephemeral": bool(row["ephemeral"]),
            "sourceSyncMode": row["source_sync_mode"],
            "collectorType": row["collector_type"],
            "collectorVersion": row["collector_version"],
            "hostName": row["host_name"],
            "category": row["category"],
            "description": row["description"],
            "cutoffTimestamp": row["cutoff_timestamp"] or 0,
            "lastSeenAlive": row["last_seen_alive"],
            "alive": self.alive(row, now),
        }
        if row["target_cpu"] is not None:
            d["targetCpu"] = row["target_cpu"]
        if row["collector_type"] == "Installable":
            d.update({"osName": row["os_name"], "osVersion": row["os_version"],
                      "osArch": row["os_arch"], "osTime": row["os_time"]})
        return d

    def _unique_name(self, wanted):
        name, n = wanted, 1
        while self.db.execute("SELECT 1 FROM collectors WHERE name=?", (name,)).fetchone():
            n += 1
            name = "%s-%d" % (wanted[:120], n)
        return name

    def _next_id(self, table, first):
        """Ids are never handed out twice, not even after a delete: a deleted
        collector's id must not come to name another one."""
        top = self.db.execute("SELECT MAX(id) FROM %s" % table).fetchone()[0] or 0
        row = self.db.execute("SELECT last FROM id_counters WHERE name=?", (table,)).fetchone()
        nid = max(top, row[0] if row else 0, first - 1) + 1
        self.db.execute("INSERT INTO id_counters(name, last) VALUES(?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET last=excluded.last", (table, nid))
        return nid

    def by_token(self, token):
        if not token:
            return None
        with self.lock:
            return self.db.execute("SELECT * FROM collectors WHERE token_hash=?",
                                   (token_hash(token),)).fetchone()

    def register(self, body):
        f = parse_facts(body, registering=True)
        token = "molt_" + secrets.token_urlsafe(36)
        th = token_hash(token)
        with self.tx() as db:
            now = self.clock.now()
            row = db.execute("SELECT * FROM collectors WHERE machine_id=? AND reg_name=? AND "
                             "collector_type='Installable'", (f["machine_id"], f["name"])).fetchone()
            facts = (f["collector_version"], f["os_name"], f["os_version"], f["os_arch"],
                     f["os_time"], f["uptime_ms"], f["host_name"], f["time_zone"] or "UTC", now)
            if row:
                cid, name = row["id"], row["name"]
                db.execute("UPDATE collectors SET token_hash=?, collector_version=?, os_name=?, "
                           "os_version=?, os_arch=?, os_time=?, uptime_ms=?, host_name=?, "
                           "time_zone=?, last_seen_alive=? WHERE id=?", (th,) + facts + (cid,))
                what = "collector.reregistered"
            else:
                cid = self._next_id("collectors", FIRST_COLLECTOR_ID)
                name = self._unique_name(f["name"])
                db.execute("INSERT INTO collectors(id, name, reg_name, machine_id, collector_type, "
                           "token_hash, ephemeral, category, description, fields, "
                           "collector_version, os_name, os_version, os_arch, os_time, uptime_ms, "
                           "host_name, time_zone, last_seen_alive, created) "
                           "VALUES(?,?,?,?,'Installable',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           (cid, name, f["name"], f["machine_id"], th, int(f["ephemeral"]),
                            f["category"], f["description"],
                            json.dumps(f["fields"]) if f["fields"] is not None else None)
                           + facts + (now,))
                what = "collector.registered"
        log(what, id=cid, name=name, version=f["collector_version"])
        return {"collectorId": cid, "token": token, "name": name,
                "heartbeatIntervalMs": self.cfg.heartbeat_interval_ms}

    def revoke_token(self, cid):
        with self.tx() as db:
            n = db.execute("UPDATE collectors SET token_hash=NULL WHERE id=?", (cid,)).rowcount
        return n > 0

    def list_collectors(self, flt, limit, offset):
        now = self.clock.now()
        alive_after = now - self.cfg.alive_timeout_ms
        where = {
            None: ("1", ()),
            "installed": ("collector_type='Installable'", ()),
            "hosted": ("collector_type='Hosted'", ()),
            "alive": ("(collector_type<>'Installable' OR last_seen_alive>?)", (alive_after,)),
            "dead": ("(collector_type='Installable' AND (last_seen_alive IS NULL OR "
                     "last_seen_alive<=?))", (alive_after,)),
        }[flt]
        with self.lock:
            rows = self.db.execute("SELECT * FROM collectors WHERE %s ORDER BY id LIMIT ? OFFSET ?"
                                   % where[0], where[1] + (limit, offset)).fetchall()
            return [self.collector_json(r, now) for r in rows]

    def offline(self, days, limit, offset):
        now = self.clock.now()
        before = min(now - days * 86400000, now - self.cfg.alive_timeout_ms)
        with self.lock:
            rows = self.db.execute("SELECT * FROM collectors WHERE collector_type='Installable' "
                                   "AND (last_seen_alive IS NULL OR last_seen_alive<=?) "
                                   "ORDER BY id LIMIT ? OFFSET ?", (before, limit, offset)).fetchall()
            return [self.collector_json(r, now) for r in rows]

    def delete_offline(self, days):
        now = self.clock.now()
        before = min(now - days * 86400000, now - self.cfg.alive_timeout_ms)
        with self.tx() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM collectors WHERE collector_type='Installable' AND "
                "(last_seen_alive IS NULL OR last_seen_alive<=?)", (before,))]
            for cid in ids:
                self._delete(cid, "collector deleted (offline)")
        return len(ids)

    def get_collector(self, cid=None, name=None):
        with self.lock:
            if cid is not None:
                row = self._collector(cid)
            else:
                row = self.db.execute("SELECT * FROM collectors WHERE name=?", (name,)).fetchone()
            if row is None:
                raise ApiError(404, "InvalidCollector", "The specified Collector ID is invalid."
                               if cid is not None else "No collector named %r." % name)
            return self.collector_json(row, self.clock.now()), self.etag(row)

    def _delete(self, cid, why):
        now = self.clock.now()
        for t in self.db.execute("SELECT id FROM tasks WHERE collector_id=? AND status IN (0,1,6)",
                                 (cid,)).fetchall():
            self._finish(t["id"], 3, why, now, "api")
        self.db.execute("DELETE FROM collectors WHERE id=?", (cid,))
        self.notify(cid)
        log("collector.deleted", id=cid, why=why)

    def delete_collector(self, cid):
        with self.tx():
            if self._collector(cid) is None:
                raise ApiError(404, "InvalidCollector", "The specified Collector ID is invalid.")
            self._delete(cid, "collector deleted")

    def create_hosted(self, body):
        c = body.get("collector") if isinstance(body, dict) else None
        if not isinstance(c, dict):
            raise bad_request('the body must be {"collector": {...}}')
        if c.get("collectorType") != "Hosted":
            raise ApiError(400, "InvalidCollectorType", "This method can only be used to create "
                           "Hosted Collectors; installed collectors register themselves.")
        if "id" in c:
            raise ApiError(400, "createValidationError", "The id field must be omitted.")
        vals = self._modifiable(c, None)
        with self.tx() as db:
            self._check_name(vals["name"], None)
            now = self.clock.now()
            cid = self._next_id("collectors", FIRST_COLLECTOR_ID)
            db.execute("INSERT INTO collectors(id, name, collector_type, ephemeral, category, "
                       "description, fields, host_name, time_zone, source_sync_mode, target_cpu, "
                       "cutoff_timestamp, last_seen_alive, created) "
                       "VALUES(?,?,'Hosted',?,?,?,?,?,?,?,?,?,?,?)",
                       (cid, vals["name"], vals["ephemeral"], vals["category"],
                        vals["description"], vals["fields"], vals["host_name"],
                        vals["time_zone"] or "UTC", vals["source_sync_mode"], vals["target_cpu"],
                        vals["cutoff_timestamp"], now, now))
            row = self._collector(cid)
            return self.collector_json(row, now), self.etag(row)

    def _check_name(self, name, cid):
        row = self.db.execute("SELECT id FROM collectors WHERE name=?", (name,)).fetchone()
        if row and row["id"] != cid:
            raise ApiError(400, "DuplicateResourceName",
                           "A resource with the same name already exists.")

    def _modifiable(self, c, row):
        """The modifiable fields of a collector object in a PUT or POST body."""
        name = c.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("collector.name is required")
        if len(name) > 128:
            raise ApiError(400, "CollectorNameTooLong", "Maximum name length is 128 characters.")
        desc = c.get("description")
        if desc is not None and not isinstance(desc, str):
            raise bad_request("collector.description must be a string")
        if desc is not None and len(desc) > 1024:
            raise ApiError(400, "CollectorDescriptionTooLong",
                           "Maximum description length is 1024 characters.")
        eph = c.get("ephemeral")
        if eph is None:
            eph = bool(row["ephemeral"]) if row is not None else False
        if not isinstance(eph, bool):
            raise bad_request("collector.ephemeral must be true or false")
        ssm = c.get("sourceSyncMode", row["source_sync_mode"] if row is not None else "UI")
        if not isinstance(ssm, str) or ssm.lower() not in ("ui", "json"):
            raise bad_request("collector.sourceSyncMode must be UI or Json")
        try:
            fields = _opt_fields(c)
            cat = _opt_str(c, "category", 1024)
            host = _opt_str(c, "hostName", 128)
            tz = _opt_str(c, "timeZone", 64)
            tcpu = c.get("targetCpu")
            if tcpu is not None and (isinstance(tcpu, bool) or not isinstance(tcpu, int)
                                     or not -1 <= tcpu <= 100):
                raise bad_request("targetCpu must be an integer percentage")
            cut = _opt_int(c, "cutoffTimestamp")
        except ApiError as e:
            raise bad_request("collector." + e.message)
        return {
            "name": name, "description": desc, "ephemeral": int(eph),
            "source_sync_mode": "UI" if ssm.lower() == "ui" else "Json",
            "fields": json.dumps(fields) if fields is not None else None, "category": cat,
            "host_name": host if host is not None else (row["host_name"] if row else None),
            "time_zone": tz if tz is not None else (row["time_zone"] if row else None),
            "target_cpu": tcpu, "cutoff_timestamp": cut,
        }

    def update_collector(self, cid, if_match, body):
        with self.tx() as db:
            row = self._collector(cid)
            if row is None:
                raise ApiError(404, "InvalidCollector", "The specified Collector ID is invalid.")
            tag = self.etag(row)
            if not if_match:
                raise ApiError(403, "etag.missing", "Updating a collector requires the If-Match "
                               "header with the ETag of a previous GET.")
            tags = [t.strip() for t in if_match.split(",")]
            if "*" not in tags and tag not in tags and tag not in ["W/" + t for t in tags] \
                    and tag not in [t[2:] for t in tags if t.startswith("W/")]:
                raise ApiError(412, "etag.mismatch", "The collector was modified since that ETag "
                               "was read; GET it again.")
            c = body.get("collector") if isinstance(body, dict) else None
            if not isinstance(c, dict):
                raise bad_request('the body must be {"collector": {...}}')
            if c.get("id") != cid:
                raise ApiError(400, "BadRequestCollectorId",
                               "Request body contains an invalid Collector ID.")
            if "collectorType" in c and c["collectorType"] != row["collector_type"]:
                raise ApiError(400, "InvalidCollectorType",
                               "collectorType is not modifiable.")
            for key, col in (("osName", "os_name"), ("osVersion", "os_version"),
                             ("osArch", "os_arch")):
                if key in c and c[key] != row[col]:
                    raise bad_request("collector.%s is not modifiable" % key)
            vals = self._modifiable(c, row)
            self._check_name(vals["name"], cid)
            db.execute("UPDATE collectors SET name=?, description=?, ephemeral=?, "
                       "source_sync_mode=?, fields=?, category=?, host_name=?, time_zone=?, "
                       "target_cpu=?, cutoff_timestamp=?, rev=rev+1 WHERE id=?",
                       (vals["name"], vals["description"], vals["ephemeral"],
                        vals["source_sync_mode"], vals["fields"], vals["category"],
                        vals["host_name"], vals["time_zone"], vals["target_cpu"],
                        vals["cutoff_timestamp"], cid))
            row = self._collector(cid)
            return self.collector_json(row, self.clock.now()), self.etag(row)

    # -- upgrade tasks

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

    def expire_ephemeral(self):
        with self.tx() as db:
            now = self.clock.now()
            ids = [r[0] for r in db.execute(
                "SELECT id FROM collectors WHERE ephemeral=1 AND collector_type='Installable' AND "
                "last_seen_alive<=?", (now - self.cfg.ephemeral_timeout_ms,))]
            for cid in ids:
                self._delete(cid, "ephemeral collector inactive")
        return len(ids)

    def _task(self, tid):
        return self.db.execute("SELECT * FROM tasks WHERE id=?", (tid,)).fetchone()

    def task_json(self, t):
        last = json.loads(t["last_report"]) if t["last_report"] else {}
        return {
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
                               ("buildVersion", "build_version"), ("message", "message")):
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

    def create_task(self, body):
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        cid = body.get("collectorId")
        if isinstance(cid, str) and cid.isdigit():
            cid = int(cid)
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise ApiError(400, "collector.invalid", "The Collector ID was not provided.")
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
            tid = self._next_id("tasks", FIRST_TASK_ID)
            db.execute("INSERT INTO tasks(id, collector_id, to_version, from_version, os, arch, "
                       "request_time, status, updated) VALUES(?,?,?,?,?,?,?,0,?)",
                       (tid, cid, target, c["collector_version"], os_name, arch, now, now))
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
        return {
            "type": "upgrade",
            "taskId": str(t["id"]),
            "toVersion": t["to_version"],
            "requestTime": t["request_time"],
            "expiresAt": t["request_time"] + self.cfg.task_timeout_ms,
            "build": b.command_object(base_url),
        }, repeat

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
                           "last_seen_alive=? WHERE id=?",
                           (facts["collector_version"], facts["os_name"], facts["os_version"],
                            facts["os_arch"], facts["os_time"], facts["uptime_ms"],
                            facts["host_name"], facts["time_zone"], now, cid))
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

    def _log_beat(self, cid, now, facts, r):
        log = self._beats.get(cid)
        if log is None:
            log = self._beats[cid] = collections.deque(maxlen=HEARTBEAT_LOG)
        # Tuples, not dicts: hundreds of agents times a thousand heartbeats stay small.
        log.append((now, int(time.monotonic() * 1000), facts["collector_version"],
                    facts["os_time"]) + ((r["taskId"], r["status"], r["stage"]) if r else ()))

    def heartbeats(self, cid):
        """The last heartbeats of a collector, oldest first (since this server started)."""
        with self.lock:
            if self._collector(cid) is None:
                raise ApiError(404, "InvalidCollector", "The specified Collector ID is invalid.")
            return [dict(zip(_BEAT_FIELDS, b)) for b in self._beats.get(cid, ())]

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

    def collector_platform(self, cid):
        with self.lock:
            c = self._collector(cid)
            return (c["os_name"] or "linux", c["os_arch"] or "") if c else ("linux", "")

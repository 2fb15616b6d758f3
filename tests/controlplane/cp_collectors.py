"""Collectors in the store: registration and tokens, the management API's collector objects
(list, get, create hosted, update with ETags, delete, offline), ephemeral expiry and the
in-memory heartbeat log. A mixin of cp_store.Store (its db, lock and transactions).
"""

import collections
import hashlib
import json
import secrets
import time

from cp_common import ApiError, bad_request, log
from cp_input import opt_fields, opt_int, opt_str, parse_facts

FIRST_COLLECTOR_ID = 100000001
HEARTBEAT_LOG = 1000  # heartbeats remembered per collector (in memory) for the admin API
_BEAT_FIELDS = ("time", "monotonicMs", "version", "osTime", "taskId", "status", "stage")


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Collectors:
    """Collector rows and tokens; a mixin of cp_store.Store."""

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
            if row["channel_state"] is not None:
                # Freeze-attack detection: hosts whose channel is old, expired or missing.
                d["releaseChannel"] = {"name": row["channel_name"], "serial": row["channel_serial"],
                                       "ageMs": row["channel_age_ms"],
                                       "state": row["channel_state"]}
                if row["keyring_serial"] is not None:
                    # Which hosts took a revocation: the keyring in force on each.
                    d["releaseChannel"]["keyringSerial"] = row["keyring_serial"]
        return d

    def _unique_name(self, wanted):
        name, n = wanted, 1
        while self.db.execute("SELECT 1 FROM collectors WHERE name=?", (name,)).fetchone():
            n += 1
            name = "%s-%d" % (wanted[:120], n)
        return name

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
            fields = opt_fields(c)
            cat = opt_str(c, "category", 1024)
            host = opt_str(c, "hostName", 128)
            tz = opt_str(c, "timeZone", 64)
            tcpu = c.get("targetCpu")
            if tcpu is not None and (isinstance(tcpu, bool) or not isinstance(tcpu, int)
                                     or not -1 <= tcpu <= 100):
                raise bad_request("targetCpu must be an integer percentage")
            cut = opt_int(c, "cutoffTimestamp")
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

    def expire_ephemeral(self):
        with self.tx() as db:
            now = self.clock.now()
            ids = [r[0] for r in db.execute(
                "SELECT id FROM collectors WHERE ephemeral=1 AND collector_type='Installable' AND "
                "last_seen_alive<=?", (now - self.cfg.ephemeral_timeout_ms,))]
            for cid in ids:
                self._delete(cid, "ephemeral collector inactive")
        return len(ids)

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

    def collector_platform(self, cid):
        with self.lock:
            c = self._collector(cid)
            return (c["os_name"] or "linux", c["os_arch"] or "") if c else ("linux", "")

"""State of the reference control plane: collectors, upgrade tasks and their events, in SQLite.

One connection guarded by one re-entrant lock: every operation is short, so a single writer is both
simple and fast enough for hundreds of agents, and it lets long-polling heartbeats wait on condition
variables bound to that same lock (one per collector) without missing a wake-up. WAL mode with
synchronous=NORMAL survives a killed process: a restart loses nothing that was acknowledged.

Store is the database, its lock and transactions and the long-poll wake-ups; what it stores is in
its two mixins: collectors and their tokens (cp_collectors.py), upgrade tasks, their events and the
rules of docs/protocol.md (task statuses, hops, commands, reports; cp_tasks.py). server.py only
speaks HTTP.
"""

import contextlib
import os
import sqlite3
import threading
import time

from cp_collectors import Collectors
from cp_tasks import Tasks

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
  rev INTEGER NOT NULL DEFAULT 1,
  channel_name TEXT, channel_serial INTEGER, channel_age_ms INTEGER, channel_state TEXT,
  keyring_serial INTEGER);
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
  last_report TEXT, updated INTEGER, finished INTEGER,
  max_rate INTEGER, mirrors TEXT);
CREATE INDEX IF NOT EXISTS tasks_collector ON tasks(collector_id, status);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(status, request_time);
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL,
  time INTEGER NOT NULL, source TEXT NOT NULL, via TEXT NOT NULL, what TEXT NOT NULL DEFAULT '',
  status INTEGER, stage TEXT, stage_index INTEGER, stage_count INTEGER,
  bytes_done INTEGER, bytes_total INTEGER, version TEXT, build_version TEXT, message TEXT,
  repeats INTEGER NOT NULL DEFAULT 1,
  from_version TEXT, to_version TEXT, at INTEGER);
CREATE INDEX IF NOT EXISTS events_task ON events(task_id, id);
CREATE TABLE IF NOT EXISTS id_counters(
  name TEXT PRIMARY KEY,
  last INTEGER NOT NULL);
"""


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


# ---------------------------------------------------------------- the store

class Store(Collectors, Tasks):
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

    def _next_id(self, table, first):
        """Ids are never handed out twice, not even after a delete: a deleted
        collector's id must not come to name another one."""
        top = self.db.execute("SELECT MAX(id) FROM %s" % table).fetchone()[0] or 0
        row = self.db.execute("SELECT last FROM id_counters WHERE name=?", (table,)).fetchone()
        nid = max(top, row[0] if row else 0, first - 1) + 1
        self.db.execute("INSERT INTO id_counters(name, last) VALUES(?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET last=excluded.last", (table, nid))
        return nid

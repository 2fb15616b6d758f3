#!/usr/bin/env python3
"""bench.py: the measuring half of molt's benchmarks (bench/run.sh drives the processes).

Talks to the reference control plane over one kept-alive HTTPS connection (admin and management
API), samples /proc of the agent, appends one JSON line per figure to the results file and renders
the table. Standard library only. The control plane comes from the environment that
tests/e2e/lib/cp.sh exports: CP_URL, CP_CA, CP_ACCESS_ID, CP_ACCESS_KEY.

Every loop here is bounded by a deadline or a count: a figure that cannot be measured is recorded
as missing with the reason, it never hangs the run.
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import random
import re
import socket
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------- control plane client

class CP:
    def __init__(self):
        url = urllib.parse.urlsplit(os.environ["CP_URL"])
        self.host, self.port = url.hostname, url.port
        self.ctx = ssl.create_default_context(cafile=os.environ["CP_CA"])
        cred = "%s:%s" % (os.environ["CP_ACCESS_ID"], os.environ["CP_ACCESS_KEY"])
        self.auth = "Basic " + base64.b64encode(cred.encode()).decode()
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                timeout=60)

    def call(self, method, path, body=None):
        """(status, parsed JSON body) of a request under /api/v1; one reconnect on a dropped
        keep-alive connection."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": self.auth, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self._connect()
            try:
                self.conn.request(method, "/api/v1" + path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, None

    def get(self, path):
        status, obj = self.call("GET", path)
        if status != 200:
            raise RuntimeError("GET %s: HTTP %d %s" % (path, status, obj))
        return obj

    def create_task(self, cid, version):
        status, obj = self.call("POST", "/collectors/upgrades",
                                {"collectorId": int(cid), "toVersion": version})
        if status != 202:
            raise RuntimeError("create task for %s: HTTP %d %s" % (cid, status, obj))
        return str(obj["id"])

    def events(self, tid):
        return self.get("/admin/tasks/%s/events" % tid)["events"]

    def task(self, tid):
        return self.get("/collectors/upgrades/%s" % tid)["upgrade"]

    def heartbeats(self, cid):
        return self.get("/admin/collectors/%s/heartbeats" % cid)["heartbeats"]

    def stats(self):
        return self.get("/admin/stats")

    def reset_stats(self):
        status, obj = self.call("DELETE", "/admin/stats")
        if status != 200:
            raise RuntimeError("reset stats: HTTP %d %s" % (status, obj))

    def collector_id(self, name):
        status, obj = self.call("GET", "/collectors/name/%s" % urllib.parse.quote(name))
        return obj["collector"]["id"] if status == 200 else None


def heartbeat_count(stats):
    ep = stats.get("endpoints", {}).get("POST /api/v1/collector/heartbeat", {})
    return ep.get("statuses", {}).get("200", 0)


# ----------------------------------------------------------------- /proc

def proc_status(pid):
    """VmRSS and VmHWM in KiB, or None when the process is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        return None
    return out


def proc_cpu(pid):
    """(utime + stime in µs from /proc/PID/stat, on-CPU ns of all live threads from schedstat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])   # utime, stime (fields 14 and 15)
    ns = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                ns += int(f.read().split()[0])
        except OSError:
            pass
    return ticks * 1000000 // CLK_TCK, ns


def socket_ports(pid, remote_port):
    """Local ports of the process's TCP connections to 127.0.0.1:remote_port."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    try:
        with open("/proc/%d/net/tcp" % pid) as f:
            next(f)
            for line in f:
                p = line.split()
                rport = int(p[2].split(":")[1], 16)
                if p[9] in inodes and rport == remote_port and p[3] == "01":  # ESTABLISHED
                    ports.add(int(p[1].split(":")[1], 16))
    except OSError:
        pass
    return ports


def memory_breakdown(pid):
    """Where the resident pages are: shared library files against the process's own memory."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Clean",
                         "Anonymous"):
                    out[k.lower() + "KiB"] = int(v.split()[0])
        libs = {}
        name = None
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                head = line.split()
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    name = os.path.basename(head[5]) if len(head) > 5 else "[anon]"
                elif head and head[0] == "Rss:" and name:
                    libs[name] = libs.get(name, 0) + int(head[1])
        out["mappedFiles"] = sum(1 for k in libs if ".so" in k)
        out["mappedLibraries"] = sorted(k for k in libs if ".so" in k)
        out["topRssKiB"] = dict(sorted(libs.items(), key=lambda kv: -kv[1])[:12])
    except OSError:
        pass
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ----------------------------------------------------------------- results

def record(path, fig):
    fig.setdefault("loadavg", loadavg())
    with open(path, "a") as f:
        f.write(json.dumps(fig, sort_keys=True) + "\n")


def met(value, op, goal):
    if value is None or goal is None:
        return None
    return value <= goal if op == "<=" else value >= goal if op == ">=" else value == goal


def figure(fid, title, value, unit, goal=None, op="<=", goal_text=None, baseline=None,
           details=None, missing=None):
    return {"id": fid, "figure": title, "value": value, "unit": unit, "goal": goal,
            "op": op, "goalText": goal_text, "baseline": baseline, "met": met(value, op, goal),
            "details": details or {}, "missing": missing}


def median(xs):
    return statistics.median(xs) if xs else None


# ----------------------------------------------------------------- figures

def floor_memory(exe, url, ca):
    """memory_breakdown of bench/curl_floor (libcurl alone) after curl_global_init and after
    one HTTPS request over a connection it keeps, run as `molt-installer launch` runs the agent
    (GNUTLS_NO_IMPLICIT_INIT=1); None and the reason when it could not run."""
    env = dict(os.environ, GNUTLS_NO_IMPLICIT_INIT="1")
    try:
        p = subprocess.Popen([exe, url, ca], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=env, text=True)
    except OSError as e:
        return None, str(e)
    out, why = {}, None
    try:
        for stage in ("init", "request"):
            line = p.stdout.readline().strip()
            if line != stage:
                why = "curl_floor: %s" % (line or "exited")
                break
            out[stage] = memory_breakdown(p.pid)
            p.stdin.write("\n")
            p.stdin.flush()
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return (out, None) if not why else (None, why)


def floor_figures(a, mem):
    """The agent's idle memory over what libcurl + OpenSSL alone hold after one HTTPS request:
    the part of the idle figures that molt's own code decides (bench/README.md, "the floor")."""
    fl, why = floor_memory(a.floor_exe, a.floor_url, a.floor_ca)
    req, init = (fl or {}).get("request", {}), (fl or {}).get("init", {})
    details = {"floor": fl, "agent": {k: mem.get(k) for k in ("rssKiB", "private_dirtyKiB")}}
    for fid, key, title, goal in (
            ("idle_rss_over_floor", "rssKiB", "idle RSS of molt-agent over libcurl + OpenSSL "
             "alone after one HTTPS request (bench/curl_floor: %s KiB)", 1.0),
            ("idle_private_dirty_over_floor", "private_dirtyKiB", "idle private dirty of "
             "molt-agent over the same floor (%s KiB)", 0.5)):
        have = req.get(key) is not None and mem.get(key) is not None
        record(a.results, figure(
            fid, title % req.get(key, "?"),
            round((mem[key] - req[key]) / 1024.0, 2) if have else None, "MiB", goal, "<=",
            "<= %s MiB" % goal,
            baseline={"label": "the floor after curl_global_init alone",
                      "value": round(init[key] / 1024.0, 2) if init.get(key) else None,
                      "unit": "MiB"},
            details=details, missing=None if have else (why or "not measured")))


def cmd_heartbeats(a):
    """CPU per heartbeat and idle RSS of a running agent over a.count heartbeats."""
    cp = CP()
    port = urllib.parse.urlsplit(os.environ["CP_URL"]).port
    deadline = time.monotonic() + a.timeout
    # Warm-up: registration and the first heartbeats are not idle work.
    while heartbeat_count(cp.stats()) < a.warmup:
        if time.monotonic() > deadline:
            raise SystemExit("no heartbeats from the agent within %d s" % a.timeout)
        time.sleep(0.2)
    c0 = heartbeat_count(cp.stats())
    t0 = time.monotonic()
    cpu0, ns0 = proc_cpu(a.pid)
    ports = set()
    while True:
        ports |= socket_ports(a.pid, port)
        n = heartbeat_count(cp.stats()) - c0
        if n >= a.count:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    cpu1, ns1 = proc_cpu(a.pid)
    wall = time.monotonic() - t0
    n = heartbeat_count(cp.stats()) - c0
    st = proc_status(a.pid)
    details = {"heartbeats": n, "wallS": round(wall, 1), "intervalMs": a.interval_ms,
               "longPoll": a.long_poll, "cpuUsStat": cpu1 - cpu0,
               "cpuUsSchedstat": round((ns1 - ns0) / 1000),
               "perHeartbeatUsSchedstat": round((ns1 - ns0) / 1000 / n, 1) if n else None,
               "connectionsSeen": len(ports), "vmHwmKiB": st["VmHWM"] if st else None,
               "clkTck": CLK_TCK}
    short = None if n >= a.count else "only %d of %d heartbeats within %d s" % (
        n, a.count, a.timeout)
    rss = st["VmRSS"] / 1024.0 if st else None
    base = None
    if a.baseline_rss_kib:
        base = {"label": "curl holding one HTTPS download",
                "value": round(a.baseline_rss_kib / 1024.0, 2), "unit": "MiB"}
    mem = memory_breakdown(a.pid)
    record(a.results, figure("idle_rss", "idle RSS of molt-agent after %d heartbeats" % n,
                             round(rss, 2) if rss else None, "MiB", 8, "<=", "<= 8 MiB",
                             baseline=base, details=dict(mem, heartbeats=n), missing=short))
    # Pages only this process holds (heap, stacks, relocated library data): what each agent
    # costs a host whatever else maps the same libraries (issue 20: <= 1.5 MiB).
    pd = mem.get("private_dirtyKiB")
    record(a.results, figure("idle_private_dirty", "idle private dirty of molt-agent",
                             round(pd / 1024.0, 2) if pd is not None else None, "MiB", 1.5,
                             "<=", "<= 1.5 MiB", details={"heartbeats": n},
                             missing=short if pd is not None else "no smaps_rollup"))
    if a.floor_exe:
        floor_figures(a, mem)
    per = (cpu1 - cpu0) / n if n else None
    record(a.results, figure("cpu_per_heartbeat", "CPU per heartbeat, kept-alive HTTPS",
                             round(per, 1) if per is not None else None, "µs", 200, "<=",
                             "<= 200 µs", details=details, missing=short))
    print(json.dumps(details))


def stage_times(events):
    """Server times (ms) of the first agent report of each stage, the first 6, the end."""
    out = {"stages": {}}
    for e in events:
        if e["what"] == "created":
            out.setdefault("created", e["time"])
        if e["source"] == "agent" and e.get("stage"):
            out["stages"].setdefault(e["stage"], e["time"])
        if e["source"] == "agent" and e.get("status") == 6:
            out.setdefault("first6", e["time"])
        if e["source"] == "server" and e["what"] in ("succeeded", "failed", "cancelled",
                                                     "timed-out"):
            out.setdefault("end", e["time"])
            out.setdefault("endStatus", e.get("status"))
        if e["source"] == "agent" and e.get("status") in (2, 3):
            out.setdefault("agentFinal", e["time"])
    return out


def wait_final(cp, tid, timeout, need_agent_final=False):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = stage_times(cp.events(tid))
        if "end" in t and (not need_agent_final or "agentFinal" in t):
            return t
        time.sleep(0.02)
    return None


def cmd_pickup(a):
    """Task created -> first 6, a.count times; each task must end before the next."""
    cp = CP()
    lat, ends = [], []
    deadline = time.monotonic() + a.timeout
    for i in range(a.count):
        if time.monotonic() > deadline:
            break
        tid = cp.create_task(a.collector, a.to)
        t = wait_final(cp, tid, max(1, deadline - time.monotonic()), need_agent_final=True)
        if t is None or "first6" not in t:
            break
        # An event repeated back to back keeps the time of its last repeat; the heartbeat log
        # has each arrival, so the earlier of the two is the first 6.
        beats = [b["time"] for b in cp.heartbeats(a.collector)
                 if b.get("taskId") == tid and b.get("status") == 6]
        lat.append(min([t["first6"]] + beats) - t["created"])
        ends.append(t.get("endStatus"))
        # The next task comes at a random phase of the agent's heartbeat cycle, as an operator's
        # would: right after the last report it would always wait almost a whole interval.
        time.sleep(random.uniform(0, a.interval_ms / 1000.0))
    mode = "long-poll" if a.long_poll else "no long-poll, interval %d ms" % a.interval_ms
    goal = 100 if a.long_poll else a.interval_ms
    details = {"samples": lat, "n": len(lat), "p90": sorted(lat)[int(0.9 * (len(lat) - 1))]
               if lat else None, "max": max(lat) if lat else None, "intervalMs": a.interval_ms,
               "taskEnds": sorted(set(ends))}
    missing = None if len(lat) == a.count else "%d of %d samples" % (len(lat), a.count)
    record(a.results, figure("pickup_" + ("longpoll" if a.long_poll else "interval"),
                             "command pickup, task created -> first 6 (%s), median of %d" % (
                                 mode, len(lat)), median(lat), "ms", goal, "<=",
                             "<= %d ms" % goal, details=details, missing=missing))
    print(json.dumps(details))


def downtime(beats, old, new, after_ms):
    """Gap (monotonic ms) from the last heartbeat of version old to the first of version new,
    among heartbeats logged at or after server time after_ms."""
    last_old, first_new = None, None
    for b in beats:
        if b["time"] < after_ms:
            continue
        if b["version"] == old and first_new is None:
            last_old = b
        elif b["version"] == new and first_new is None:
            first_new = b
    if last_old is None or first_new is None:
        return None, None
    return first_new["monotonicMs"] - last_old["monotonicMs"], first_new


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (molt-agent|molt-installer)"
                      r"\[(\d+)\] \w+ (\S+) ?(.*)$")


def log_ms(ts):
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def agent_log_times(path, tid, to):
    """Times (ms since the epoch, the agent's clock: the same host clock as the server's) of
    task tid's steps in the agent log the supervisor collected: the first line of each stage,
    the restart request, the old agent's exit (its "stopping" line: the launcher may have
    stopped it already, having seen `current` change) and the new agent's start."""
    out = {"stages": {}}
    stopping, started = {}, []
    try:
        f = open(path, errors="replace")
    except OSError:
        return out
    with f:
        for line in f:
            m = LOG_LINE.match(line)
            if not m or m.group(2) != "molt-agent":
                continue
            ts, _, pid, event, rest = m.groups()
            fields = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
            if event == "command" and fields.get("task") == tid:
                out.setdefault("command", log_ms(ts))
            elif event == "task.stage" and fields.get("task") == tid:
                out["stages"].setdefault(fields.get("stage"), log_ms(ts))
            elif event == "upgrade.restart" and fields.get("task") == tid:
                out.setdefault("restartRequested", log_ms(ts))
                out.setdefault("oldPid", pid)
            elif event == "stopping":
                stopping.setdefault(pid, log_ms(ts))
            elif event == "started" and fields.get("version") == to:
                started.append((log_ms(ts), pid))
    old = out.get("oldPid")
    if old in stopping:
        out["oldStopping"] = stopping[old]
        later = [t for t, pid in started if pid != old and t >= stopping[old]]
        if later:
            out["newStarted"] = later[0]
    return out


def cmd_upgrade(a):
    """One upgrade task: its stage times, and the switch downtime, as JSON on stdout."""
    cp = CP()
    tid = cp.create_task(a.collector, a.to)
    t = wait_final(cp, tid, a.timeout)
    if t is None:
        print(json.dumps({"taskId": tid, "error": "task not final within %d s" % a.timeout}))
        return
    task = cp.task(tid)
    t.update({"taskId": tid, "status": task["status"], "message": task["message"],
              "eventStages": t.pop("stages")})
    if a.log:
        t["agent"] = agent_log_times(a.log, tid, a.to)
        t["stages"] = t["agent"]["stages"]
    if task["status"] == 2:
        beats = cp.heartbeats(a.collector)
        gap, first_new = downtime(beats, a.old, a.to, t["created"])
        t["downtimeMs"] = gap
        ag = t.get("agent", {})
        if first_new is not None and "oldStopping" in ag:
            t["oldExitToFirstNewMs"] = first_new["time"] - ag["oldStopping"]
        if "oldStopping" in ag and "stages" in ag and "restarting" in ag["stages"]:
            t["restartToExitMs"] = ag["oldStopping"] - ag["stages"]["restarting"]
    print(json.dumps(t))


def create_tasks(ids, version, parallel):
    """{task id: collector id}, created over `parallel` kept-alive connections at once, as an
    operator's script upgrading a fleet would."""
    import concurrent.futures
    import threading
    local = threading.local()

    def one(cid):
        if not hasattr(local, "cp"):
            local.cp = CP()
        return local.cp.create_task(cid, version), cid

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as ex:
        return dict(ex.map(one, ids))


def per_task_seconds(cp, tids):
    """Created -> final of each task from the server's events (seconds, sorted), and the wave's
    span: the first task created -> the last task ended (seconds)."""
    out, first, last = [], None, None
    for tid in tids:
        t = stage_times(cp.events(tid))
        if "end" in t and "created" in t:
            out.append((t["end"] - t["created"]) / 1000.0)
            first = t["created"] if first is None else min(first, t["created"])
            last = t["end"] if last is None else max(last, t["end"])
    return sorted(out), (last - first) / 1000.0 if out else None


def cmd_wave(a):
    """Upgrade every collector named in a.names to a.to at once; wall time and requests/s."""
    cp = CP()
    names = [n.strip() for n in open(a.names) if n.strip()]
    ids = []
    deadline = time.monotonic() + a.timeout
    for n in names:
        while True:
            cid = cp.collector_id(n)
            if cid is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if cid is not None:
            ids.append(cid)
    # Every collector must heartbeat its version before the wave (not only be registered).
    while time.monotonic() < deadline:
        cols = cp.get("/collectors?limit=10000")["collectors"]
        ready = sum(1 for c in cols if c.get("collectorVersion") == a.old and c["id"] in ids)
        if ready == len(ids):
            break
        time.sleep(0.5)
    cp.reset_stats()
    cpu0 = proc_cpu(a.cp_pid)[0] if a.cp_pid else None
    t0 = time.monotonic()
    tids = create_tasks(ids, a.to, a.parallel)
    created_s = time.monotonic() - t0
    final = {}
    while len(final) < len(tids) and time.monotonic() < deadline:
        for t in cp.get("/admin/tasks")["tasks"]:
            tid = str(t["id"])
            if tid in tids and t["status"] in (2, 3) and tid not in final:
                final[tid] = (t["status"], t.get("message", ""), time.monotonic() - t0)
        time.sleep(0.2)
    wall = max((v[2] for v in final.values()), default=time.monotonic() - t0)
    stats = cp.stats()
    cp_cpu = (proc_cpu(a.cp_pid)[0] - cpu0) / 1e6 if a.cp_pid else None
    ok = sum(1 for v in final.values() if v[0] == 2)
    failures = sorted({v[1] for v in final.values() if v[0] != 2})[:5]
    n = len(names)
    each, span = per_task_seconds(cp, list(tids))
    if span is not None and len(final) == len(tids):
        wall = span  # server times, to the millisecond (the polling above is 0.2 s coarse)
    details = {"agents": n, "registered": len(ids), "tasks": len(tids), "succeeded": ok,
               "failed": len(final) - ok, "unfinished": len(tids) - len(final),
               "createTasksS": round(created_s, 2), "createParallel": a.parallel,
               "wallS": round(wall, 1),
               "perTaskS": {"p50": round(median(each), 2) if each else None,
                            "p90": each[int(0.9 * (len(each) - 1))] if each else None,
                            "max": each[-1] if each else None},
               "requests": stats["total"], "requestsPerSecond":
               round(stats["total"] / stats["elapsedMs"] * 1000, 1) if stats["elapsedMs"] else None,
               "endpoints": {k: v["count"] for k, v in stats["endpoints"].items()},
               "controlPlaneCpuS": round(cp_cpu, 1) if cp_cpu is not None else None,
               "failureMessages": failures, "setup": json.loads(a.setup) if a.setup else {}}
    agent_reqs = sum(v["count"] for k, v in stats["endpoints"].items()
                     if k.split()[1].startswith(("/api/v1/collector/", "/builds/")))
    details["agentRequests"] = agent_reqs
    details["agentRequestsPerSecond"] = round(agent_reqs / stats["elapsedMs"] * 1000, 1) \
        if stats["elapsedMs"] else None
    files = stats.get("files", {})
    details["kind"] = a.kind
    details["bytesSent"] = stats.get("bytesSent")
    details["downloadBytes"] = sum(f["bytes"] for f in files.values())
    details["files"] = files
    details["deltaDownloads"] = sum(f["requests"] for k, f in files.items()
                                    if k.endswith(".delta"))
    details["packageDownloads"] = sum(f["requests"] for k, f in files.items()
                                      if not k.endswith(".delta"))
    if a.logs:
        details["agentLogs"] = delta_use(a.logs)
    pct = 100.0 * ok / n if n else 0
    if a.kind == "delta":
        # The share that succeeded *by delta*: a wave that fell back to full packages succeeds
        # but does not show what this figure is for.
        used = details.get("agentLogs", {}).get("rebuiltFromDelta")
        pct = 100.0 * min(ok, used if used is not None else ok) / n if n else 0
        title = ("fleet of %d agents upgraded in one wave with deltas in %.1f s (%d succeeded, %s "
                 "rebuilt from the delta), %s requests/s (agents': %s): succeeded by delta" % (
                     n, wall, ok, used, details["requestsPerSecond"],
                     details["agentRequestsPerSecond"]))
    else:
        title = ("fleet of %d agents upgraded in one wave in %.1f s, %s requests/s (agents': "
                 "%s): succeeded" % (n, wall, details["requestsPerSecond"],
                                     details["agentRequestsPerSecond"]))
    record(a.results, figure("fleet" if a.kind == "full" else "fleet_delta", title,
                             round(pct, 1), "%", 100, ">=", "100%, wall time and requests/s "
                             "reported", details=details))
    if a.save:
        with open(a.save, "w") as f:
            json.dump(details, f)
    if a.baseline:
        fleet_bytes(a, details, load_json(a.baseline, {}))
    print(json.dumps(details))


def delta_use(root):
    """Of the agent logs root/*/agent.log: how many agents rebuilt the package from a delta
    (an `upgrade.delta ... delta_bytes=` line) and how many fell back to the full package
    (`upgrade.delta ... action=full-download`), with the first few reasons."""
    used = fell = 0
    reasons = set()
    for name in os.listdir(root):
        try:
            with open(os.path.join(root, name, "agent.log"), errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        if re.search(r" upgrade\.delta task=\S+ .*delta_bytes=", text):
            used += 1
        m = re.search(r" upgrade\.delta task=\S+ .*action=full-download reason=\"([^\"]*)",
                      text)
        if m:
            fell += 1
            reasons.add(m.group(1))
    return {"rebuiltFromDelta": used, "fellBackToFull": fell,
            "fallbackReasons": sorted(reasons)[:5]}


def fleet_bytes(a, d, f):
    """The delta wave's bytes served against the full wave's (its saved details f)."""
    mb = 1e6
    ok = f.get("bytesSent") and d.get("bytesSent")
    pct = round(100.0 * d["bytesSent"] / f["bytesSent"], 2) if ok else None
    title = ("bytes served to a fleet of %d, wave with deltas: %.1f MB (downloads %.1f MB: %d "
             "deltas, %d packages), %s requests/s (full wave: downloads %.1f MB, %s requests/s)"
             % (d["agents"], d["bytesSent"] / mb, d["downloadBytes"] / mb,
                d["deltaDownloads"], d["packageDownloads"], d["requestsPerSecond"],
                f.get("downloadBytes", 0) / mb, f.get("requestsPerSecond")))
    record(a.results, figure(
        "fleet_delta_bytes", title, pct, "%", 10, "<=",
        "<= 10% of the full wave's (the per-host goal)",
        baseline={"label": "full wave", "value": round(f["bytesSent"] / mb, 1) if ok else None,
                  "unit": "MB"},
        details={"delta": {k: d.get(k) for k in FLEET_KEYS},
                 "full": {k: f.get(k) for k in FLEET_KEYS}},
        missing=None if ok else "no full wave to compare with"))


FLEET_KEYS = ("agents", "succeeded", "wallS", "requests", "requestsPerSecond",
              "agentRequestsPerSecond", "bytesSent", "downloadBytes", "deltaDownloads",
              "packageDownloads", "files", "agentLogs", "controlPlaneCpuS")


def cmd_watch_hwm(a):
    """Poll VmHWM of a.pid until it exits (or a.timeout); print the last value in KiB and the
    CPU time (utime + stime) the process used while watched."""
    last, cpu_first, cpu_last = None, None, None
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        st = proc_status(a.pid)
        try:
            cpu = proc_cpu(a.pid)[0]
        except OSError:
            st = None
        if st is None:
            break
        last, cpu_last = st, cpu
        if cpu_first is None:
            cpu_first = cpu
            if a.ready:
                open(a.ready, "w").close()
        time.sleep(a.every)
    print(json.dumps({"pid": a.pid, "vmHwmKiB": last["VmHWM"] if last else None,
                      "vmRssKiB": last["VmRSS"] if last else None,
                      "cpuUs": cpu_last - cpu_first if last else None}))


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def worker_peaks(path):
    """ru_maxrss (KiB) of each upgrade worker the agent reaped, from its `upgrade.worker` log
    lines (agent/upgrade.c logs one as each worker exits); empty when there is no such line,
    i.e. an agent that runs the pipeline itself."""
    out = []
    try:
        f = open(path, errors="replace")
    except OSError:
        return out
    with f:
        for line in f:
            m = LOG_LINE.match(line)
            if not m or m.group(2) != "molt-agent" or m.group(4) != "upgrade.worker":
                continue
            fields = dict(kv.split("=", 1) for kv in m.group(5).split() if "=" in kv)
            try:
                out.append({"task": fields.get("task"), "exit": fields.get("exit"),
                            "maxrssKiB": int(fields["maxrss_kib"])})
            except (KeyError, ValueError):
                pass
    return out


def cmd_sizes(a):
    """The download and peak-RSS figures from fig-download.sh's runs, one directory a size."""
    runs = {}
    for name in os.listdir(a.dir):
        d = os.path.join(a.dir, name)
        up = load_json(os.path.join(d, "upgrade.json"), {})
        hwm = load_json(os.path.join(d, "hwm.json"), {})
        idle = load_json(os.path.join(d, "idle.json"), {})
        base = []
        try:
            with open(os.path.join(d, "baseline")) as f:
                for line in f:
                    wall, user, sys_, curl, sha, tar = line.split()
                    base.append({"wallS": float(wall), "cpuS": round(float(user) + float(sys_), 2),
                                 "curlMs": int(curl), "sha256sumMs": int(sha), "tarMs": int(tar)})
        except (OSError, ValueError):
            pass
        try:
            with open(os.path.join(d, "bytes")) as f:
                size = int(f.read())
        except (OSError, ValueError):
            size = None
        st = up.get("stages", {})
        phases = {}
        order = ["downloading", "verifying", "staging", "switching"]
        for x, y in zip(order, order[1:]):
            if x in st and y in st:
                phases[x + "Ms"] = st[y] - st[x]
        runs[int(name)] = {"packageBytes": size, "status": up.get("status"),
                           "error": up.get("error"),
                           "message": up.get("message"), "phasesMs": phases,
                           "dvsMs": st["switching"] - st["downloading"]
                           if "switching" in st and "downloading" in st else None,
                           "createdTo2Ms": up["end"] - up["created"]
                           if up.get("status") == 2 else None,
                           "peakRssKiB": hwm.get("vmHwmKiB"), "idleHwmKiB": idle.get("VmHWM"),
                           "agentCpuS": round(hwm["cpuUs"] / 1e6, 2)
                           if hwm.get("cpuUs") is not None else None,
                           "baseline": base,
                           "workers": worker_peaks(os.path.join(d, "agent.log"))}
    dl = runs.get(a.dl)
    if dl and dl["dvsMs"] and dl["baseline"]:
        best = min(dl["baseline"], key=lambda b: b["wallS"])
        ratio = dl["dvsMs"] / 1000.0 / best["wallS"]
        mib = round(dl["packageBytes"] / 1048576) if dl["packageBytes"] else a.dl
        details = dict(dl, bestBaseline=best, agentS=dl["dvsMs"] / 1000.0,
                       cpuRatio=round(dl["agentCpuS"] / best["cpuS"], 2)
                       if dl["agentCpuS"] and best["cpuS"] else None)
        record(a.results, figure(
            "download_ratio", "download + verify + stage, %d MiB package: agent %.2f s" % (
                mib, dl["dvsMs"] / 1000.0), round(ratio, 2), "x", 0.8, "<=", "ratio <= 0.8",
            baseline={"label": "curl + sha256sum + tar", "value": best["wallS"], "unit": "s"},
            details=details))
    else:
        record(a.results, figure("download_ratio", "download + verify + stage, %d MiB package"
                                 % a.dl, None, "x", 0.8, "<=", "ratio <= 0.8",
                                 details={"run": dl}, missing="not measured (see details)"))
    big, small = runs.get(a.big), runs.get(a.small)
    peak = lambda r: r["peakRssKiB"] / 1024.0 if r and r.get("peakRssKiB") else None
    pb, ps = peak(big), peak(small)
    record(a.results, figure(
        "peak_rss", "peak RSS (VmHWM) of the agent, upgrade with a %d MiB package" % a.big,
        round(pb, 2) if pb else None, "MiB", 12, "<=", "<= 12 MiB",
        baseline={"label": "with %d MiB" % a.small, "value": round(ps, 2) if ps else None,
                  "unit": "MiB"},
        details={"runs": {str(k): v for k, v in sorted(runs.items())}},
        missing=None if pb and ps else "not measured (see details)"))
    growth = pb - ps if pb and ps else None
    record(a.results, figure(
        "peak_rss_flat", "peak RSS growth from %d MiB to %d MiB package" % (a.small, a.big),
        round(growth, 2) if growth is not None else None, "MiB", 1, "<=",
        "flat (<= 1 MiB)", missing=None if growth is not None else "not measured"))
    # The worker's own peak, apart from the agent's: the largest ru_maxrss of the workers of
    # each upgrade (a resumed task may run more than one). Flat in package size means at most
    # 1 MiB more with the big package than with the small one. No `upgrade.worker` line (an
    # agent without a worker) is "not measured", never a pass.
    wpeak = lambda r: max(w["maxrssKiB"] for w in r["workers"]) / 1024.0 \
        if r and r.get("workers") else None
    wb, ws = wpeak(big), wpeak(small)
    record(a.results, figure(
        "worker_peak_rss", "peak RSS (ru_maxrss) of the upgrade worker, %d MiB package" % a.big,
        round(wb, 2) if wb is not None else None, "MiB",
        round(ws + 1, 2) if ws is not None else None, "<=",
        "flat: <= the %d MiB run + 1 MiB" % a.small,
        baseline={"label": "with %d MiB" % a.small, "value": round(ws, 2) if ws is not None
                  else None, "unit": "MiB"},
        details={"workers": {str(k): v["workers"] for k, v in sorted(runs.items())}},
        missing=None if wb is not None and ws is not None
        else "no upgrade.worker line with maxrss_kib= in the agent log"))
    print(json.dumps(runs, indent=1))


def parse_rate(text):
    """agent.download_max_rate's syntax (lib/conf.c): N, NK, NM, NG, 1024-based."""
    t = text.strip()
    mult = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}.get(t[-1:].lower(), 1)
    return int(t[:-1] if mult > 1 else t) * mult


def cmd_rate(a):
    """The rate figure from fig-rate.sh's run: mean rate of the download stage against the cap."""
    up = load_json(os.path.join(a.dir, "upgrade.json"), {})
    try:
        with open(os.path.join(a.dir, "bytes")) as f:
            size = int(f.read())
    except (OSError, ValueError):
        size = None
    cap = parse_rate(a.cap)
    st = up.get("stages", {})
    ms = st["verifying"] - st["downloading"] if "verifying" in st and "downloading" in st else None
    mib = round(size / 1048576) if size else None
    title = "package of %s MiB downloaded at download_max_rate = %s" % (mib, a.cap)
    capm = cap / 1048576.0
    details = {"packageBytes": size, "capBytesPerS": cap, "downloadMs": ms,
               "status": up.get("status"), "message": up.get("message"), "error": up.get("error")}
    if not ms or not size or up.get("status") != 2:
        record(a.results, figure("download_rate", title, None, "%", 5, "<=",
                                 "mean within 5% of the cap", details=details,
                                 missing="not measured (see details)"))
        return
    mean = size / (ms / 1000.0)
    off = abs(mean - cap) / cap * 100.0
    details["meanBytesPerS"] = round(mean)
    record(a.results, figure(
        "download_rate", title + ": mean %.2f MiB/s in %.1f s" % (mean / 1048576.0, ms / 1000.0),
        round(off, 2), "% off", 5, "<=", "mean within 5% of the cap",
        baseline={"label": "cap", "value": round(capm, 2), "unit": "MiB/s"}, details=details))
    print(json.dumps(details, indent=1))


def cmd_e2e(a):
    """End to end and switch downtime from fig-e2e.sh's runs (one JSON file a run)."""
    runs = []
    for i in range(1, a.runs + 1):
        r = load_json(os.path.join(a.dir, "%d.json" % i))
        if r is not None:
            runs.append(r)
    ok = [r for r in runs if r.get("status") == 2]
    e2e = [r["end"] - r["created"] for r in ok]
    down = [r["downtimeMs"] for r in ok if r.get("downtimeMs") is not None]
    gap = [r["oldExitToFirstNewMs"] for r in ok if r.get("oldExitToFirstNewMs") is not None]
    stop = [r["restartToExitMs"] for r in ok if r.get("restartToExitMs") is not None]
    stages = {}
    for r in ok:
        st = dict(r["stages"], created=r["created"], end=r["end"])
        order = sorted(st.items(), key=lambda kv: kv[1])
        for (x, tx), (y, ty) in zip(order, order[1:]):
            stages.setdefault("%s->%s" % (x, y), []).append(ty - tx)
    breakdown = {k: median(v) for k, v in stages.items()}
    missing = None if len(ok) == a.runs else "%d of %d upgrades succeeded" % (len(ok), a.runs)
    failures = [r.get("message") or r.get("error") for r in runs if r.get("status") != 2]
    m = median(e2e)
    record(a.results, figure(
        "e2e", "end to end, task created -> 2, %d MiB package, interval %d ms, median of %d" % (
            a.mib, a.interval_ms, len(e2e)), round(m / 1000.0, 2) if m is not None else None,
        "s", 2, "<=", "<= 2 s", details={"samplesMs": e2e, "medianStepsMs": breakdown,
                                         "failures": failures}, missing=missing))
    record(a.results, figure(
        "switch_downtime", "switch downtime, last heartbeat of the old version -> first of the "
        "new, median of %d" % len(down), median(down), "ms", 250, "<=", "<= 250 ms",
        details={"samplesMs": down, "oldExitToFirstNewMs": gap,
                 "medianOldExitToFirstNewMs": median(gap), "restartRequestToExitMs": stop,
                 "intervalMs": a.interval_ms}, missing=missing))
    print(json.dumps({"e2eMs": e2e, "downtimeMs": down, "oldExitToFirstNewMs": gap,
                      "restartRequestToExitMs": stop,
                      "medianStepsMs": breakdown, "failures": failures}, indent=1))


def settled_rss(pid, samples=5):
    """The largest VmRSS (KiB) of a few samples 0.2 s apart, heartbeats going on."""
    out = 0
    for _ in range(samples):
        st = proc_status(pid)
        if st is None:
            return None
        out = max(out, st["VmRSS"])
        time.sleep(0.2)
    return out


def cmd_hostile(a):
    """RSS after a hostile burst of heartbeat replies (a.count at the cap, a.count a byte over,
    alternating) against the idle RSS just before it."""
    cp = CP()
    deadline = time.monotonic() + a.timeout
    while heartbeat_count(cp.stats()) < a.warmup:
        if time.monotonic() > deadline:
            raise SystemExit("no heartbeats from the agent within %d s" % a.timeout)
        time.sleep(0.2)
    idle = settled_rss(a.pid)
    status, obj = cp.call("POST", "/admin/faults", {
        "type": "malformed", "kind": "padded", "bytes": a.cap, "overBytes": a.cap + 1,
        "count": 2 * a.count})
    if status not in (200, 201):
        raise SystemExit("arming the burst: HTTP %d %s" % (status, obj))
    t0 = time.monotonic()
    while cp.get("/admin/faults")["faults"] and time.monotonic() < deadline:
        time.sleep(0.2)
    left = len(cp.get("/admin/faults")["faults"])
    wall = time.monotonic() - t0
    peak = (proc_status(a.pid) or {}).get("VmHWM")
    c0 = heartbeat_count(cp.stats())
    while heartbeat_count(cp.stats()) < c0 + 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = settled_rss(a.pid)
    missing = None
    if left or idle is None or after is None:
        missing = "burst not consumed (%d faults left) or the agent is gone" % left
    value = round(after / 1024.0, 2) if after else None
    goal = round((idle + 1024) / 1024.0, 2) if idle else None
    details = {"idleKiB": idle, "afterKiB": after, "deltaKiB": after - idle if after and idle
               else None, "vmHwmKiB": peak, "burstS": round(wall, 1), "repliesAtCap": a.count,
               "repliesOverCap": a.count, "capBytes": a.cap,
               "heartbeatsAfter": heartbeat_count(cp.stats()) - c0}
    record(a.results, figure(
        "hostile_rss", "RSS after a hostile burst (%d heartbeat replies at the cap, %d over)"
        % (a.count, a.count), value, "MiB", goal, "<=", "<= idle + 1 MiB",
        baseline={"label": "idle", "value": round(idle / 1024.0, 2) if idle else None,
                  "unit": "MiB"}, details=details, missing=missing))
    print(json.dumps(details))


def cmd_delta(a):
    """The delta figures from fig-delta.sh's run: bytes of a point-release delta against the
    full package, the time and peak RSS of rebuilding the package from it (base from the
    installed tree) against downloading the full package on loopback."""
    def pair(name):
        try:
            with open(os.path.join(a.dir, name + ".bytes")) as f:
                delta, full = (int(x) for x in f.read().split())
            out = {"deltaBytes": delta, "packageBytes": full}
            for step in ("make", "apply"):
                with open(os.path.join(a.dir, "%s-%s.time" % (name, step))) as f:
                    secs, kib = f.read().split()
                out[step + "S"] = float(secs)
                out[step + "PeakKiB"] = int(kib)
            return out
        except (OSError, ValueError):
            return None

    def timed(name):
        try:
            with open(os.path.join(a.dir, name + ".time")) as f:
                secs, kib = f.read().split()
            return float(secs), int(kib)
        except (OSError, ValueError):
            return None, None

    point, padded = pair("point"), pair("padded")
    full_s, _ = timed("full-download")
    details = {"point": point, "padded": padded, "fullDownloadS": full_s, "padMiB": a.pad}
    if not point:
        record(a.results, figure("delta_bytes", "point-release delta", None, "%", 10, "<=",
                                 "<= 10% of the full package", details=details,
                                 missing="not measured (see details)"))
        return
    pct = 100.0 * point["deltaBytes"] / point["packageBytes"]
    record(a.results, figure(
        "delta_bytes", "point-release delta, %d bytes for a %d-byte package (made in %.2f s)"
        % (point["deltaBytes"], point["packageBytes"], point["makeS"]),
        round(pct, 2), "%", 10, "<=", "<= 10% of the full package", details=details))
    record(a.results, figure(
        "delta_apply_time", "rebuild from the delta (base from the installed tree, patch, "
        "recompress, hash)", round(point["applyS"] * 1000), "ms", None, "<=",
        "reported beside the full download",
        baseline={"label": "curl, full package over HTTPS on loopback",
                  "value": round(full_s * 1000) if full_s else None, "unit": "ms"},
        details=details))
    # The operator's command, not the agent: the agent patches in its worker (the rows below).
    record(a.results, figure(
        "delta_apply_rss", "peak RSS of molt-pack delta-apply, point release",
        round(point["applyPeakKiB"] / 1024.0, 1), "MiB", None, "<=",
        "reported (a command; the agent patches in its worker, below)", details=details))
    agent = {}
    for name in ("bydelta", "full"):
        up = load_json(os.path.join(a.dir, "agent-%s.json" % name), {})
        hwm = load_json(os.path.join(a.dir, "agent-%s-hwm.json" % name), {})
        st = up.get("stages", {})
        try:
            with open(os.path.join(a.dir, "agent-%s.used" % name)) as f:
                used = int(f.read().strip() or 0)
        except (OSError, ValueError):
            used = None
        workers = worker_peaks(os.path.join(a.dir, "agent-%s.log" % name))
        agent[name] = {"status": up.get("status"), "message": up.get("message"),
                       "vmHwmKiB": hwm.get("vmHwmKiB"), "deltaUsed": used,
                       "workerMaxrssKiB": max(w["maxrssKiB"] for w in workers)
                       if workers else None,
                       "downloadingMs": st["verifying"] - st["downloading"]
                       if "verifying" in st and "downloading" in st else None}
    details["agent"] = agent
    d, f = agent["bydelta"], agent["full"]
    ok = d["status"] == 2 and f["status"] == 2 and d["deltaUsed"] == 1 and d["vmHwmKiB"]
    record(a.results, figure(
        "delta_agent_rss", "peak RSS (VmHWM) of the agent, upgrade %s -> %s by delta "
        "(downloading stage %s ms, full package %s ms)" % (
            a.v1, a.v2, d["downloadingMs"], f["downloadingMs"]),
        round(d["vmHwmKiB"] / 1024.0, 1) if ok else None, "MiB", 12, "<=",
        "<= 12 MiB (peak RSS goal)",
        baseline={"label": "full package", "value": round(f["vmHwmKiB"] / 1024.0, 1)
                  if f.get("vmHwmKiB") else None, "unit": "MiB"},
        details=details, missing=None if ok else "not measured (see details)"))
    # Patching needs the base and the rebuilt archive in reach at once (the zstd window spans
    # both: docs/package-format.md section 7), so the worker may hold those two more than when
    # it downloads the full package, and nothing else: no copy of either, no buffering of the
    # package. The agent takes no delta whose two exceed its budget (32 MiB).
    try:
        with open(os.path.join(a.dir, "point.archives")) as fh:
            base_b, arch_b = (int(x) for x in fh.read().split())
    except (OSError, ValueError):
        base_b = arch_b = None
    wd, wf = d["workerMaxrssKiB"], f["workerMaxrssKiB"]
    wgoal = round((wf * 1024 + base_b + arch_b) / 1048576.0, 1) if wf and base_b else None
    details["archiveBytes"] = {"base": base_b, "rebuilt": arch_b}
    record(a.results, figure(
        "delta_worker_rss", "peak RSS (ru_maxrss) of the upgrade worker patching, the same "
        "upgrade by delta (base archive %s bytes, rebuilt archive %s bytes)" % (base_b, arch_b),
        round(wd / 1024.0, 1) if ok and wd else None, "MiB", wgoal, "<=",
        "<= the worker with the full package + base + rebuilt archive",
        baseline={"label": "worker, full package", "value": round(wf / 1024.0, 1) if wf
                  else None, "unit": "MiB"},
        details=details, missing=None if ok and wd else
        "no upgrade.worker line with maxrss_kib= in the agent log"))
    if padded:
        record(a.results, figure(
            "delta_apply_rss_padded", "peak RSS of delta-apply, %d-byte package (%d MiB padding),"
            " delta %d bytes, apply %.2f s" % (padded["packageBytes"], a.pad,
                                              padded["deltaBytes"], padded["applyS"]),
            round(padded["applyPeakKiB"] / 1024.0, 1), "MiB", None, "<=",
            "reported: over the agent's 32 MiB delta budget, so agents download it whole",
            details=details))
    print(json.dumps(details, indent=1))


def cmd_record(a):
    fig = json.loads(a.json)
    record(a.results, fig)


def cmd_proc(a):
    st = proc_status(a.pid) or {}
    cpu, ns = proc_cpu(a.pid)
    st.update({"cpuUs": cpu, "cpuNs": ns})
    print(json.dumps(st))


def cmd_trust(a):
    """fig-trust.sh: the idle memory of the agent trusting the system's CAs through the hashed
    directory (--dir-pid) against the one given the bundle (--bundle-pid), both idle."""
    d, b = memory_breakdown(a.dir_pid), memory_breakdown(a.bundle_pid)
    for fid, key, what in (("trust_idle_rss", "rssKiB", "RSS"),
                           ("trust_idle_private_dirty", "private_dirtyKiB", "private dirty")):
        have = d.get(key) is not None and b.get(key) is not None
        base = round(b[key] / 1024.0, 2) if have else None
        record(a.results, figure(
            fid, "idle %s of molt-agent with the system's CAs, read through the hashed "
            "directory (%d heartbeats)" % (what, a.heartbeats),
            round(d[key] / 1024.0, 2) if have else None, "MiB",
            round(base - 0.5, 2) if have else None, "<=", "<= the bundle's - 0.5 MiB",
            baseline={"label": "ca_file = the bundle of %d CAs, as libcurl's defaults read it"
                      % a.cas, "value": base, "unit": "MiB"},
            details={"directory": d, "bundle": b},
            missing=None if have else "no smaps_rollup for the agents"))


def cmd_median(a):
    """Median of numbers on stdin (one a line)."""
    xs = [float(x) for x in sys.stdin.read().split()]
    print(median(xs) if xs else "")


# ----------------------------------------------------------------- the table

def fmt(v, unit):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = ("%.0f" if abs(v) >= 100 else "%.1f" if abs(v) >= 10 else "%.2f") % v
    return "%s %s" % (v, unit) if unit not in ("", "x") else ("%s" % v if unit == "" else
                                                              "%s x" % v)


def machine():
    info = {"cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["memMiB"] = int(f.readline().split()[1]) // 1024
    except OSError:
        pass
    try:
        info["curl"] = subprocess.run(["curl", "--version"], capture_output=True, text=True,
                                      timeout=10).stdout.split("\n")[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def cmd_table(a):
    figs = []
    if os.path.exists(a.results):
        with open(a.results) as f:
            figs = [json.loads(line) for line in f if line.strip()]
    doc = {"machine": machine(), "config": json.loads(a.config) if a.config else {},
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "figures": figs}
    rows = [("figure", "measured", "baseline / goal", "met")]
    for fg in figs:
        base = fg.get("baseline")
        goal = fg.get("goalText") or ""
        if base:
            goal = "%s: %s; %s" % (base["label"], fmt(base["value"], base["unit"]), goal)
        m = fg.get("met")
        mark = "n/a" if m is None else "yes" if m else "NO"
        if fg.get("missing"):
            mark += " (%s)" % fg["missing"]
        rows.append((fg["figure"], fmt(fg["value"], fg["unit"]), goal, mark))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, r in enumerate(rows):
        lines.append(" | ".join(r[j].ljust(widths[j]) for j in range(3)) + " | " + r[3])
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths) + "-+-----")
    m = doc["machine"]
    lines.append("")
    lines.append("machine: %s, %s CPUs, %s MiB, Linux %s; load average during the run: %s" % (
        m.get("cpu", "?"), m.get("cpus"), m.get("memMiB"), m.get("kernel"),
        ", ".join("%.1f" % fg["loadavg"] for fg in figs if "loadavg" in fg) or "?"))
    text = "\n".join(lines)
    print(text)
    if a.json:
        doc["table"] = text
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, a.json)


def main():
    p = argparse.ArgumentParser(prog="bench.py")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("heartbeats")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--count", type=int, default=1000)
    s.add_argument("--warmup", type=int, default=20)
    s.add_argument("--timeout", type=int, default=600)
    s.add_argument("--interval-ms", type=int, required=True)
    s.add_argument("--long-poll", type=int, default=1)
    s.add_argument("--baseline-rss-kib", type=int, default=0)
    s.add_argument("--floor-exe", help="bench/curl_floor, for the figures over the floor")
    s.add_argument("--floor-url", help="an HTTPS URL of the control plane for it")
    s.add_argument("--floor-ca", help="the control plane's CA file")
    s.add_argument("--results", required=True)
    s.set_defaults(fn=cmd_heartbeats)

    s = sub.add_parser("pickup")
    s.add_argument("--collector", required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--count", type=int, default=20)
    s.add_argument("--timeout", type=int, default=300)
    s.add_argument("--interval-ms", type=int, required=True)
    s.add_argument("--long-poll", type=int, default=1)
    s.add_argument("--results", required=True)
    s.set_defaults(fn=cmd_pickup)

    s = sub.add_parser("upgrade")
    s.add_argument("--collector", required=True)
    s.add_argument("--old", required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--timeout", type=int, default=300)
    s.add_argument("--log", help="the agent log (launcher output) for exact stage times")
    s.set_defaults(fn=cmd_upgrade)

    s = sub.add_parser("wave")
    s.add_argument("--names", required=True, help="file with one collector name a line")
    s.add_argument("--old", required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--timeout", type=int, default=900)
    s.add_argument("--setup", default="", help="JSON merged into the details")
    s.add_argument("--cp-pid", type=int, help="the control plane's pid, for its CPU time")
    s.add_argument("--parallel", type=int, default=8, help="connections creating the tasks")
    s.add_argument("--kind", choices=("full", "delta"), default="full",
                   help="what the control plane offers: the package, or a delta beside it")
    s.add_argument("--logs", help="directory of the agents' directories (DIR/*/agent.log)")
    s.add_argument("--save", help="write the details as JSON here")
    s.add_argument("--baseline", help="the full wave's saved details: record the bytes against it")
    s.add_argument("--results", required=True)
    s.set_defaults(fn=cmd_wave)

    s = sub.add_parser("watch-hwm")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--every", type=float, default=0.02)
    s.add_argument("--timeout", type=int, default=1800)
    s.add_argument("--ready", help="file created once the first sample is taken")
    s.set_defaults(fn=cmd_watch_hwm)

    s = sub.add_parser("sizes")
    s.add_argument("--dir", required=True)
    s.add_argument("--dl", type=int, required=True)
    s.add_argument("--small", type=int, required=True)
    s.add_argument("--big", type=int, required=True)
    s.add_argument("--results", required=True)
    s.set_defaults(fn=cmd_sizes)

    s = sub.add_parser("rate")
    s.add_argument("--dir", required=True)
    s.add_argument("--cap", required=True, help="agent.download_max_rate, e.g. 50M")
    s.add_argument("--results", required=True)
    s.set_defaults(fn=cmd_rate)

    s = sub.add_parser("e2e")
    s.add_argument("--dir", required=True)
    s.add_argument("--runs", type=int, required=True)
    s.add_argument("--interval-ms", type=int, required=True)
    s.add_argument("--mib", type=int, required=True)
    s.add_argument("--results", required=True)
    s.set_defaults(fn=cmd_e2e)

    s = sub.add_parser("hostile")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--count", type=int, default=200)
    s.add_argument("--cap", type=int, default=131072)
    s.add_argument("--warmup", type=int, default=20)
    s.add_argument("--timeout", type=int, default=300)
    s.add_argument("--results", required=True)
    s.set_defaults(fn=cmd_hostile)

    s = sub.add_parser("delta")
    s.add_argument("--dir", required=True)
    s.add_argument("--pad", type=int, required=True)
    s.add_argument("--v1", required=True)
    s.add_argument("--v2", required=True)
    s.add_argument("--results", required=True)
    s.set_defaults(fn=cmd_delta)

    s = sub.add_parser("record")
    s.add_argument("--results", required=True)
    s.add_argument("json")
    s.set_defaults(fn=cmd_record)

    s = sub.add_parser("proc")
    s.add_argument("--pid", type=int, required=True)
    s.set_defaults(fn=cmd_proc)

    s = sub.add_parser("trust")
    s.add_argument("--results", required=True)
    s.add_argument("--dir-pid", type=int, required=True)
    s.add_argument("--bundle-pid", type=int, required=True)
    s.add_argument("--cas", type=int, required=True)
    s.add_argument("--heartbeats", type=int, required=True)
    s.set_defaults(fn=cmd_trust)

    s = sub.add_parser("median")
    s.set_defaults(fn=cmd_median)

    s = sub.add_parser("table")
    s.add_argument("--results", required=True)
    s.add_argument("--json")
    s.add_argument("--config", default="")
    s.set_defaults(fn=cmd_table)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""demo.py: the control-plane side of `make demo` (demo/demo.sh), standard library only.

Talks to the reference control plane over HTTPS (certificate checked against the demo's
throwaway CA) with the management credentials, and prints what an operator would look at:
the collector as the management API shows it, and an upgrade task followed live from the
server's task events (stages, a download bar on a terminal, status changes, final summary).

    demo.py collector NAME [TIMEOUT_S]          wait for NAME to register and heartbeat
    demo.py follow TASK_ID [TIMEOUT_S]          follow a task until it ends; exit 0 on 2, 3 on 3
                                                (DEMO_STATE_DIR: also the trial log there)
    demo.py heartbeating NAME VERSION [TIMEOUT] wait until NAME heartbeats running VERSION

Environment: CP_URL, CP_CA, CP_ACCESS_ID, CP_ACCESS_KEY (as tests/e2e/lib/cp.sh exports them);
DEMO_COLOR=1 for colours, DEMO_TTY=1 for the live progress bar. Errors are one line on stderr.
"""
import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

INDENT = "    "
LABEL = 14
STATUS_NAMES = {0: "not started", 1: "pending", 6: "progressing", 2: "succeeded", 3: "failed"}
BAR_WIDTH = 24


class DemoError(Exception):
    pass


class Style:
    def __init__(self, on):
        self.on = on

    def _wrap(self, code, text):
        return "\033[%sm%s\033[0m" % (code, text) if self.on else text

    def bold(self, t):
        return self._wrap("1", t)

    def dim(self, t):
        return self._wrap("2", t)

    def good(self, t):
        return self._wrap("32", t)

    def bad(self, t):
        return self._wrap("31", t)

    def busy(self, t):
        return self._wrap("33", t)

    def status(self, s):
        text = "%d %-11s" % (s, STATUS_NAMES.get(s, "?"))
        return self.good(text) if s == 2 else self.bad(text) if s == 3 else self.busy(text)


ST = Style(os.environ.get("DEMO_COLOR") == "1")
TTY = os.environ.get("DEMO_TTY") == "1"


class Api:
    """The management and admin APIs, one short HTTPS request at a time."""

    def __init__(self):
        try:
            self.base = os.environ["CP_URL"].rstrip("/") + "/api/v1"
            ca = os.environ["CP_CA"]
            cred = "%s:%s" % (os.environ["CP_ACCESS_ID"], os.environ["CP_ACCESS_KEY"])
        except KeyError as e:
            raise DemoError("%s is not set (run me from demo/demo.sh)" % e.args[0])
        self.ctx = ssl.create_default_context(cafile=ca)
        self.auth = "Basic " + base64.b64encode(cred.encode()).decode()
        self.down_since = None

    def _reached(self, ok):
        """Gives up when the server has not answered for 10 s (it was stopped or crashed)."""
        if ok:
            self.down_since = None
        elif self.down_since is None:
            self.down_since = time.monotonic()
        elif time.monotonic() - self.down_since > 10:
            raise DemoError("the control plane at %s does not answer" % self.base[:-len("/api/v1")])

    def get(self, path):
        """(HTTP status, parsed body or None); (0, None) when the server cannot be reached."""
        req = urllib.request.Request(self.base + path, headers={
            "Authorization": self.auth, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                reply = r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            reply = e.code, None
        except (urllib.error.URLError, OSError, ValueError):
            reply = 0, None
        self._reached(reply[0] != 0)
        return reply


def line(label, text=""):
    print("%s%-*s %s" % (INDENT, LABEL, label, text), flush=True)


def ago(ms_then, ms_now=None):
    secs = max(0.0, ((ms_now if ms_now is not None else time.time() * 1000) - ms_then) / 1000)
    return "%.1fs ago" % secs


def human_bytes(n):
    if n >= 1024 * 1024:
        return "%.1f MiB" % (n / 1048576)
    if n >= 1024:
        return "%d KiB" % (n // 1024)
    return "%d B" % n


def wait_for(timeout, what, probe):
    """Calls probe() every 0.1 s until it returns something true."""
    end = time.monotonic() + timeout
    while True:
        v = probe()
        if v:
            return v
        if time.monotonic() >= end:
            raise DemoError("%s: nothing after %d s" % (what, timeout))
        time.sleep(0.1)


def collector_by_name(api, name):
    st, body = api.get("/collectors/name/" + name)
    return body["collector"] if st == 200 and body else None


def cmd_collector(api, name, timeout=30):
    """Waits for NAME to register, then for one more heartbeat, and shows the server's view."""
    first = wait_for(timeout, "collector %s did not register" % name,
                     lambda: collector_by_name(api, name))
    line("registered", "collector %s %s, collectorVersion %s" % (
        ST.bold(str(first["id"])), json.dumps(first["name"]), first["collectorVersion"]))

    def beat_after_first():
        c = collector_by_name(api, name)
        return c if c and c.get("lastSeenAlive", 0) > first.get("lastSeenAlive", 0) else None

    c = wait_for(timeout, "collector %s registered but sends no heartbeat" % name,
                 beat_after_first)
    st, body = api.get("/collectors/%d" % c["id"])
    if st != 200 or not body:
        raise DemoError("GET /collectors/%d answered %d" % (c["id"], st))
    c = body["collector"]
    line("heartbeating", "GET /api/v1/collectors/%d says:" % c["id"])
    rows = [
        ("osName", c.get("osName"), ""),
        ("osVersion", c.get("osVersion"), ""),
        ("osArch", c.get("osArch"), ""),
        ("osTime", c.get("osTime"), "ms the agent has been running"),
        ("alive", json.dumps(c.get("alive")), ""),
        ("lastSeenAlive", c.get("lastSeenAlive"),
         "%s; moves on every heartbeat" % ago(c.get("lastSeenAlive") or 0)),
    ]
    for key, value, note in rows:
        print("%s  %-14s %s%s" % (INDENT + " " * LABEL, key, value,
                                   "  " + ST.dim("(" + note + ")") if note else ""), flush=True)
    return 0


def cmd_heartbeating(api, name, version, timeout=30):
    """Waits until NAME heartbeats while running VERSION (its lastSeenAlive moves)."""
    def running():
        c = collector_by_name(api, name)
        return c if c and c.get("collectorVersion") == version and c.get("alive") else None

    c0 = wait_for(timeout, "collector %s does not report %s" % (name, version), running)

    def moved():
        c = running()
        return c if c and c["lastSeenAlive"] > c0["lastSeenAlive"] else None

    c = wait_for(timeout, "collector %s reports %s but no heartbeat follows" % (name, version),
                 moved)
    line("heartbeating", "collector %d runs %s: collectorVersion %s, alive %s, lastSeenAlive %s"
         % (c["id"], ST.good(version), c["collectorVersion"], json.dumps(c["alive"]),
            ago(c["lastSeenAlive"])))
    return 0


STAGE_NOTES = {
    "preflight": "the statement's signature, free space",
    "verifying": "size and sha256 as signed",
    "staging": "unpacked and checked against its manifest",
    "switching": "molt-installer apply: current -> versions/{build}",
    "restarting": "{version} exits 75; the supervisor starts {build} on trial",
    "health-check": "{build} on trial: it commits on its first acknowledged heartbeat",
    "committed": "molt-installer commit",
}


class Follower:
    """Prints a task's events as they arrive: one line per status or stage, a live bar while
    downloading on a terminal, plain lines at each progress report otherwise. With a state
    directory, also the trial's starts and the rollback as the supervisor records them."""

    def __init__(self, api, tid, state_dir=None):
        self.api, self.tid, self.state_dir = api, tid, state_dir
        self.seen = {}          # seq -> last shown bytesDone
        self.t0 = None
        self.status = None
        self.stage = None
        self.build = None
        self.live = False       # a bar is on screen without its newline
        self.trial_seen = set()
        self.trial_starts = 0
        self.from_version = "?"

    def elapsed(self, ms):
        if self.t0 is None:
            self.t0 = ms
        return "%5.1fs" % ((ms - self.t0) / 1000)

    def out(self, text, live=False):
        if self.live:
            sys.stdout.write("\r\033[K")
        sys.stdout.write(text if live else text.rstrip() + "\n")
        sys.stdout.flush()
        self.live = live

    def row(self, ms, status_col, stage_col, detail=""):
        return "%s%s  %s  %-18s %s" % (INDENT, ST.dim(self.elapsed(ms)), status_col, stage_col,
                                       detail)

    def bar(self, done, total):
        pct = int(done * 100 / total) if total else 0
        fill = pct * BAR_WIDTH // 100
        text = "%3d%%  %s / %s" % (pct, human_bytes(done), human_bytes(total))
        if TTY:
            return "[%s%s] %s" % ("#" * fill, "." * (BAR_WIDTH - fill), text)
        return text

    def on_event(self, e):
        seq, s = e["seq"], e.get("status")
        stage = e.get("stage") or ""
        done, total = e.get("bytesDone") or 0, e.get("bytesTotal") or 0
        if seq in self.seen:
            # a folded repeat: only a download's bytes move
            if stage == "downloading" and total and done != self.seen[seq]:
                self.seen[seq] = done
                self.progress(e, done, total)
            return
        self.seen[seq] = done
        new_status = s is not None and s != self.status
        if new_status:
            self.status = s
        status_col = ST.status(s) if new_status else " " * 13
        if e["source"] == "server":
            what = e.get("what")
            if what == "created":
                self.out(self.row(e["time"], status_col, "", "created through the management API"))
            elif what in ("delivered", "command"):
                self.build = e.get("buildVersion")
                self.out(self.row(e["time"], status_col, "",
                                  "command for build %s on a heartbeat reply" % self.build))
            elif new_status:
                self.out(self.row(e["time"], status_col, "", e.get("message") or what))
            return
        if stage == self.stage and not new_status:
            return
        self.stage = stage
        self.build = e.get("buildVersion") or self.build
        idx = ST.dim("(%s/%s)" % (e.get("stageIndex", "?"), e.get("stageCount", "?")))
        if s == 2:
            detail = ST.good(e.get("message") or "")
        elif s == 3:
            detail = ST.bad(e.get("message") or "")
        elif stage == "accepted":
            self.from_version = e.get("version", "?")
            detail = "%s -> %s" % (e.get("version", "?"), e.get("buildVersion", "?"))
        else:
            detail = STAGE_NOTES.get(stage, "").format(version=e.get("version", "?"),
                                                       build=e.get("buildVersion", "?"))
        self.out(self.row(e["time"], status_col, "%-12s %s" % (stage, idx), detail))
        if stage == "downloading" and total and (done or TTY):
            self.progress(e, done, total)

    def progress(self, e, done, total):
        if not TTY and done == 0:
            return
        self.out(self.row(e["time"], " " * 13, "", self.bar(done, total)),
                 live=TTY and done < total)

    def watch_trial(self):
        """The supervisor's record of the trial (docs/upgrades.md 5.1): starts and rollback."""
        if not self.state_dir or not self.build or self.stage not in ("restarting", "health-check"):
            return
        try:
            with open(os.path.join(self.state_dir, "trial-%s.log" % self.build)) as f:
                lines = f.read().splitlines()
        except OSError:
            return
        for ln in lines:
            if ln in self.trial_seen:
                continue
            self.trial_seen.add(ln)
            now = time.time() * 1000
            if ln.startswith("--- molt-installer: ") and ln.endswith(" ---"):
                self.trial_starts += 1
                self.out(self.row(now, " " * 13, "  trial start %d" % self.trial_starts,
                                  ln[20:-4]))
            elif ln.startswith("# trial of ") and ": rolled back: " in ln:
                self.out(self.row(now, " " * 13, "  rollback", "%s; current -> versions/%s" % (
                    ST.bad(ln.split(": ", 1)[1]), self.from_version)))

    @staticmethod
    def history(events):
        seen = []
        for e in events:
            s = e.get("status")
            if s is not None and (not seen or seen[-1] != s):
                seen.append(s)
        return seen

    def events(self):
        st, body = self.api.get("/admin/tasks/%s/events" % self.tid)
        return body.get("events", []) if st == 200 and body else None

    def run(self, timeout):
        end = time.monotonic() + timeout
        while True:
            events = self.events()
            for e in events or []:
                self.on_event(e)
            self.watch_trial()
            st, task = self.api.get("/collectors/upgrades/%s" % self.tid)
            up = task.get("upgrade") if st == 200 and task else None
            if up and up.get("status") in (2, 3):
                events = self.events() or events or []  # the events up to the end
                for e in events:
                    self.on_event(e)
                return self.finish(up, events)
            if time.monotonic() >= end:
                self.out("")
                raise DemoError("task %s did not end within %d s" % (self.tid, timeout))
            time.sleep(0.1)

    def finish(self, up, events):
        if self.live:
            self.out("")
        hist = " -> ".join(str(s) for s in self.history(events))
        took = (events[-1]["time"] - events[0]["time"]) / 1000 if events else 0
        s = up["status"]
        if s == 2:
            result = ST.good("succeeded") + " in %.1fs" % took
        else:
            result = ST.bad("failed") + " in %.1fs: %s" % (took, up.get("message", ""))
        line("task %s" % self.tid, "status %s  %s" % (ST.bold(hist), result))
        line("", ST.dim("(GET /api/v1/collectors/upgrades/%s; the history from the control "
                        "plane's task events)" % self.tid))
        return 0 if s == 2 else 3


def main(argv):
    if len(argv) < 3 or argv[1] not in ("collector", "follow", "heartbeating"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    api = Api()
    cmd, args = argv[1], argv[2:]
    if cmd == "collector":
        return cmd_collector(api, args[0], *[int(a) for a in args[1:2]])
    if cmd == "heartbeating":
        if len(args) < 2:
            raise DemoError("heartbeating NAME VERSION [TIMEOUT]")
        return cmd_heartbeating(api, args[0], args[1], *[int(a) for a in args[2:3]])
    follower = Follower(api, args[0], os.environ.get("DEMO_STATE_DIR"))
    return follower.run(int(args[1]) if len(args) > 1 else 60)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except DemoError as e:
        print("demo: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a demo never shows a stack trace
        print("demo: unexpected error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)

"""The management API of the seed documents (Basic auth, rate-limited): collectors, upgrade
targets and upgrade tasks. A mixin of server.App; the rules live in the store (cp_store).
"""

import time
from urllib.parse import unquote

from cp_common import bad_request
from cp_http import Response, json_response

FORBIDDEN_NAME_CHARS = set(";/%\\")


class ManagementApi:
    """The management API: collectors and upgrade tasks (Basic auth)."""

    # ------------------------------------------------------------ management API

    def list_collectors(self, req):
        flt = req.query.get("filter", [None])[-1]
        if flt == "":
            flt = None
        if flt not in (None, "installed", "hosted", "dead", "alive"):
            raise bad_request("filter must be one of installed, hosted, dead, alive")
        limit = self.q_int(req, "limit", 1000)
        offset = self.q_int(req, "offset", 0)
        return json_response(200, {"collectors": self.store.list_collectors(flt, limit, offset)})

    def create_hosted(self, req):
        c, tag = self.store.create_hosted(self.json_body(req))
        return json_response(200, {"collector": c}, {"ETag": tag})

    def _offline_days(self, req):
        return self.q_int(req, "aliveBeforeDays", 100, minimum=1)

    def get_offline(self, req):
        days = self._offline_days(req)
        limit = self.q_int(req, "limit", 1000)
        offset = self.q_int(req, "offset", 0)
        return json_response(200, {"collectors": self.store.offline(days, limit, offset)})

    def delete_offline(self, req):
        n = self.store.delete_offline(self._offline_days(req))
        return Response(200, b"The delete task has been initiated.",
                        {"Content-Type": "text/plain; charset=utf-8",
                         "X-Deleted-Collectors": str(n)})

    def _collector_reply(self, req, c, tag):
        inm = req.h.headers.get("If-None-Match")
        if inm and tag in [t.strip() for t in inm.split(",")]:
            return Response(304, b"", {"ETag": tag, "Content-Length": "0"})
        return json_response(200, {"collector": c}, {"ETag": tag})

    def get_collector(self, req):
        c, tag = self.store.get_collector(cid=self.int_id(req.params["cid"]))
        return self._collector_reply(req, c, tag)

    def get_by_name(self, req):
        name = unquote(req.params["name"])
        if any(ch in FORBIDDEN_NAME_CHARS for ch in name) or "\x00" in name:
            raise bad_request("collector names with ; / % or \\ are not supported",
                              "collector.name.invalid")
        c, tag = self.store.get_collector(name=name)
        return self._collector_reply(req, c, tag)

    def put_collector(self, req):
        cid = self.int_id(req.params["cid"])
        body = self.json_body(req)
        c, tag = self.store.update_collector(cid, req.h.headers.get("If-Match"), body)
        return json_response(200, {"collector": c}, {"ETag": tag})

    def delete_collector(self, req):
        self.store.delete_collector(self.int_id(req.params["cid"]))
        return Response(200, b"")

    def targets(self, req):
        versions = self.builds.versions()
        latest = versions[-1] if versions else None
        return json_response(200, {"targets": [{"version": v, "latest": v == latest}
                                               for v in versions]})

    def upgradable(self, req):
        to = req.query.get("toVersion", [None])[-1] or None
        limit = self.q_int(req, "limit", 50)
        offset = self.q_int(req, "offset", 0)
        return json_response(200, {"collectors": self.store.upgradable(to, limit, offset)})

    def _offered(self, collector, version, os_name, arch):
        """The channel the collector follows offers it this build (no channel: nothing to gate)."""
        ch = self.channels.get(collector["channel_name"] or "stable")
        return ch is None or ch.admits(collector["machine_id"], version, os_name, arch,
                                       int(time.time() * 1000))

    def create_task(self, req):
        tid = self.store.create_task(self.json_body(req), self._offered)
        href = "/v1/collectors/upgrades/%d" % tid
        return json_response(202, {"id": str(tid), "link": {"rel": "self", "href": href}},
                             {"Location": "/api" + href})

    def _task_id(self, req):
        return self.int_id(req.params["tid"], 404, "task.unknown",
                           "The upgrade task ID was not found.")

    def get_task(self, req):
        return json_response(200, {"upgrade": self.store.get_task(self._task_id(req))})

    def cancel_task(self, req):
        return json_response(200, {"upgrade": self.store.cancel_task(self._task_id(req))})

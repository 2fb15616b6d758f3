"""The admin API and the request faults: arming faults, request counters, the shiftable clock,
heartbeat logs and task event logs (Basic auth, never rate-limited or faulted). A mixin of
server.App; the fault model is cp_faults.
"""

import cp_faults
from cp_common import ApiError, bad_request, log
from cp_http import ERROR_CODES, JSON_TYPE, Response, json_response, request_id


class AdminApi:
    """The admin API (/api/v1/admin/) and the request faults it arms."""

    def _request_faults(self, method, path, collector, bearer):
        cid = collector["id"] if collector is not None else None
        download = path.startswith(cp_faults.DOWNLOAD_PREFIX)
        waits = ("delay",) if download else ("delay", "stall")
        for f in self.faults.take(waits, method, path, cid, bearer):
            self._sleep(f["ms"] / 1000.0 if f["type"] == "delay" else f["seconds"])
        kinds = ("error", "token", "malformed") + (() if download else ("drop",))
        taken = self.faults.take(kinds, method, path, cid, bearer, first_only=True)
        if not taken:
            return None
        f = taken[0]
        log("fault.fired", type=f["type"], id=f["id"], path=path)
        if f["type"] == "error":
            headers = {}
            if f["retryAfter"] is not None:
                headers["Retry-After"] = str(f["retryAfter"])
            code = f["code"] or ERROR_CODES.get(f["status"], "injected.fault")
            return json_response(f["status"], {"status": f["status"], "id": request_id(),
                                               "code": code,
                                               "message": f["message"] or "injected fault"},
                                 headers)
        if f["type"] == "token":
            return json_response(401, {"status": 401, "id": request_id(), "code": "token.invalid",
                                       "message": "collector token not recognised"})
        if f["type"] == "malformed":
            return Response(f["status"], cp_faults.malformed_body(f), {"Content-Type": JSON_TYPE})
        # drop: a reply cut after afterBytes bytes, then the connection closed
        partial = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200"
                   b"\r\n\r\n{\"heartbeatIntervalMs\": 15000, \"longPoll\": true, \"command\"")
        return Response(0, partial[: f["afterBytes"]], {"reset": f["reset"]}, close=True)

    # ------------------------------------------------------------ admin API

    def admin_state(self, req):
        return json_response(200, {"faults": self.faults.list(), "counters":
                                   self.counters.snapshot(), "config": self._config(),
                                   "clockOffsetMs": self.clock.offset_ms,
                                   "now": self.clock.now()})

    def _config(self):
        c = self.store.cfg.as_json()
        c.update({"rateLimit": self.args.rate_limit, "baseUrl": self.base_url,
                  "builds": self.builds.dir, "longPollsWaiting": self.store.long_polls})
        return c

    def admin_add_faults(self, req):
        body = self.json_body(req)
        specs = body.get("faults") if isinstance(body, dict) and "faults" in body else [body]
        if not isinstance(specs, list) or not specs:
            raise bad_request('the body is a fault object or {"faults": [...]}')
        try:
            norm = [cp_faults.normalize(s) for s in specs]
        except cp_faults.FaultError as e:
            raise bad_request(str(e), "fault.invalid")
        out = []
        for f in norm:
            if f["type"] == "revoke":
                if not self.store.revoke_token(f["collectorId"]):
                    raise ApiError(404, "InvalidCollector", "No collector %d." % f["collectorId"])
                log("fault.revoked", collector=f["collectorId"])
                out.append(dict(f, revoked=True))
            else:
                out.append(self.faults.add(f))
                log("fault.armed", **{k: v for k, v in out[-1].items() if v is not None})
        return json_response(200, {"faults": out})

    def admin_reset_faults(self, req):
        self.faults.reset()
        log("fault.reset")
        return json_response(200, {"faults": []})

    def admin_remove_fault(self, req):
        if not self.faults.remove(int(req.params["fid"])):
            raise ApiError(404, "fault.unknown", "No such fault.")
        return json_response(200, {"faults": self.faults.list()})

    def admin_stats(self, req):
        s = self.counters.snapshot()
        s["longPollsWaiting"] = self.store.long_polls
        return json_response(200, s)

    def admin_reset_stats(self, req):
        self.counters.reset()
        return json_response(200, self.counters.snapshot())

    def admin_clock(self, req):
        return json_response(200, {"offsetMs": self.clock.offset_ms, "now": self.clock.now()})

    def admin_set_clock(self, req):
        body = self.json_body(req)
        if not isinstance(body, dict):
            raise bad_request('the body is {"advanceMs": N} or {"offsetMs": N}')
        for k in ("advanceMs", "offsetMs"):
            v = body.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise bad_request("%s must be an integer" % k)
        if body.get("offsetMs") is not None:
            self.clock.offset_ms = body["offsetMs"]
        elif body.get("advanceMs") is not None:
            self.clock.offset_ms += body["advanceMs"]
        else:
            raise bad_request('the body is {"advanceMs": N} or {"offsetMs": N}')
        log("clock.set", offsetMs=self.clock.offset_ms)
        self.store.expire_tasks()
        self.store.expire_ephemeral()
        return self.admin_clock(req)

    def admin_heartbeats(self, req):
        cid = int(req.params["cid"])
        return json_response(200, {"collectorId": cid, "heartbeats": self.store.heartbeats(cid)})

    def admin_tasks(self, req):
        cid = req.query.get("collectorId", [None])[-1]
        st = req.query.get("status", [None])[-1]
        try:
            cid = int(cid) if cid else None
            st = int(st) if st else None
        except ValueError:
            raise bad_request("collectorId and status are integers")
        return json_response(200, {"tasks": self.store.list_tasks(cid, st)})

    def admin_task(self, req):
        tid = int(req.params["tid"])
        return json_response(200, {"upgrade": self.store.get_task(tid),
                                   "events": self.store.task_events(tid)})

    def admin_task_events(self, req):
        tid = int(req.params["tid"])
        return json_response(200, {"taskId": str(tid), "events": self.store.task_events(tid)})

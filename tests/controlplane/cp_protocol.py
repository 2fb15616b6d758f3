"""The collector protocol (docs/protocol.md): register, heartbeat with long-poll, reports, events.
A mixin of server.App; the rules live in the store (cp_store, cp_tasks).
"""

from cp_common import bad_request
from cp_http import json_response


class CollectorProtocol:
    """register, heartbeat, reports and events (collector token)."""

    # ------------------------------------------------------------ collector protocol

    def register(self, req):
        return json_response(200, self.store.register(self.json_body(req)))

    def heartbeat(self, req):
        wait = self.q_int(req, "waitMs", 0)
        cfg = self.store.cfg
        wait = min(wait, cfg.long_poll_max_ms) if cfg.long_poll else 0
        body = self.json_body(req)
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        reply = self.store.heartbeat(req.collector["id"], body, wait, self.build_base(req.h))
        return json_response(200, reply)

    def report(self, req):
        return json_response(200, self.store.report(req.collector["id"], self.json_body(req)))

    def event(self, req):
        return json_response(200, self.store.collector_event(req.collector["id"],
                                                             self.json_body(req)))

"""The collector protocol (docs/protocol.md): register, heartbeat with long-poll, reports, events.
A mixin of server.App; the rules live in the store (cp_store, cp_tasks).
"""

from cp_common import ApiError, bad_request
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
        ch = self.channels.get(body.get("channelName") or "stable")
        if ch is not None:
            reply["channelSerial"] = ch.serial
        kr = self.keyrings.get("release")
        if kr is not None:
            reply["keyringSerial"] = kr.serial
        return json_response(200, reply)

    def get_channel(self, req):
        """The newest channel of a name, as on disk (docs/security.md 6.5): agents verify it."""
        name = req.query.get("name", ["stable"])[-1]
        ch = self.channels.get(name)
        if ch is None:
            raise ApiError(404, "channel.unknown", "There is no channel named %r." % name[:64])
        return json_response(200, ch.reply())

    def get_keyring(self, req):
        """The newest release keyring, as on disk (docs/security.md 6.6): agents verify it."""
        kr = self.keyrings.get("release")
        if kr is None:
            raise ApiError(404, "keyring.unknown", "There is no release keyring.")
        return json_response(200, kr.reply())

    def report(self, req):
        return json_response(200, self.store.report(req.collector["id"], self.json_body(req)))

    def event(self, req):
        return json_response(200, self.store.collector_event(req.collector["id"],
                                                             self.json_body(req)))

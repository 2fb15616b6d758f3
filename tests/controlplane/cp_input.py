"""Validation of what collectors send: task reports and events (docs/protocol.md, section 4) and
the host facts of a registration or heartbeat; bad input is a 400 naming the field.
"""

import cp_version
from cp_common import ApiError, bad_request


def opt_str(obj, key, maxlen=256, required=False):
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


def opt_int(obj, key, minimum=0, required=False):
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


def opt_bool(obj, key):
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise bad_request("%s must be true or false" % key)
    return v


MIRRORS_MAX = 4          # the agent's MOLT_BUILD_MIRRORS_MAX
MIRROR_URL_MAX = 1024    # a base: with the package's name it stays within the agent's 2048


def opt_mirrors(obj, key="mirrors"):
    """An upgrade's mirrors: at most 4 https base URLs (a host, no credentials, no query or
    fragment: the package's name is appended), tried by the agent before the server itself."""
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or len(v) > MIRRORS_MAX:
        raise bad_request("%s must be a list of at most %d URLs" % (key, MIRRORS_MAX))
    for i, u in enumerate(v):
        where = "%s[%d]" % (key, i)
        if not isinstance(u, str) or not 0 < len(u) <= MIRROR_URL_MAX:
            raise bad_request("%s must be a URL of 1..%d characters" % (where, MIRROR_URL_MAX))
        if any(ord(c) <= 0x20 or ord(c) >= 0x7f for c in u):
            raise bad_request("%s has a space, a control or a non-ASCII character" % where)
        if not u.lower().startswith("https://"):
            raise bad_request("%s is not an https:// URL" % where)
        auth = u[8:].split("/", 1)[0]
        if not auth or auth.startswith(":") or "@" in auth:
            raise bad_request("%s must name a host and no credentials" % where)
        if "?" in u or "#" in u:
            raise bad_request("%s must not have a query or fragment" % where)
    return v


def opt_fields(obj, key="fields"):
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
    v = opt_str(obj, key, 64, required)
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
            "stage": opt_str(r, "stage", 64),
            "stageIndex": opt_int(r, "stageIndex"),
            "stageCount": opt_int(r, "stageCount"),
            "bytesDone": opt_int(r, "bytesDone"),
            "bytesTotal": opt_int(r, "bytesTotal"),
            "version": _version(r, "version"),
            "buildVersion": _version(r, "buildVersion"),
        }
    except ApiError as e:
        raise bad_request("%s.%s" % (where, e.message))
    msg = r.get("message")
    if msg is not None and not isinstance(msg, str):
        raise bad_request("%s.message must be a string" % where)
    out["message"] = (msg or "")[:4096]
    try:
        served = opt_str(r, "servedBy", 512)
    except ApiError as e:
        raise bad_request("%s.%s" % (where, e.message))
    if served:
        out["servedBy"] = served
    return out


EVENT_TYPES = ("rolled-back-after-commit",)
EVENT_FIELDS = ("taskId", "type", "fromVersion", "toVersion", "reason", "at")
EVENT_REASON_MAX = 512


def parse_event(e):
    """Validate a collector event (docs/protocol.md, section 4): every field required, typed and
    bounded, nothing else allowed: the server must not store what it does not understand."""
    if not isinstance(e, dict):
        raise bad_request("the event must be a JSON object")
    for k in e:
        if k not in EVENT_FIELDS:
            raise bad_request("event.%.64s is not a known field" % k)
    tid = e.get("taskId")
    if not isinstance(tid, str) or not tid.isdigit() or not 0 < len(tid) <= 18:
        raise bad_request("event.taskId must be a string of 1 to 18 digits")
    typ = e.get("type")
    if typ not in EVENT_TYPES:
        raise bad_request("event.type must be one of %s" % ", ".join(EVENT_TYPES))
    try:
        out = {
            "taskId": tid, "type": typ,
            "fromVersion": _version(e, "fromVersion", required=True),
            "toVersion": _version(e, "toVersion", required=True),
            "reason": opt_str(e, "reason", EVENT_REASON_MAX, required=True),
            "at": opt_int(e, "at", required=True),
        }
    except ApiError as x:
        raise bad_request("event.%s" % x.message)
    if out["fromVersion"] == out["toVersion"]:
        raise bad_request("event.fromVersion and event.toVersion must differ")
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in out["reason"]):
        raise bad_request("event.reason must not contain control characters")
    if out["at"] > 2 ** 53:
        raise bad_request("event.at is out of range")
    return out


def parse_facts(body, registering):
    """Host facts of a registration or heartbeat body."""
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    f = {
        "collector_version": _version(body, "collectorVersion", required=True),
        "os_name": opt_str(body, "osName"),
        "os_version": opt_str(body, "osVersion"),
        "os_arch": opt_str(body, "osArch", 64),
        "os_time": opt_int(body, "osTime"),
        "uptime_ms": opt_int(body, "uptimeMs"),
        "host_name": opt_str(body, "hostName", 128),
        "time_zone": opt_str(body, "timeZone", 64),
        "channel_name": opt_str(body, "channelName", 64),
        "channel_serial": opt_int(body, "channelSerial"),
        "channel_age_ms": opt_int(body, "channelAgeMs", minimum=-2 ** 63),  # a skewed clock
        "channel_state": opt_str(body, "channelState", 16),
        "keyring_serial": opt_int(body, "keyringSerial"),
    }
    if f["channel_state"] not in (None, "off", "none", "lapsed", "expired", "ok"):
        raise bad_request("channelState must be off, none, lapsed, expired or ok")
    if registering:
        f["machine_id"] = opt_str(body, "machineId", 128, required=True)
        if not f["machine_id"].strip():
            raise bad_request("machineId must not be empty")
        name = opt_str(body, "name", 128) or f["host_name"]
        if not name or not name.strip():
            raise bad_request("name (or hostName) is required")
        f["name"] = name
        f["ephemeral"] = opt_bool(body, "ephemeral") or False
        f["category"] = opt_str(body, "category", 1024)
        f["description"] = opt_str(body, "description", 1024)
        f["fields"] = opt_fields(body)
    return f

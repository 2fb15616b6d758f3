"""Release channels in the builds directory (docs/security.md section 6).

For a channel NAME the directory holds NAME.channel.json and NAME.channel.json.sig, as
`molt-pack channel` and mkrelease.sh write them. The server reads the document only for its serial
(announced in heartbeat replies) and its rollouts (which hosts it offers a build to); it never signs
or changes it, and hands document and signature set to agents exactly as they are on disk: the agent
verifies them. Re-read when either file changes, so tests can swap a channel while the server runs.

The release keyring (6.6) is served the same way from release.keyring.json and its .sig
(KeyringIndex): the server reads only its serial, announced as keyringSerial.
"""

import base64
import hashlib
import json
import os
import re
import threading

SUFFIX = ".channel.json"
MAX_DOC = 64 * 1024
MAX_SIG = 4 * 1024
NAME_RE = re.compile(r"^[a-z0-9_]{1,64}$")
BUCKETS = 10000


def bucket(machine_id, version):
    """The host's rollout bucket: docs/security.md 6.4, as molt_channel_bucket computes it."""
    h = hashlib.sha256(b"molt-rollout\0" + machine_id.encode() + b"\0" + version.encode()).digest()
    return int.from_bytes(h[:8], "big") % BUCKETS


class Channel:
    __slots__ = ("name", "serial", "doc", "sig", "parsed", "field")

    def reply(self):
        return {"name": self.name, "serial": self.serial,
                self.field: base64.b64encode(self.doc).decode("ascii"),
                "signature": base64.b64encode(self.sig).decode("ascii")}

    def admits(self, machine_id, version, os_name, arch, now_ms):
        """True when the channel's rollout offers this build to this host (the agent decides)."""
        for b in self.parsed.get("builds", []):
            if (b.get("version"), b.get("os"), b.get("arch")) == (version, os_name, arch):
                r = b.get("rollout") or {}
                if now_ms < r.get("notBefore", 0):
                    return False
                return bucket(machine_id or "", version) < r.get("percent", 0) * (BUCKETS // 100)
        return False


class ChannelIndex:
    """Signed documents NAME<suffix> (+ .sig) of the builds directory; field: the reply's member."""

    def __init__(self, directory, suffix=SUFFIX, field="channel"):
        self.dir = directory
        self.suffix = suffix
        self.field = field
        self.lock = threading.Lock()
        self.cache = {}   # name -> (key, Channel or None)

    def _key(self, path):
        try:
            a, b = os.stat(path), os.stat(path + ".sig")
        except OSError:
            return None
        return (a.st_mtime_ns, a.st_size, b.st_mtime_ns, b.st_size)

    def get(self, name):
        """The channel NAME as on disk, or None (no such files, unreadable, or too large)."""
        if not NAME_RE.match(name or ""):
            return None
        path = os.path.join(self.dir, name + self.suffix)
        key = self._key(path)
        with self.lock:
            hit = self.cache.get(name)
            if hit and hit[0] == key:
                return hit[1]
            ch = self._load(name, path, self.field) if key else None
            self.cache[name] = (key, ch)
            return ch

    @staticmethod
    def _load(name, path, field):
        try:
            with open(path, "rb") as f:
                doc = f.read(MAX_DOC + 1)
            with open(path + ".sig", "rb") as f:
                sig = f.read(MAX_SIG + 1)
        except OSError:
            return None
        ch = Channel()
        ch.name, ch.doc, ch.sig, ch.field = name, doc, sig, field
        try:
            ch.parsed = json.loads(doc)
            serial = ch.parsed.get("serial")
        except (ValueError, AttributeError):
            ch.parsed, serial = {}, None
        # A document the server cannot read is still served (tests feed agents broken ones);
        # it is announced with serial 1 so that agents fetch it and say why they refuse it.
        ch.serial = serial if isinstance(serial, int) and serial > 0 else 1
        return ch


def KeyringIndex(directory):
    """The release keyring: release.keyring.json and .sig, served as {"keyring","signature"}."""
    return ChannelIndex(directory, ".keyring.json", "keyring")

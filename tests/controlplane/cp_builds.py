"""Index of the builds directory: one entry per release statement that molt-pack wrote.

For a package P the directory holds P, P.statement.json and P.sig. The server reads statements only to
know which builds exist (version, os, arch, oldest applicable version); it never verifies them, and it
hands the statement and signature bytes to agents exactly as they are on disk. The directory is
rescanned whenever a statement, a signature or the directory itself changes, so tests can add builds
while the server runs.
"""

import base64
import hashlib
import json
import os
import sys
import threading

import cp_version

STATEMENT_SUFFIX = ".statement.json"
SIG_SUFFIX = ".sig"
MAX_STATEMENT = 64 * 1024

_ARCH_ALIASES = {
    "x86_64": "amd64", "x64": "amd64", "amd64": "amd64",
    "arm64": "aarch64", "aarch64": "aarch64",
    "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86", "x86": "x86",
}


def norm_arch(arch):
    a = (arch or "").strip().lower()
    return _ARCH_ALIASES.get(a, a)


def norm_os(name):
    return (name or "").strip().lower()


class Build:
    __slots__ = ("version", "os", "arch", "min_version", "size", "sha256", "package", "path",
                 "statement", "signature", "created", "release")

    def command_object(self, base_url, mirrors=None):
        """The `build` object of an upgrade command (docs/protocol.md, section 3). Each of
        `mirrors` (base URLs, cp_input.opt_mirrors) serves the package under its own name."""
        out = {
            "version": self.version,
            "url": base_url + "/builds/" + self.package,
            "size": self.size,
            "sha256": self.sha256,
            "statement": base64.b64encode(self.statement).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }
        if mirrors:
            out["downloadUrls"] = [m.rstrip("/") + "/" + self.package for m in mirrors]
        return out

    def applies_to(self, running):
        """True when a collector running `running` may apply this build."""
        return not self.min_version or cp_version.cmp(running, self.min_version) >= 0


def _log(msg):
    print("cp: " + msg, file=sys.stderr, flush=True)


class BuildIndex:
    def __init__(self, directory):
        self.dir = directory
        self._lock = threading.Lock()
        self._key = None
        self._builds = []
        self._bad = {}
        self._delta_sums = {}  # (path, mtime_ns, size) -> sha256 of a delta file

    def _scan_key(self):
        try:
            names = sorted(os.listdir(self.dir))
        except OSError:
            return ()
        key = []
        for n in names:
            if n.endswith(STATEMENT_SUFFIX) or n.endswith(SIG_SUFFIX):
                try:
                    st = os.stat(os.path.join(self.dir, n))
                except OSError:
                    continue
                key.append((n, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(key)

    def _load_one(self, name):
        path = os.path.join(self.dir, name)
        with open(path, "rb") as f:
            raw = f.read(MAX_STATEMENT + 1)
        if len(raw) > MAX_STATEMENT:
            raise ValueError("statement larger than %d bytes" % MAX_STATEMENT)
        st = json.loads(raw.decode("utf-8"))
        if not isinstance(st, dict):
            raise ValueError("statement is not a JSON object")
        version = st.get("version")
        if not cp_version.valid(version):
            raise ValueError("statement has no valid version")
        package = st.get("package") or name[: -len(STATEMENT_SUFFIX)]
        if not isinstance(package, str) or "/" in package or package.startswith("."):
            raise ValueError("statement names an invalid package file")
        ppath = os.path.join(self.dir, package)
        if not os.path.isfile(ppath):
            raise ValueError("package file %s is missing" % package)
        b = Build()
        b.version = version
        b.os = norm_os(st.get("os") or "linux")
        b.arch = norm_arch(st.get("arch") or "amd64")
        mv = st.get("minVersion") or ""
        b.min_version = mv if cp_version.valid(mv) else ""
        size = st.get("size")
        b.size = size if isinstance(size, int) and size >= 0 else os.path.getsize(ppath)
        b.sha256 = st.get("sha256") if isinstance(st.get("sha256"), str) else ""
        b.package = package
        b.path = ppath
        b.release = st.get("release") if isinstance(st.get("release"), str) else ""
        b.created = st.get("created") if isinstance(st.get("created"), int) else 0
        b.statement = raw
        try:
            with open(ppath + SIG_SUFFIX, "rb") as f:
                b.signature = f.read(MAX_STATEMENT)
        except OSError:
            b.signature = b""
        return b

    def refresh(self):
        key = self._scan_key()
        with self._lock:
            if key == self._key:
                return self._builds
            builds = []
            for n, *_ in key:
                if not n.endswith(STATEMENT_SUFFIX):
                    continue
                try:
                    builds.append(self._load_one(n))
                    self._bad.pop(n, None)
                except (OSError, ValueError, UnicodeDecodeError) as e:
                    if self._bad.get(n) != str(e):
                        _log("build.skipped file=%s reason=%s" % (n, e))
                    self._bad[n] = str(e)
            builds.sort(key=lambda b: cp_version.sort_key(b.version))
            self._builds = builds
            self._key = key
            return builds

    def versions(self):
        """Distinct versions, oldest first."""
        seen = {}
        for b in self.refresh():
            seen.setdefault(b.version, b)
        return sorted(seen, key=cp_version.sort_key)

    def latest(self):
        v = self.versions()
        return v[-1] if v else None

    def for_platform(self, os_name, arch):
        o, a = norm_os(os_name), norm_arch(arch)
        return [b for b in self.refresh() if b.os == o and b.arch == a]

    def delta_for(self, base, b, base_url):
        """The `build.delta` object for a collector running `base`, or None: a delta that
        `molt-pack delta` wrote into the directory as molt-<base>-to-<version>-<os>-<arch>.delta
        (docs/protocol.md, section 3). Its size and sha256 are the file's as it is now."""
        name = "molt-%s-to-%s-%s-%s.delta" % (base, b.version, b.os, b.arch)
        path = os.path.join(self.dir, name)
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (path, st.st_mtime_ns, st.st_size)
        with self._lock:
            digest = self._delta_sums.get(key)
        if digest is None:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            digest = h.hexdigest()
            with self._lock:
                self._delta_sums[key] = digest
        return {"baseVersion": base, "url": base_url + "/builds/" + name, "size": st.st_size,
                "sha256": digest}

    def find(self, version, os_name, arch):
        for b in self.for_platform(os_name, arch):
            if cp_version.equal(b.version, version):
                return b
        return None

    def next_hop(self, running, target, os_name, arch):
        """The build to apply now on the way from `running` to `target`, or None.

        The target itself when `running` may apply it; otherwise the highest build below the
        target that `running` may apply and that moves the collector forward.
        """
        builds = self.for_platform(os_name, arch)
        tb = next((b for b in builds if cp_version.equal(b.version, target)), None)
        if tb is None:
            return None
        if not running or not cp_version.valid(running) or tb.applies_to(running):
            return tb
        best = None
        for b in builds:
            if (cp_version.cmp(b.version, target) < 0 and cp_version.cmp(b.version, running) > 0
                    and b.applies_to(running)):
                if best is None or cp_version.cmp(b.version, best.version) > 0:
                    best = b
        return best

    def path_to(self, running, target, os_name, arch):
        """The versions a collector goes through to reach target, or None if it cannot."""
        path = []
        cur = running
        for _ in range(64):
            hop = self.next_hop(cur, target, os_name, arch)
            if hop is None:
                return None
            path.append(hop.version)
            if cp_version.equal(hop.version, target):
                return path
            cur = hop.version
        return None

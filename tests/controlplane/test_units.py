#!/usr/bin/env python3
"""Unit tests of the control plane's parts that need no process: version ordering, the builds
index and its hop selection, durations, Range parsing, fault specs."""

import json
import os
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cp_builds  # noqa: E402
import cp_downloads  # noqa: E402
import cp_faults  # noqa: E402
import cp_tasks  # noqa: E402
import cp_version  # noqa: E402
import cptest  # noqa: E402
import server  # noqa: E402
import taprunner  # noqa: E402


class VersionTest(unittest.TestCase):
    def test_order_matches_lib_version_c(self):
        """the same cases as tests/unit/test_version.c, plus run and separator rules"""
        lt = [("20.1-2749", "20.2-100"), ("20.9-99", "20.10-1"), ("19.115-37", "20.1-2749"),
              ("20.1", "20.1-5"), ("1.0", "1.0.1"), ("1.0-a", "1.0-b"), ("1.0.1", "1.0a"),
              ("9", "10"), ("1.0", "1.0a")]
        for a, b in lt:
            with self.subTest(a=a, b=b):
                self.assertEqual(cp_version.cmp(a, b), -1)
                self.assertEqual(cp_version.cmp(b, a), 1)
        self.assertEqual(cp_version.cmp("20.1-2749", "20.1-2749"), 0)
        self.assertEqual(cp_version.cmp("20.01", "20.1"), 0)
        self.assertTrue(cp_version.equal("20.01", "20.1"))

    def test_sort_and_valid(self):
        vs = ["20.10-1", "20.2-100", "20.9-99", "19.115-37", "20.1-2749"]
        self.assertEqual(sorted(vs, key=cp_version.sort_key),
                         ["19.115-37", "20.1-2749", "20.2-100", "20.9-99", "20.10-1"])
        self.assertTrue(cp_version.valid("20.1-2749"))
        for bad in ("", "../etc", "v1", "1 2", "1/2", "x" * 65, None, 7):
            self.assertFalse(cp_version.valid(bad), bad)


class BuildIndexTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="molt-cp-builds-")
        self.index = cp_builds.BuildIndex(self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_scan_and_rescan(self):
        self.assertEqual(self.index.versions(), [])
        self.assertIsNone(self.index.latest())
        cptest.make_build(self.dir, "20.2-100")
        cptest.make_build(self.dir, "20.1-2749")
        self.assertEqual(self.index.versions(), ["20.1-2749", "20.2-100"])
        cptest.make_build(self.dir, "20.10-1")
        self.assertEqual(self.index.latest(), "20.10-1")
        b = self.index.find("20.10-1", "Linux", "x86_64")
        self.assertIsNotNone(b, "os is case-insensitive and x86_64 is amd64")
        self.assertIsNone(self.index.find("20.10-1", "linux", "aarch64"))

    def test_command_object_carries_exact_bytes(self):
        made = cptest.make_build(self.dir, "20.2-100", arch="arm64")
        b = self.index.find("20.2-100", "linux", "aarch64")
        obj = b.command_object("https://cp.example")
        import base64
        self.assertEqual(base64.b64decode(obj["statement"]), made["statement"])
        self.assertEqual(base64.b64decode(obj["signature"]), made["signature"])
        self.assertEqual(obj["url"], "https://cp.example/builds/" + made["package"])
        self.assertEqual((obj["size"], obj["sha256"]), (made["size"], made["sha256"]))

    def test_bad_statements_are_skipped(self):
        cptest.make_build(self.dir, "20.1-2749")
        with open(os.path.join(self.dir, "junk.statement.json"), "w") as f:
            f.write("{not json")
        with open(os.path.join(self.dir, "nopkg.statement.json"), "w") as f:
            json.dump({"version": "1.0", "package": "missing.tar.gz"}, f)
        with open(os.path.join(self.dir, "badver.statement.json"), "w") as f:
            json.dump({"version": "../x"}, f)
        self.assertEqual(self.index.versions(), ["20.1-2749"])

    def test_rewritten_statement_is_reread(self):
        made = cptest.make_build(self.dir, "20.1-2749")
        self.assertEqual(self.index.find("20.1-2749", "linux", "amd64").min_version, "")
        path = os.path.join(self.dir, made["package"] + ".statement.json")
        st = json.loads(made["statement"])
        st["minVersion"] = "20.0-1"
        with open(path, "w") as f:  # in place: the directory's mtime may not change
            json.dump(st, f)
        self.assertEqual(self.index.find("20.1-2749", "linux", "amd64").min_version, "20.0-1")

    def test_hops(self):
        cptest.make_build(self.dir, "20.1-2749", "20.0-0")
        cptest.make_build(self.dir, "20.2-100", "20.1-0")
        cptest.make_build(self.dir, "20.3-1", "20.1-0")
        cptest.make_build(self.dir, "21.0-1", "20.3-0")
        hop = lambda run, to: self.index.next_hop(run, to, "linux", "amd64")  # noqa: E731
        self.assertEqual(hop("20.1-2749", "20.2-100").version, "20.2-100")
        self.assertEqual(hop("20.1-2749", "21.0-1").version, "20.3-1",
                         "the highest build below the target that the running version can apply")
        self.assertEqual(hop("20.3-1", "21.0-1").version, "21.0-1")
        self.assertEqual(hop("21.0-1", "20.1-2749").version, "20.1-2749", "a downgrade is direct")
        self.assertEqual(self.index.path_to("20.1-2749", "21.0-1", "linux", "amd64"),
                         ["20.3-1", "21.0-1"])
        self.assertIsNone(self.index.path_to("19.0-1", "21.0-1", "linux", "amd64"))
        self.assertIsNone(self.index.path_to("20.1-2749", "22.0-1", "linux", "amd64"))


class HelpersTest(unittest.TestCase):
    def test_human_duration(self):
        d = cp_tasks.human_duration
        self.assertEqual(d(1800000), "30 minutes")
        self.assertEqual(d(60000), "1 minute")
        self.assertEqual(d(1000), "1 second")
        self.assertEqual(d(2000), "2 seconds")
        self.assertEqual(d(1500), "1.5 seconds")
        self.assertEqual(d(7200000), "2 hours")

    def test_parse_duration(self):
        p = server.parse_duration
        self.assertEqual(p("15"), 15000)
        self.assertEqual(p("200ms"), 200)
        self.assertEqual(p("1.5s"), 1500)
        self.assertEqual(p("30m"), 1800000)
        self.assertEqual(p("12h"), 43200000)
        for bad in ("", "x", "-1", "0", "5d"):
            with self.assertRaises(Exception):
                p(bad)

    def test_parse_range(self):
        r = cp_downloads.parse_range
        self.assertEqual(r("bytes=0-99", 1000), (0, 99))
        self.assertEqual(r("bytes=100-", 1000), (100, 999))
        self.assertEqual(r("bytes=-10", 1000), (990, 999))
        self.assertEqual(r("bytes=900-5000", 1000), (900, 999))
        self.assertEqual(r("bytes=1000-", 1000), "unsatisfiable")
        self.assertEqual(r("bytes=-0", 1000), "unsatisfiable")
        self.assertIsNone(r("bytes=0-1,5-9", 1000), "multiple ranges: whole file")
        self.assertIsNone(r("items=0-1", 1000))
        self.assertIsNone(r("bytes=9-1", 1000))

    def test_fault_specs(self):
        n = cp_faults.normalize
        f = n({"type": "error", "status": 429})
        self.assertEqual((f["count"], f["retryAfter"], f["path"]), (1, 1, "/"))
        self.assertIsNone(n({"type": "throttle", "bytesPerSecond": 10})["count"])
        self.assertEqual(n({"type": "drop", "afterBytes": 5})["path"], "/builds/")
        bad = [{"type": "nope"}, {"type": "throttle"}, {"type": "corrupt"},
               {"type": "error", "status": 200}, {"type": "drop", "afterBytes": -1},
               {"type": "error", "path": "/api/v1/admin/faults"}, {"type": "delay", "ms": "5"},
               {"type": "error", "count": 0}, {"type": "malformed", "kind": "weird"},
               {"type": "error", "bogus": 1}, {"type": "revoke"}, []]
        for spec in bad:
            with self.subTest(spec=spec):
                with self.assertRaises(cp_faults.FaultError):
                    n(spec)

    def test_malformed_bodies_are_not_valid_replies(self):
        for kind in ("garbage", "truncated", "deep", "empty"):
            body = cp_faults.malformed_body({"kind": kind})
            with self.subTest(kind=kind):
                with self.assertRaises((ValueError, RecursionError)):
                    json.loads(body.decode("utf-8", "replace"))
        self.assertGreater(len(cp_faults.malformed_body({"kind": "huge"})), 1024 * 1024)
        self.assertIsInstance(json.loads(cp_faults.malformed_body({"kind": "types"}))
                              ["heartbeatIntervalMs"], str)


if __name__ == "__main__":
    taprunner.main()

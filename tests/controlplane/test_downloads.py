#!/usr/bin/env python3
"""The package repository under /builds/: whole files, Range, If-Range, ETag, 416, HEAD,
authentication, path safety, and builds added while the server runs."""

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cptest  # noqa: E402
import taprunner  # noqa: E402


class DownloadTest(cptest.ServerTestCase):
    builds = (("20.1-2749", ""),)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.big = cptest.make_build(cls.srv.builds, "20.2-100", size=3 * 1024 * 1024 + 17)
        cls.a = cls.srv.agent()
        cls.a.register()
        cls.auth = "Bearer " + cls.a.token
        cls.path = "/builds/" + cls.big["package"]

    def get(self, headers=None, method="GET", path=None, auth=None):
        return self.srv.request(method, path or self.path, headers=headers,
                                auth=auth or self.auth)

    def test_whole_file(self):
        r = self.get()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.big["data"])
        self.assertEqual(int(r.headers["content-length"]), self.big["size"])
        self.assertEqual(r.headers["accept-ranges"], "bytes")
        self.assertRegex(r.headers["etag"], r'^"[0-9a-f-]+"$')
        self.assertIn("last-modified", r.headers)
        self.assertEqual(r.headers["content-type"], "application/octet-stream")

    def test_ranges(self):
        data, size = self.big["data"], self.big["size"]
        cases = [("bytes=100-199", 100, 199), ("bytes=%d-" % (size - 10), size - 10, size - 1),
                 ("bytes=-50", size - 50, size - 1), ("bytes=0-0", 0, 0),
                 ("bytes=1000-%d" % (size * 2), 1000, size - 1)]
        for rng, start, end in cases:
            with self.subTest(range=rng):
                r = self.get({"Range": rng})
                self.assertEqual(r.status, 206)
                self.assertEqual(r.headers["content-range"], "bytes %d-%d/%d" % (start, end, size))
                self.assertEqual(int(r.headers["content-length"]), end - start + 1)
                self.assertEqual(r.body, data[start:end + 1])

    def test_counted_by_file(self):
        """/admin/stats counts requests and body bytes per file (benchmarks tell deltas from
        full packages by name); a missing file is not listed."""
        self.srv.admin("DELETE", "/stats")
        self.assertEqual(self.get().status, 200)
        self.assertEqual(self.get({"Range": "bytes=100-199"}).status, 206)
        self.assertEqual(self.get(method="HEAD").status, 200)
        self.assertEqual(self.get(path="/builds/molt-nothing.delta").status, 404)
        # The server counts a reply once it is sent, which may be just after the client has it.
        def counted():
            s = self.srv.admin("GET", "/stats")
            done = s["endpoints"]["GET /builds/{file}"]["bytes"] > self.big["size"] + 100 and \
                s["files"].get(self.big["package"], {}).get("requests") == 3
            return s if done else None
        s = self.srv.wait_for("the four replies counted (the 404's error body in the "
                              "endpoint's bytes)", counted)
        self.assertEqual(s["files"], {self.big["package"]: {
            "requests": 3, "bytes": self.big["size"] + 100}})

    def test_416(self):
        size = self.big["size"]
        for rng in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 10), "bytes=-0"):
            with self.subTest(range=rng):
                r = self.get({"Range": rng})
                self.assertEqual(r.status, 416)
                self.assertEqual(r.headers["content-range"], "bytes */%d" % size)

    def test_ignored_ranges_send_everything(self):
        for rng in ("bytes=0-1,5-9", "lines=1-2", "bytes=9-2"):
            with self.subTest(range=rng):
                r = self.get({"Range": rng})
                self.assertEqual((r.status, len(r.body)), (200, self.big["size"]))

    def test_if_range(self):
        r = self.get()
        tag, lm = r.headers["etag"], r.headers["last-modified"]
        r = self.get({"Range": "bytes=10-19", "If-Range": tag})
        self.assertEqual((r.status, r.body), (206, self.big["data"][10:20]))
        r = self.get({"Range": "bytes=10-19", "If-Range": lm})
        self.assertEqual(r.status, 206)
        r = self.get({"Range": "bytes=10-19", "If-Range": '"stale-etag"'})
        self.assertEqual((r.status, r.body), (200, self.big["data"]))

    def test_changed_file_changes_etag(self):
        made = cptest.make_build(self.srv.builds, "20.0-1", size=1000)
        path = "/builds/" + made["package"]
        tag = self.get(path=path).headers["etag"]
        made2 = cptest.make_build(self.srv.builds, "20.0-1", size=1000)
        r = self.get({"Range": "bytes=500-", "If-Range": tag}, path=path)
        self.assertEqual((r.status, r.body), (200, made2["data"]), "the file was replaced")
        self.assertNotEqual(r.headers["etag"], tag)

    def test_head(self):
        r = self.get(method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(int(r.headers["content-length"]), self.big["size"])
        r = self.get({"Range": "bytes=0-9"}, method="HEAD")
        self.assertEqual((r.status, int(r.headers["content-length"])), (206, 10))

    def test_statement_and_signature_served(self):
        r = self.get(path=self.path + ".statement.json")
        self.assertEqual(r.body, self.big["statement"])
        r = self.get(path=self.path + ".sig")
        self.assertEqual(r.body, self.big["signature"])

    def test_authentication(self):
        self.assertError(self.srv.request("GET", self.path, auth=None), 401, "token.invalid")
        self.assertError(self.get(auth="Bearer " + "z" * 40), 401)
        r = self.srv.request("GET", self.path)  # the management credentials work too
        self.assertEqual(r.status, 200)

    def test_path_safety(self):
        for p in ("/builds/..%2Fdata%2Fcontrolplane.sqlite3", "/builds/.hidden",
                  "/builds/nothing.tar.gz", "/builds/%2e%2e"):
            with self.subTest(path=p):
                self.assertEqual(self.get(path=p).status, 404)
        self.assertEqual(self.get(path="/builds/../data/controlplane.sqlite3").status, 404)

    def test_keep_alive_across_downloads(self):
        conn = self.srv.connect()
        try:
            for rng in ("bytes=0-99", "bytes=100-199"):
                conn.request("GET", self.path, headers={"Authorization": self.auth, "Range": rng})
                r = conn.getresponse()
                self.assertEqual(r.status, 206)
                r.read()
            conn.request("POST", "/api/v1/collector/heartbeat", body=b'{"collectorVersion":"1.0"}',
                         headers={"Authorization": self.auth, "Content-Type": "application/json"})
            self.assertEqual(conn.getresponse().status, 200)
        finally:
            conn.close()

    def test_builds_added_while_running(self):
        before = [t["version"] for t in self.srv.api("GET", "/collectors/upgrades/targets")
                  .json["targets"]]
        self.assertNotIn("30.0-1", before)
        cptest.make_build(self.srv.builds, "30.0-1")
        r = self.srv.api("GET", "/collectors/upgrades/targets")
        self.assertIn({"version": "30.0-1", "latest": True}, r.json["targets"])
        self.assertEqual(self.srv.create_task(self.a.id, "30.0-1").isdigit(), True)


class MirrorTest(cptest.ServerTestCase):
    """--mirror-host: build URLs name another host, which serves builds without
    credentials and counts the requests that carry some (a leaked token)."""
    server_args = ("--mirror-host", "localhost")
    builds = (("20.1-2749", ""),)

    def test_mirror(self):
        a = self.srv.agent()
        a.register()
        r = self.srv.api("GET", "/collector/builds/20.1-2749", auth="Bearer " + a.token)
        self.assertEqual(r.status, 200)
        url = r.json["url"]
        self.assertEqual(url.rsplit("/", 1)[0], "http://localhost:%d/builds" % self.srv.port)
        path = "/builds/" + url.rsplit("/", 1)[1]
        on_mirror = {"Host": "localhost:%d" % self.srv.port}
        self.assertEqual(self.srv.request("GET", path, auth=None).status, 401,
                         "the server's own name still wants credentials")
        r = self.srv.request("GET", path, headers=on_mirror, auth=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.build_files["20.1-2749"]["data"])
        self.assertEqual(self.srv.admin("GET", "/stats")["mirror"],
                         {"requests": 1, "withCredentials": 0})
        r = self.srv.request("GET", path, headers=on_mirror, auth="Bearer " + a.token)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.srv.admin("GET", "/stats")["mirror"],
                         {"requests": 2, "withCredentials": 1})


if __name__ == "__main__":
    taprunner.main()

#!/usr/bin/env python3
"""The management API against the seed documents: every endpoint's success and documented error
paths, paging, the ETag flow, name rules, 415, and upgrade task creation and status."""

import hashlib
import os
import sys
import unittest
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cptest  # noqa: E402
import taprunner  # noqa: E402

DOCUMENTED_FIELDS = {"id", "name", "collectorType", "collectorVersion", "alive", "lastSeenAlive",
                     "ephemeral", "sourceSyncMode", "timeZone", "hostName", "category",
                     "description", "fields", "osName", "osVersion", "osArch", "osTime", "links"}


class ManagementTest(cptest.ServerTestCase):
    builds = (("20.1-2749", "20.0-0"), ("20.2-100", "20.1-0"), ("21.0-1", "20.2-0"))

    def agent(self, **kw):
        a = self.srv.agent(**kw)
        a.register()
        return a

    def hosted(self, name=None):
        r = self.srv.api("POST", "/collectors", {"collector": {
            "collectorType": "Hosted", "name": name or "hosted-" + uuid.uuid4().hex[:6],
            "description": "An example Hosted Collector", "category": "HTTP Collection",
            "fields": {"_budget": "test_budget"}}})
        self.assertEqual(r.status, 200, r)
        return r.json["collector"]

    # -- authentication and generic rules

    def test_auth_required(self):
        r = self.srv.api("GET", "/collectors", auth=None)
        self.assertError(r, 401, "unauthorized")
        self.assertIn("basic", r.headers.get("www-authenticate", "").lower())
        r = self.srv.api("GET", "/collectors", auth=self.srv.basic(access_key="wrong"))
        self.assertError(r, 401)
        r = self.srv.api("GET", "/collectors", auth="Bearer " + "x" * 40)
        self.assertError(r, 401)

    def test_unknown_path_and_method(self):
        self.assertError(self.srv.api("GET", "/nothing/here"), 404)
        r = self.srv.api("PATCH", "/collectors")
        self.assertError(r, 405)
        self.assertIn("GET", r.headers["allow"])

    def test_415_only_for_a_body_that_is_not_json(self):
        r = self.srv.api("POST", "/collectors/upgrades", b"collectorId=1",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertError(r, 415)
        r = self.srv.api("GET", "/collectors", headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 200, "a GET without a body is fine whatever it says")
        r = self.srv.api("GET", "/collectors/upgrades/targets",
                         headers={"Content-Type": "application/json",
                                  "Accept": "application/json"})
        self.assertEqual(r.status, 200)

    def test_bad_json_body(self):
        r = self.srv.api("POST", "/collectors/upgrades", b"{nope",
                         headers={"Content-Type": "application/json"})
        self.assertError(r, 400)

    def test_chunked_and_oversized_bodies(self):
        a = self.agent()
        conn = self.srv.connect()
        try:
            body = iter([b'{"collectorVersion":', b' "20.1-2749", "task": null}'])
            conn.request("POST", "/api/v1/collector/heartbeat", body=body, encode_chunked=True,
                         headers={"Authorization": "Bearer " + a.token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            self.assertEqual(r.status, 200, "a chunked body is read")
            r.read()
        finally:
            conn.close()
        r = self.srv.api("POST", "/collectors/upgrades", b"{" + b" " * (1024 * 1024 + 10) + b"}",
                         headers={"Content-Type": "application/json"})
        self.assertError(r, 413)
        self.assertEqual(r.headers.get("connection"), "close")

    def test_trailing_slash(self):
        a = self.agent()
        self.assertEqual(self.srv.api("GET", "/collectors/").status, 200)
        self.assertEqual(self.srv.api("GET", "/collectors/%d/" % a.id).status, 200)
        self.assertEqual(self.srv.api("GET", "/collectors/upgrades/targets/").status, 200)

    # -- list, get

    def test_list_shape_and_fields(self):
        a = self.agent()
        a.beat()
        r = self.srv.api("GET", "/collectors?limit=1000")
        self.assertEqual(r.status, 200)
        mine = [c for c in r.json["collectors"] if c["id"] == a.id]
        self.assertEqual(len(mine), 1)
        c = mine[0]
        self.assertLessEqual(DOCUMENTED_FIELDS, set(c))
        self.assertEqual(c["collectorType"], "Installable")
        self.assertEqual(c["name"], a.name)
        self.assertEqual(c["collectorVersion"], "20.1-2749")
        self.assertEqual((c["osName"], c["osArch"], c["osVersion"]),
                         ("Linux", "amd64", "6.1.0-18-amd64"))
        self.assertIs(c["alive"], True)
        self.assertIsInstance(c["lastSeenAlive"], int)
        self.assertIsInstance(c["osTime"], int)
        self.assertEqual(c["links"], [{"rel": "sources",
                                       "href": "/v1/collectors/%d/sources" % a.id}])
        self.assertEqual(c["sourceSyncMode"], "UI")
        self.assertIs(c["ephemeral"], False)

    def test_list_paging(self):
        for _ in range(5):
            self.agent()
        full = [c["id"] for c in self.srv.api("GET", "/collectors").json["collectors"]]
        self.assertGreaterEqual(len(full), 5)
        self.assertEqual(full, sorted(full))
        page = lambda q: [c["id"] for c in self.srv.api(  # noqa: E731
            "GET", "/collectors?" + q).json["collectors"]]
        self.assertEqual(page("limit=2"), full[:2])
        self.assertEqual(page("limit=2&offset=2"), full[2:4])
        self.assertEqual(page("offset=%d" % len(full)), [])
        self.assertEqual(page("limit=0"), [])
        for q in ("limit=-1", "limit=x", "offset=-5"):
            self.assertError(self.srv.api("GET", "/collectors?" + q), 400)

    def test_list_filters(self):
        a = self.agent()
        h = self.hosted()
        ids = lambda f: {c["id"] for c in self.srv.api(  # noqa: E731
            "GET", "/collectors?filter=" + f).json["collectors"]}
        self.assertIn(a.id, ids("installed"))
        self.assertNotIn(h["id"], ids("installed"))
        self.assertIn(h["id"], ids("hosted"))
        self.assertNotIn(a.id, ids("hosted"))
        self.assertIn(a.id, ids("alive"))
        self.assertIn(h["id"], ids("alive"))
        self.assertNotIn(a.id, ids("dead"))
        self.assertError(self.srv.api("GET", "/collectors?filter=zombie"), 400)

    def test_get_by_id(self):
        a = self.agent()
        r = self.srv.api("GET", "/collectors/%d" % a.id)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["collector"]["id"], a.id)
        self.assertRegex(r.headers["etag"], r'^"[0-9a-f]+"$')
        self.assertError(self.srv.api("GET", "/collectors/999999999"), 404, "InvalidCollector")
        self.assertError(self.srv.api("GET", "/collectors/abc"), 404)

    def test_get_by_name_rules(self):
        base = uuid.uuid4().hex[:6]
        plain = self.agent(name="dev-" + base)
        spaced = self.agent(name="Staging Area " + base)
        dotted = self.agent(name="Staging." + base)
        r = self.srv.api("GET", "/collectors/name/dev-" + base)
        self.assertEqual((r.status, r.json["collector"]["id"]), (200, plain.id))
        self.assertIn("etag", r.headers)
        r = self.srv.api("GET", "/collectors/name/Staging%20Area%20" + base)
        self.assertEqual((r.status, r.json["collector"]["id"]), (200, spaced.id))
        r = self.srv.api("GET", "/collectors/name/Staging.%s/" % base)
        self.assertEqual((r.status, r.json["collector"]["id"]), (200, dotted.id))
        for bad in ("a%2Fb", "a%25b", "a;b", "a%5Cb"):
            with self.subTest(name=bad):
                self.assertError(self.srv.api("GET", "/collectors/name/" + bad), 400)
        self.assertError(self.srv.api("GET", "/collectors/name/nobody-" + base), 404)

    # -- hosted collectors

    def test_create_hosted(self):
        c = self.hosted()
        self.assertEqual(c["collectorType"], "Hosted")
        self.assertIs(c["alive"], True)
        self.assertEqual(c["collectorVersion"], "")
        self.assertEqual(c["fields"], {"_budget": "test_budget"})
        self.assertNotIn("osName", c)
        r = self.srv.api("POST", "/collectors", {"collector": {"collectorType": "Installable",
                                                               "name": "x"}})
        self.assertError(r, 400, "InvalidCollectorType")
        r = self.srv.api("POST", "/collectors", {"collector": {"collectorType": "Hosted",
                                                               "name": c["name"]}})
        self.assertError(r, 400, "DuplicateResourceName")
        r = self.srv.api("POST", "/collectors", {"collector": {"collectorType": "Hosted",
                                                               "name": "n" * 129}})
        self.assertError(r, 400, "CollectorNameTooLong")
        self.assertError(self.srv.api("POST", "/collectors", {"name": "x"}), 400)

    # -- update with ETag / If-Match

    def test_etag_flow(self):
        a = self.agent()
        r = self.srv.api("GET", "/collectors/%d" % a.id)
        tag, c = r.headers["etag"], r.json["collector"]
        c["ephemeral"] = True
        c["description"] = "Local Linux collection"
        path = "/collectors/%d" % a.id
        self.assertError(self.srv.api("PUT", path, {"collector": c}), 403)
        r = self.srv.api("PUT", path, {"collector": c}, headers={"If-Match": tag})
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["collector"]["ephemeral"], True)
        self.assertEqual(r.json["collector"]["description"], "Local Linux collection")
        new_tag = r.headers["etag"]
        self.assertNotEqual(new_tag, tag)
        self.assertError(self.srv.api("PUT", path, {"collector": c}, headers={"If-Match": tag}),
                         412)
        r = self.srv.api("GET", path, headers={"If-None-Match": new_tag})
        self.assertEqual(r.status, 304)
        a.beat()
        self.assertEqual(self.srv.api("GET", path).headers["etag"], new_tag,
                         "a heartbeat does not invalidate the ETag")
        self.assertEqual(self.srv.api("GET", path).json["collector"]["description"],
                         "Local Linux collection")

    def test_put_validation(self):
        a = self.agent()
        other = self.agent()
        path = "/collectors/%d" % a.id

        def put(change):
            r = self.srv.api("GET", path)
            c = dict(r.json["collector"], **change)
            return self.srv.api("PUT", path, {"collector": c},
                                headers={"If-Match": r.headers["etag"]})

        self.assertError(put({"id": a.id + 1}), 400, "BadRequestCollectorId")
        self.assertError(put({"name": "n" * 129}), 400, "CollectorNameTooLong")
        self.assertError(put({"description": "d" * 1025}), 400, "CollectorDescriptionTooLong")
        self.assertError(put({"name": other.name}), 400, "DuplicateResourceName")
        self.assertError(put({"collectorType": "Hosted"}), 400, "InvalidCollectorType")
        self.assertError(put({"osArch": "sparc"}), 400)
        self.assertError(put({"ephemeral": "yes"}), 400)
        self.assertError(put({"sourceSyncMode": "Cloud"}), 400)
        r = put({"name": a.name + "-renamed", "sourceSyncMode": "Json",
                 "alive": False, "lastSeenAlive": 1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["collector"]["name"], a.name + "-renamed")
        self.assertEqual(r.json["collector"]["sourceSyncMode"], "Json")
        self.assertIs(r.json["collector"]["alive"], True, "transient fields are not modifiable")
        r = self.srv.api("PUT", "/collectors/999999999", {"collector": {"id": 999999999}},
                         headers={"If-Match": '"x"'})
        self.assertError(r, 404)

    # -- delete

    def test_delete(self):
        a = self.agent()
        path = "/collectors/%d" % a.id
        r = self.srv.api("DELETE", path)
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertError(self.srv.api("GET", path), 404)
        self.assertError(a.heartbeat(), 401, "token.invalid")
        self.assertError(self.srv.api("DELETE", path), 404)
        self.assertGreater(self.agent().id, a.id, "a deleted collector's id is not reused")

    def test_offline_parameters(self):
        r = self.srv.api("GET", "/collectors/offline")
        self.assertEqual(r.status, 200)
        self.assertIsInstance(r.json["collectors"], list)
        a = self.agent()
        self.assertNotIn(a.id, [c["id"] for c in r.json["collectors"]])
        self.assertError(self.srv.api("GET", "/collectors/offline?aliveBeforeDays=0"), 400)
        for q in ("?limit=1", "?offset=1", "?limit=x"):
            r = self.srv.api("GET", "/collectors/offline" + q)
            self.assertEqual(r.status, 400 if q == "?limit=x" else 200)
        self.assertError(self.srv.api("DELETE", "/collectors/offline?aliveBeforeDays=0"), 400)
        r = self.srv.api("DELETE", "/collectors/offline?aliveBeforeDays=10")
        self.assertEqual(r.status, 200)
        self.assertIn(b"The delete task has been initiated.", r.body)
        self.assertEqual(self.srv.api("GET", "/collectors/%d" % a.id).status, 200,
                         "a live collector is not offline")

    # -- upgrades: targets, upgradable collectors, tasks

    def test_targets(self):
        r = self.srv.api("GET", "/collectors/upgrades/targets")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"targets": [{"version": "20.1-2749", "latest": False},
                                              {"version": "20.2-100", "latest": False},
                                              {"version": "21.0-1", "latest": True}]})

    def test_upgradable(self):
        old = self.agent()
        current = self.agent(version="21.0-1")
        arm = self.agent(arch="aarch64")
        h = self.hosted()
        ids = lambda q="": [c["id"] for c in self.srv.api(  # noqa: E731
            "GET", "/collectors/upgrades/collectors" + q).json["collectors"]]
        allids = ids("?limit=1000")
        self.assertIn(old.id, allids)
        self.assertNotIn(current.id, allids, "already at the latest version")
        self.assertNotIn(arm.id, allids, "no build for its arch")
        self.assertNotIn(h["id"], allids, "hosted collectors are not upgradable")
        self.assertIn(current.id, ids("?toVersion=20.2-100&limit=1000"))
        self.assertLessEqual(len(ids()), 50)
        self.assertEqual(ids("?limit=1&offset=1"), allids[1:2])
        self.srv.create_task(old.id)
        self.assertNotIn(old.id, ids("?limit=1000"), "being upgraded")
        r = self.srv.api("GET", "/collectors/upgrades/collectors?toVersion=99.0-1")
        self.assertError(r, 400, "collector.version.invalid")
        r = self.srv.api("GET", "/collectors/upgrades/collectors?limit=x")
        self.assertError(r, 400)

    def test_create_task_and_status(self):
        a = self.agent()
        r = self.srv.api("POST", "/collectors/upgrades",
                         {"collectorId": a.id, "toVersion": "20.2-100"})
        self.assertEqual(r.status, 202, r)
        tid = r.json["id"]
        self.assertIsInstance(tid, str)
        self.assertTrue(tid.isdigit())
        self.assertEqual(r.json["link"], {"rel": "self", "href": "/v1/collectors/upgrades/" + tid})
        r = self.srv.api("GET", "/collectors/upgrades/" + tid)
        self.assertEqual(r.status, 200)
        u = r.json["upgrade"]
        self.assertEqual(u["id"], int(tid))
        self.assertEqual(u["collectorId"], a.id)
        self.assertEqual(u["toVersion"], "20.2-100")
        self.assertIsInstance(u["requestTime"], int)
        self.assertEqual(u["status"], 0, "not started until a heartbeat carries it")
        self.assertEqual(u["message"], "")
        self.assertError(self.srv.api("GET", "/collectors/upgrades/999999"), 404)
        self.assertError(self.srv.api("GET", "/collectors/upgrades/abc"), 404)

    def test_create_task_with_rate(self):
        # maxBytesPerSecond rides on the task's command and its view; without it, neither has it.
        a, b = self.agent(), self.agent()
        post = lambda body: self.srv.api("POST", "/collectors/upgrades", body)  # noqa: E731
        for v in ("50M", 0, -1, True, 1.5):
            with self.subTest(maxBytesPerSecond=v):
                self.assertError(post({"collectorId": a.id, "maxBytesPerSecond": v}), 400,
                                 "request.invalid")
        r = post({"collectorId": a.id, "toVersion": "20.2-100", "maxBytesPerSecond": 65536})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.srv.task(r.json["id"])["maxBytesPerSecond"], 65536)
        self.assertEqual(a.heartbeat().json["command"]["maxBytesPerSecond"], 65536)
        tid = self.srv.create_task(b.id, "20.2-100")
        self.assertNotIn("maxBytesPerSecond", self.srv.task(tid))
        self.assertNotIn("maxBytesPerSecond", b.heartbeat().json["command"])

    def test_command_offers_a_delta(self):
        # build.delta names molt-<base>-to-<version>-<os>-<arch>.delta when the collector runs
        # <base>; its size and sha256 are the file's as it is now; other collectors get none.
        a, b = self.agent(), self.agent(version="20.1-1")
        data = os.urandom(300)
        name = "molt-20.1-2749-to-20.2-100-linux-amd64.delta"
        with open(os.path.join(self.srv.builds, name), "wb") as f:
            f.write(data)
        self.srv.create_task(a.id, "20.2-100")
        d = a.heartbeat().json["command"]["build"]["delta"]
        self.assertEqual(d["baseVersion"], "20.1-2749")
        self.assertTrue(d["url"].endswith("/builds/" + name), d["url"])
        self.assertEqual((d["size"], d["sha256"]), (300, hashlib.sha256(data).hexdigest()))
        self.srv.create_task(b.id, "20.2-100")
        self.assertNotIn("delta", b.heartbeat().json["command"]["build"])

    def test_create_task_with_mirrors(self):
        # mirrors ride on each build as downloadUrls (the package's name on each base, in order,
        # before the server's own url) and on the task's view; without them, neither has them.
        a, b = self.agent(), self.agent()
        post = lambda body: self.srv.api("POST", "/collectors/upgrades", body)  # noqa: E731
        long_url = "https://m.example/" + "x" * 1100
        bad = ("https://m.example", ["http://m.example"], [""], [42], [long_url],
               ["https://user:pw@m.example/"], ["https://m.example/a b"], ["https://"],
               ["https://:443/x"], ["https://m.example/?sig=1"], ["https://m.example/#x"],
               ["https://m.example/\u00e9"], ["https://m%d.example" % i for i in range(5)])
        for v in bad:
            with self.subTest(mirrors=v):
                r = post({"collectorId": a.id, "mirrors": v})
                self.assertError(r, 400, "request.invalid")
                self.assertIn("mirrors", r.json["message"])
        # A refused request made no task: the collector takes the next one.
        r = post({"collectorId": a.id, "toVersion": "20.2-100",
                  "mirrors": ["https://cdn.example/molt/", "https://mirror.example:8443"]})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.srv.task(r.json["id"])["mirrors"],
                         ["https://cdn.example/molt/", "https://mirror.example:8443"])
        build = a.heartbeat().json["command"]["build"]
        name = build["url"].rsplit("/", 1)[1]
        self.assertEqual(build["downloadUrls"], ["https://cdn.example/molt/" + name,
                                                 "https://mirror.example:8443/" + name])
        tid = self.srv.create_task(b.id, "20.2-100")
        self.assertNotIn("mirrors", self.srv.task(tid))
        self.assertNotIn("downloadUrls", b.heartbeat().json["command"]["build"])

    def test_served_by(self):
        # The report's servedBy shows in the task's progress; a bad one is refused.
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        a.beat()
        r = a.report(a.progress(tid, "downloading", "20.2-100", servedBy=["x"]))
        self.assertError(r, 400, "request.invalid")
        r = a.report(a.progress(tid, "downloading", "20.2-100", servedBy="x" * 513))
        self.assertError(r, 400, "request.invalid")
        self.assertNotIn("servedBy", self.srv.task(tid)["progress"])
        r = a.report(a.progress(tid, "downloading", "20.2-100",
                                servedBy="https://cdn.example/molt/p.tar.gz"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.srv.task(tid)["progress"]["servedBy"],
                         "https://cdn.example/molt/p.tar.gz")

    def test_create_task_defaults_to_latest(self):
        a = self.agent(version="20.2-100")
        tid = self.srv.create_task(a.id)
        self.assertEqual(self.srv.task(tid)["toVersion"], "21.0-1")

    def test_create_task_errors(self):
        a = self.agent()
        arm = self.agent(arch="aarch64")
        h = self.hosted()
        post = lambda body: self.srv.api("POST", "/collectors/upgrades", body)  # noqa: E731
        self.assertError(post({}), 400, "collector.invalid")
        self.assertError(post({"collectorId": "abc"}), 400, "collector.invalid")
        self.assertError(post({"collectorId": 999999999}), 400, "collector.invalid")
        self.assertError(post({"collectorId": h["id"]}), 400, "collector.type.invalid")
        for v in ("99.9-9", "not a version", 42, ""):
            with self.subTest(toVersion=v):
                self.assertError(post({"collectorId": a.id, "toVersion": v}), 400,
                                 "collector.version.invalid")
        self.assertError(post({"collectorId": arm.id}), 400, "collector.version.invalid")
        old = self.agent(version="19.0-1")
        self.assertError(post({"collectorId": old.id, "toVersion": "21.0-1"}), 400,
                         "collector.version.invalid")
        self.assertEqual(post({"collectorId": a.id}).status, 202)
        self.assertError(post({"collectorId": a.id}), 400, "collector.in.upgrading")

    def test_cancel_task(self):
        a = self.agent()
        tid = self.srv.create_task(a.id, "20.2-100")
        r = self.srv.api("DELETE", "/collectors/upgrades/" + tid)
        self.assertEqual(r.status, 200)
        self.assertEqual((r.json["upgrade"]["status"], r.json["upgrade"]["message"]),
                         (3, "cancelled"))
        self.assertEqual(self.srv.task(tid)["status"], 3)
        self.assertError(self.srv.api("DELETE", "/collectors/upgrades/" + tid), 409, "task.closed")
        self.assertError(self.srv.api("DELETE", "/collectors/upgrades/424242"), 404)
        self.assertEqual(self.srv.api("POST", "/collectors/upgrades",
                                      {"collectorId": a.id}).status, 202,
                         "a cancelled task no longer blocks a new one")


class RateLimitTest(cptest.ServerTestCase):
    server_args = ("--rate-limit", "4")

    def test_429_with_retry_after(self):
        """more than 4 requests a second per access id get 429 with Retry-After"""
        statuses = []
        for _ in range(40):
            r = self.srv.api("GET", "/collectors")
            statuses.append(r.status)
            if r.status == 429:
                self.assertError(r, 429, "rate.limit.exceeded")
                self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
                break
        self.assertIn(429, statuses)
        self.assertEqual(statuses[:4], [200] * 4)


if __name__ == "__main__":
    taprunner.main()

"""Run a unittest module and report in TAP, so the Automake TAP driver counts every test case.

Each test module ends with `taprunner.main()`. The plan line comes first; every case prints
`ok N - Class.test` or `not ok N - ...` followed by its traceback as `#` lines. A hung test is
bounded: after MOLT_CP_TEST_TIMEOUT seconds (default 300) faulthandler dumps the stacks and the
process exits, which the driver reports as an error.
"""

import faulthandler
import os
import sys
import unittest


class TapResult(unittest.TestResult):
    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.n = 0
        self._outcome = {}

    def _emit(self, ok, name, directive="", diag=None):
        self.n += 1
        line = "%s %d - %s" % ("ok" if ok else "not ok", self.n, name)
        if directive:
            line += " # " + directive
        self.stream.write(line + "\n")
        for d in (diag or "").rstrip().splitlines():
            self.stream.write("# " + d + "\n")
        self.stream.flush()

    @staticmethod
    def _name(test):
        parts = test.id().split(".")
        name = ".".join(parts[-2:])
        doc = test.shortDescription()
        return name + (": " + doc if doc else "")

    def startTest(self, test):
        super().startTest(test)
        self._outcome[test.id()] = (True, "", [])

    def _fail(self, test, err):
        ok, directive, diags = self._outcome.get(test.id(), (True, "", []))
        diags.append(self._exc_info_to_string(err, test))
        extra = getattr(test, "tap_diagnostics", None)
        if callable(extra) and len(diags) == 1:
            try:
                diags.append(extra())
            except Exception as e:  # diagnostics must never hide the failure itself
                diags.append("(no extra diagnostics: %r)" % e)
        self._outcome[test.id()] = (False, directive, diags)

    def addError(self, test, err):
        super().addError(test, err)
        if test.id() not in self._outcome:  # setUpClass/tearDownClass: not a started test
            self._emit(False, str(test), diag=self._exc_info_to_string(err, test))
            return
        self._fail(test, err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._fail(test, err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if test.id() not in self._outcome:
            self._emit(True, str(test), "SKIP " + reason)
            return
        self._outcome[test.id()] = (True, "SKIP " + reason, [])

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._outcome[test.id()] = (True, "TODO expected failure", [])

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._outcome[test.id()] = (False, "", ["unexpected success"])

    def stopTest(self, test):
        super().stopTest(test)
        ok, directive, diags = self._outcome.pop(test.id(), (True, "", []))
        self._emit(ok, self._name(test), directive, "\n".join(diags))


def main(module="__main__"):
    faulthandler.enable()
    faulthandler.dump_traceback_later(int(os.environ.get("MOLT_CP_TEST_TIMEOUT", "300")),
                                      exit=True)
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module])
    only = [a for a in sys.argv[1:] if not a.startswith("-")]
    if only:
        suite = unittest.TestSuite(t for t in _flatten(suite)
                                   if any(o in t.id() for o in only))
    sys.stdout.write("1..%d\n" % suite.countTestCases())
    sys.stdout.flush()
    result = TapResult(sys.stdout)
    suite.run(result)
    faulthandler.cancel_dump_traceback_later()
    sys.exit(0 if result.wasSuccessful() else 1)


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t

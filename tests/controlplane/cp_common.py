"""What every part of the reference control plane shares: the API error (answered with the
legacy body) and the log line on stderr.
"""

import sys


class ApiError(Exception):
    """An error answered with the legacy body {"status", "id", "code", "message"}."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message, code="request.invalid"):
    return ApiError(400, code, message)


def log(event, **kv):
    parts = ["cp: " + event] + ["%s=%s" % (k, v) for k, v in kv.items()]
    print(" ".join(parts), file=sys.stderr, flush=True)

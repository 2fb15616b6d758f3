"""Build version ordering, byte for byte the same as lib/version.c.

The server picks "latest" builds and upgrade hops with it, so it must order versions exactly as the
agent does: digit runs numerically (leading zeros ignored), other bytes by value, a digit run after a
separator, and a string that ends first before a longer one.
"""

import functools

_ALLOWED = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-+_")


def valid(v):
    """True when v looks like a build version (molt_version_valid)."""
    if not isinstance(v, str):
        return False
    b = v.encode("utf-8", "replace")
    return 0 < len(b) <= 64 and 48 <= b[0] <= 57 and all(c in _ALLOWED for c in b)


def _isdigit(c):
    return 48 <= c <= 57


def cmp(a, b):
    """-1, 0 or 1 as molt_version_cmp(a, b)."""
    a = a.encode("utf-8", "replace")
    b = b.encode("utf-8", "replace")
    i = j = 0
    na, nb = len(a), len(b)
    while i < na or j < nb:
        ca = a[i] if i < na else 0
        cb = b[j] if j < nb else 0
        da, db = _isdigit(ca), _isdigit(cb)
        if da and db:
            while i < na and a[i] == 48:
                i += 1
            while j < nb and b[j] == 48:
                j += 1
            si, sj = i, j
            while i < na and _isdigit(a[i]):
                i += 1
            while j < nb and _isdigit(b[j]):
                j += 1
            la, lb = i - si, j - sj
            if la != lb:
                return -1 if la < lb else 1
            ra, rb = a[si:i], b[sj:j]
            if ra != rb:
                return -1 if ra < rb else 1
            continue
        if i >= na or j >= nb:
            return 1 if i < na else -1
        if da != db:
            return 1 if da else -1
        if ca != cb:
            return -1 if ca < cb else 1
        i += 1
        j += 1
    return 0


sort_key = functools.cmp_to_key(cmp)


def equal(a, b):
    return a is not None and b is not None and cmp(a, b) == 0

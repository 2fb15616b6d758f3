#!/usr/bin/python3
"""depcycles.py: no circle of includes nor of calls among the files of a directory.

A file here is a module: foo.c with its foo.h. Two graphs are built per
directory: includes (foo.c or foo.h has #include "bar.h", bar.h in the same
directory) and calls (foo.o references a symbol that bar.o defines, from
`nm` on the built objects). Any strongly connected component of more than one
module is a circle; it is printed with one concrete cycle through it and the
edges that make it, and the exit status is 1.

    tests/depcycles.py --builddir DIR SRCDIR/agent SRCDIR/lib ...

Objects are looked up in DIR/<dir>/ under automake's names (libfoo_a-bar.o or
bar.o); a source file without an object is an error (build first).
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules(srcdir):
    mods = set()
    for name in os.listdir(srcdir):
        base, ext = os.path.splitext(name)
        if ext in (".c", ".h"):
            mods.add(base)
    return mods


def include_graph(srcdir, mods):
    graph = {m: {} for m in mods}
    for m in mods:
        for ext in (".c", ".h"):
            path = os.path.join(srcdir, m + ext)
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                base, iext = os.path.splitext(os.path.basename(inc))
                if iext == ".h" and base in mods and base != m and \
                        os.path.exists(os.path.join(srcdir, inc)):
                    graph[m].setdefault(base, []).append("%s%s includes %s" % (m, ext, inc))
    return graph


def object_for(builddir, rel, mod):
    d = os.path.join(builddir, rel)
    plain = os.path.join(d, mod + ".o")
    if os.path.exists(plain):
        return plain
    found = []
    for name in os.listdir(d) if os.path.isdir(d) else []:
        if name.endswith("-" + mod + ".o"):
            found.append(os.path.join(d, name))
    # Several programs may compile the same source: any one will do, they
    # come from the same file (same symbols, same references).
    return sorted(found)[0] if found else None


def nm_symbols(obj):
    out = subprocess.run(["nm", "-g", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] not in ("U", "w", "v"):
            defined.add(parts[2])
    return defined, undefined


def call_graph(srcdir, builddir, rel, mods):
    sources = sorted(m for m in mods if os.path.exists(os.path.join(srcdir, m + ".c")))
    defs, refs, missing = {}, {}, []
    for m in sources:
        obj = object_for(builddir, rel, m)
        if obj is None:
            missing.append(m + ".c")
            continue
        defs[m], refs[m] = nm_symbols(obj)
    if missing:
        sys.exit("depcycles: no object for %s in %s: build first" %
                 (", ".join(missing), os.path.join(builddir, rel)))
    owner = {}
    for m, syms in defs.items():
        for s in syms:
            owner[s] = m
    graph = {m: {} for m in mods}
    for m, syms in refs.items():
        for s in sorted(syms):
            o = owner.get(s)
            if o is not None and o != m:
                graph[m].setdefault(o, []).append("%s.c calls %s (%s.c)" % (m, s, o))
    return graph


def sccs(graph):
    """Tarjan's algorithm, iterative."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def one_cycle(graph, comp):
    """The shortest cycle through comp's first module, inside comp."""
    members, start = set(comp), comp[0]
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                path.reverse()
                return path + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def order(graph):
    """Modules, each after those it depends on (for the report)."""
    done, out = set(), []

    def visit(m, seen):
        if m in done or m in seen:
            return
        seen.add(m)
        for n in sorted(graph[m]):
            visit(n, seen)
        done.add(m)
        out.append(m)

    for m in sorted(graph):
        visit(m, set())
    return out


def check(kind, rel, graph, verbose):
    bad = 0
    for comp in sccs(graph):
        if len(comp) < 2:
            continue
        bad += 1
        cycle = one_cycle(graph, comp)
        print("depcycles: %s/: circle of %s among %s: %s" %
              (rel, kind, " ".join(comp), " -> ".join(cycle)))
        for a, b in zip(cycle, cycle[1:]):
            print("    %s" % graph[a][b][0])
    if verbose and not bad:
        print("depcycles: %s/: no circle of %s; order: %s" % (rel, kind, " ".join(order(graph))))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    bad = 0
    for d in args.dirs:
        srcdir = os.path.abspath(d)
        rel = os.path.basename(srcdir.rstrip("/"))
        mods = modules(srcdir)
        bad += check("includes", rel, include_graph(srcdir, mods), args.verbose)
        bad += check("calls", rel, call_graph(srcdir, args.builddir, rel, mods), args.verbose)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

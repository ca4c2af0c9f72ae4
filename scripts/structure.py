#!/usr/bin/env python3
"""The structure review anyone can rerun: import cycles among src/ files and functions over a
length limit (tests excluded).

    scripts/structure.py [--max-lines 100] [--report]

A file depends on another when it names it: `use crate::a::b`, `use super::x`, or an inline
`crate::a::b::f(...)` path. Each path is resolved to the longest prefix that is a module file
(`src/a/b.rs` or `src/a/b/mod.rs`); a file's own submodules and its `mod.rs` parent are edges like
any other. Cycles are the strongly connected components with more than one file. It exits 1
when there is a cycle or a long function, so CI can run it; `--report` only lists them.
"""
import argparse
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return ()
    return tuple(rel)


def files():
    out = {}
    for d, _, fs in os.walk(ROOT):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                out[module_of(p)] = p
    return out


def strip_tests(text):
    """The text without `#[cfg(test)] mod … { … }` blocks, comments and string contents."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def use_paths(text):
    """Every `crate::`/`super::` path named, with `use` groups expanded."""
    paths = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)::[^;]+);", text):
        paths.extend(expand(m.group(1).replace("\n", " ")))
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
        paths.append(m.group(1).split("::"))
    return paths


def expand(tree):
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [re.sub(r"\bas\w+$", "", tree).split("::")]
    head, rest = tree.split("{", 1)
    body = rest[: rest.rfind("}")]
    parts, depth, cur = [], 0, ""
    for c in body:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        cur += c
    parts.append(cur)
    out = []
    for p in filter(None, parts):
        for sub in expand(p):
            out.append([x for x in head.split("::") if x] + sub)
    return out


def resolve(me, path, mods):
    if path[0] == "crate":
        base, rest = (), path[1:]
    else:
        base = me
        rest = path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    target = None
    for k in range(len(rest), -1, -1):
        cand = base + tuple(rest[:k])
        if cand in mods:
            target = cand
            break
    return target


_DIRS = set()


def mods_is_dir(m):
    return m in _DIRS


def sccs(graph):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def long_functions(path, text, limit):
    found = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)", line)
        if not m:
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            for c in lines[j]:
                if c == "{":
                    depth += 1
                    started = True
                elif c == "}":
                    depth -= 1
            if started and depth <= 0:
                break
            if not started and lines[j].rstrip().endswith(";"):
                break
            j += 1
        if started and j - i + 1 > limit:
            found.append((j - i + 1, os.path.relpath(path, os.path.join(ROOT, "..")), m.group(1)))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-lines", type=int, default=100)
    ap.add_argument("--report", action="store_true", help="list findings, exit 0")
    args = ap.parse_args()
    mods = files()
    for m, p in mods.items():
        if p.endswith("mod.rs") or m == ():
            _DIRS.add(m)
    graph, long = {}, []
    for m, p in mods.items():
        text = strip_tests(open(p, encoding="utf-8").read())
        deps = set()
        for path in use_paths(text):
            t = resolve(m, path, mods)
            if t is not None and t != m and t != ():
                deps.add(t)
        graph[m] = deps
        long.extend(long_functions(p, text, args.max_lines))
    cycles = [c for c in sccs(graph) if len(c) > 1]
    for c in sorted(cycles, key=len, reverse=True):
        names = sorted("::".join(x) for x in c)
        print(f"import cycle of {len(c)} files: {', '.join(names)}")
    for n, p, f in sorted(long, reverse=True):
        print(f"function over {args.max_lines} lines: {p}: {f} ({n} lines)")
    print(f"{len(mods)} files, {len(cycles)} import cycles, {len(long)} functions over {args.max_lines} lines")
    return 1 if not args.report and (cycles or long) else 0


if __name__ == "__main__":
    sys.exit(main())

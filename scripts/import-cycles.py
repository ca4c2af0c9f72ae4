#!/usr/bin/env python3
"""Import cycles among src/ files, over `crate::`, `super::`, `self::` and child-module
paths in `use` lines and inline `crate::` paths.

    scripts/import-cycles.py [SRC_DIR=src]

Each file is a node (a folder's `mod.rs` stands for the folder); an edge A -> B means A names
an item of B. Prints every strongly connected component with more than one file, and exits 1
if there is one. Re-exports count as imports of where they point.
"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"


def module_of(path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return []
    return rel


files = {}
for root, _, names in os.walk(src):
    for n in names:
        if n.endswith(".rs"):
            p = os.path.join(root, n)
            files[tuple(module_of(p))] = p


def resolve(parts):
    """The longest known module that is a prefix of `parts`."""
    for k in range(len(parts), 0, -1):
        if tuple(parts[:k]) in files:
            return tuple(parts[:k])
    return None


def paths_in(tree):
    """Expand `a::{b, c::{d}}` into lists of segments."""
    tree = tree.strip()
    m = re.match(r"^(.*?)::\{(.*)\}$", tree, re.S)
    if not m:
        return [[s.strip() for s in tree.split("::") if s.strip()]]
    head = [s for s in m.group(1).split("::") if s]
    depth, cur, parts = 0, "", []
    for ch in m.group(2):
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out += [head + q for q in paths_in(p)]
    return out


edges = {m: set() for m in files}
for mod, path in files.items():
    text = open(path, encoding="utf-8").read()
    # Leave out test modules: they may import anything.
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    here = list(mod)
    uses = re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text, re.M)
    inline = re.findall(r"crate::[A-Za-z_][A-Za-z0-9_:]*", text)
    for u in uses + inline:
        for p in paths_in(u):
            p = [s.split(" as ")[0].strip() for s in p]
            if p[0] == "crate":
                target = resolve(p[1:])
            elif p[0] in ("super", "self"):
                base = list(here)
                i = 0
                while i < len(p) and p[i] in ("super", "self"):
                    if p[i] == "super":
                        base = base[:-1]
                    i += 1
                target = resolve(base + p[i:])
            elif tuple(here + p[:1]) in files:
                # A child module named without `self::` (2018 paths).
                target = resolve(here + p)
            else:
                continue
            if target is not None and target != mod:
                edges[mod].add(target)

# Tarjan's strongly connected components.
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
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
        comps.append(comp)


for v in files:
    if v not in index:
        visit(v)

cycles = [c for c in comps if len(c) > 1]
for c in sorted(cycles, key=len, reverse=True):
    print(f"cycle of {len(c)} files:")
    for m in sorted(c):
        print("   ", files[m])
print(f"{len(files)} files, {len(cycles)} import cycle(s)")
sys.exit(1 if cycles else 0)

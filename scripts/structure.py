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


def blank_literals(text):
    """The text with comments removed and the contents of string and char literals emptied, so
    that neither braces nor paths inside them count. A lexer, not regexes: `"//"` in a string,
    `'"'`, raw strings (`r#"…"#`) and nested block comments all occur in this code base."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
            out.append(" ")
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_") or text[i - 1] == "b"):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:  # a lifetime or label
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_tests(text):
    """The code without comments, literals' contents and `#[cfg(test)] mod … { … }` blocks."""
    text = blank_literals(text)
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


def test_files(mods, raw):
    """Files that only tests compile: declared `#[cfg(test)] mod x;` by their parent."""
    out = set()
    for m, text in raw.items():
        for t in re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
            out.add(m + (t,))
    return {t for t in out if t in mods}


ITEM = re.compile(
    r"^\s*(pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?(?:struct|enum|fn|trait|type|const|static|mod|union)\s+(\w+)",
    re.M,
)


def top_items(text):
    """The items a file defines at its top level: {name: is it `pub`}."""
    out, depth, pos = {}, 0, 0
    for m in ITEM.finditer(text):
        depth += sum({"{": 1, "}": -1}.get(c, 0) for c in text[pos : m.start()])
        pos = m.start()
        if depth == 0:
            out[m.group(2)] = m.group(1) is not None
    return out


def local_head(me, head, mods):
    """Whether a path starting at `head` names this crate from module `me`: `crate`, `super`,
    `self`, or one of `me`'s own submodules (Rust 2018 resolves `list::x` to the child module
    `list` before an external crate of that name)."""
    return head in ("crate", "super", "self") or me + (head,) in mods


USE = re.compile(r"(?<![\w:])(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")


def use_trees(text):
    """Every `use` statement: (is it a re-export, its paths with groups expanded)."""
    return [(m.group(1) is not None, expand(m.group(2))) for m in USE.finditer(text)]


def local_paths(text, me, mods):
    """The paths written inline in expressions that name this crate (`crate::a::f()`,
    `super::x::Y`, `list::load()` for a child module `list`)."""
    out = []
    for m in re.finditer(r"(?<![\w:])(\w+(?:::\w+)+)", USE.sub("", text)):
        path = m.group(1).split("::")
        if local_head(me, path[0], mods):
            out.append(path)
    return out


def identifiers(text):
    """The names a file's code mentions outside its `use` statements."""
    return set(re.findall(r"\b[A-Za-z_]\w*\b", USE.sub("", text)))


def expand(tree):
    """A use tree as a list of paths; an alias (`a::b as c`) keeps the path and drops the name,
    `self` inside a group names the group's head."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree).lstrip(":")
    if "{" not in tree:
        return [[x for x in tree.split("::") if x]]
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
            if sub == ["self"]:
                sub = []
            out.append([x for x in head.split("::") if x] + sub)
    return out


def absolute(me, path):
    """A crate-relative path (module segments then item segments) for a path written in `me`."""
    if path[0] == "crate":
        return tuple(path[1:])
    base, rest = me, list(path)
    while rest and rest[0] in ("super", "self"):
        if rest[0] == "super":
            base = base[:-1]
        rest = rest[1:]
    return base + tuple(rest)


class Crate:
    """The module files, what each defines at its top level and what each imports, so that a path
    through an import or re-export (`super::RunError` when `runs/mod.rs` says `pub use
    error::RunError`) resolves to the file that defines the item, not to the one that passes it on.
    """

    def __init__(self, mods, texts):
        self.mods, self.texts = mods, texts
        self.defines = {m: top_items(t) for m, t in texts.items()}
        self.imports = {m: {} for m in mods}
        self.globs = {m: [] for m in mods}
        for m, t in texts.items():
            for _, tree in use_trees(t):
                for p in tree:
                    if not p or not local_head(m, p[0], mods):
                        continue
                    if p[-1] == "*":
                        self.globs[m].append(absolute(m, p[:-1]))
                    else:
                        self.imports[m][p[-1]] = absolute(m, p)

    def module_prefix(self, path):
        for k in range(len(path), -1, -1):
            if tuple(path[:k]) in self.mods:
                return tuple(path[:k]), tuple(path[k:])
        return None, ()

    def names(self, mod, depth=0):
        """Every name a glob import of `mod` brings in."""
        out = set(self.defines.get(mod, ())) | set(self.imports.get(mod, ()))
        if depth < 16:
            for g in self.globs.get(mod, ()):
                out |= self.names(g, depth + 1)
        return out

    def provides(self, mod, name, depth=0):
        """The file whose definition `mod::name` names, following `use` and `pub use` (globs
        too); None when `mod` neither defines nor imports `name`."""
        if depth > 16:
            return None
        if name in self.defines.get(mod, ()):
            return mod
        if name in self.imports.get(mod, {}):
            return self.resolve(self.imports[mod][name], depth + 1)
        for g in self.globs.get(mod, ()):
            if g in self.mods:
                t = self.provides(g, name, depth + 1)
                if t is not None:
                    return t
        return None

    def resolve(self, path, depth=0):
        """The module file that defines what an absolute path names."""
        mod, rest = self.module_prefix(path)
        if mod is None or not rest:
            return mod
        return self.provides(mod, rest[0], depth) or mod

    def deps(self, me):
        """The files `me` depends on. A `use` counts; a `pub use` is the module's table of
        contents (like `mod x;`) and counts only when the file's own code uses the name it
        re-exports; a glob import counts for each name it brings in that the code uses; inline
        paths count."""
        text, mods = self.texts[me], self.mods
        used = identifiers(text)
        out = set()
        for public, tree in use_trees(text):
            for p in tree:
                if not p or not local_head(me, p[0], mods):
                    continue
                if p[-1] == "*":
                    g = absolute(me, p[:-1])
                    for name in self.names(g) & used:
                        out.add(self.provides(g, name) or g)
                elif not public or p[-1] in used:
                    out.add(self.resolve(absolute(me, p)))
        for p in local_paths(text, me, mods):
            out.add(self.resolve(absolute(me, p)))
        return {t for t in out if t is not None and t != me and t != ()}


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
    raw = {m: blank_literals(open(p, encoding="utf-8").read()) for m, p in mods.items()}
    for t in test_files(mods, raw):
        del mods[t]
    texts = {m: strip_tests(open(p, encoding="utf-8").read()) for m, p in mods.items()}
    crate = Crate(mods, texts)
    graph, long = {}, []
    for m, p in mods.items():
        graph[m] = crate.deps(m)
        long.extend(long_functions(p, texts[m], args.max_lines))
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

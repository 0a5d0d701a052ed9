"""The package's import graph, read from the source (``ast``, nothing is imported), as JSON.

    python benchmarks/import_graph.py [ROOT]

Prints every edge ``module -> module`` inside the package (imports inside functions included,
marked ``"in_function": true``), the cycles, and which core modules reach the host or a plugin.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

CORE = ("codes", "qhead", "losses", "nets", "model", "data", "checkpoint", "config", "images", "io",
        "registry", "metrics", "sprites", "render3d", "disentangle", "attach", "errors", "weightcast")


def modules(root: Path) -> dict[str, Path]:
    out = {f"genzoo_infogan.{p.stem}": p for p in (root / "genzoo_infogan").glob("*.py") if p.stem != "__init__"}
    out.update({f"genzoo_infogan.plugins.{p.stem}": p for p in (root / "plugins").glob("*.py") if p.stem != "__init__"})
    return out


def edges(name: str, path: Path, known: set[str]) -> list[dict]:
    tree = ast.parse(path.read_text())
    package = name.rsplit(".", 1)[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names]
            for t in targets:
                if t in known and t != name:
                    found.append({"from": name, "to": t, "in_function": in_function})
            visit(child, inner)

    visit(tree, False)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    out, seen = [], set()

    def dfs(node, stack):
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                cyc = stack[stack.index(nxt):]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    out.append(cyc + [nxt])
            elif len(stack) < 12:
                dfs(nxt, stack + [nxt])

    for n in sorted(graph):
        dfs(n, [n])
    return out


def main(argv=None) -> int:
    root = Path((argv or sys.argv[1:] or [Path(__file__).resolve().parents[1]])[0])
    mods = modules(root)
    all_edges = [e for name, path in sorted(mods.items()) for e in edges(name, path, set(mods))]
    graph: dict[str, set[str]] = {}
    for e in all_edges:
        graph.setdefault(e["from"], set()).add(e["to"])

    def reach(start):
        todo, done = [start], set()
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in done:
                    done.add(nxt)
                    todo.append(nxt)
        return done

    core_to_host = {f"genzoo_infogan.{m}": sorted(t for t in reach(f"genzoo_infogan.{m}")
                                                  if t == "genzoo_infogan.host" or ".plugins." in t)
                    for m in CORE if f"genzoo_infogan.{m}" in mods}
    print(json.dumps({"edges": len(all_edges),
                      "imports_inside_functions": [f"{e['from']} -> {e['to']}" for e in all_edges if e["in_function"]],
                      "cycles": [" -> ".join(c) for c in cycles(graph)],
                      "core_reaching_host_or_plugins": {k: v for k, v in core_to_host.items() if v}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The import graph of ``napari_resjnd``, drawn from the code for docs/architecture.md.

``python docs/architecture_graph.py`` rewrites the diagram between the markers in
docs/architecture.md; ``tests/test_house_rules.py`` fails when the page and the
code differ, so the picture cannot drift. Arrows point from the importer to what
it imports (function-level imports count); arrows implied by a longer path are
left out (transitive reduction), so every arrow drawn is a direct, needed import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_resjnd"
PAGE = Path(__file__).resolve().parent / "architecture.md"
BEGIN, END = "<!-- import-graph:begin -->", "<!-- import-graph:end -->"


def _node(rel: Path) -> str:
    """core/zoo/wu2013.py -> core.zoo; core/int8.py -> core.int8; cli/parser.py -> cli; widgets/x -> widgets."""
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts:
        return "napari_resjnd"
    if parts[0] == "core":
        return ".".join(parts[:2])
    return parts[0].lstrip("_") if parts[0] in ("cli", "widgets") else ".".join(parts)


def _target(rel: Path, node: ast.ImportFrom) -> list[str]:
    """Package-relative module paths an ``ImportFrom`` names: each imported name that
    is a submodule, else the module itself."""
    if node.level == 0:
        if not (node.module or "").startswith("napari_resjnd"):
            return []
        base = node.module.split(".")[1:]  # type: ignore[union-attr]
    else:
        here = list(rel.parent.parts)
        base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
    found = []
    for alias in node.names:
        sub = SRC.joinpath(*base, alias.name)
        if sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file():
            found.append("/".join([*base, alias.name]))
        else:
            found.append("/".join(base) or "__init__")
    return found


def import_graph() -> dict[str, set[str]]:
    """node -> nodes it imports, over the package's modules (tests and docs left out)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        src = _node(rel)
        graph.setdefault(src, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                for target in _target(rel, node):
                    dst = _node(Path(target + ".py"))
                    if dst != src and dst != "napari_resjnd":
                        graph[src].add(dst)
    return graph


def reduce(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop a -> c wherever a longer path a -> b -> ... -> c exists."""

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(graph.get(n, ()))
        return seen

    below = {a: set().union(*(reach(b) for b in bs)) for a, bs in graph.items()}
    return {a: {c for c in bs if c not in below[a]} for a, bs in graph.items()}


def mermaid() -> str:
    """The reduced graph as a mermaid flowchart (sorted: the same code gives the same text)."""
    g = reduce(import_graph())
    lines = ["```mermaid", "flowchart TD"]
    for a in sorted(g):
        for b in sorted(g[a]):
            lines.append(f"  {a.replace('.', '_')}[{a}] --> {b.replace('.', '_')}[{b}]")
    lines.append("```")
    return "\n".join(lines)


def page_with_graph(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"


if __name__ == "__main__":
    PAGE.write_text(page_with_graph(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"{PAGE}: import graph rewritten", file=sys.stderr)

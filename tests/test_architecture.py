"""The package layout is layered: no import circles, and no module imports a higher layer.

Every `import` statement is read with `ast` -- including those inside functions and under
`if TYPE_CHECKING:` -- so a lazy import cannot hide a circle.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("trials", "analysis", "reports")

#: lower number = lower layer; a module may import its own layer's packages and lower ones only
LAYERS = {
    "trials": 0, "trials.similarity": 0, "trials.llm": 0, "trials.persona": 0,
    "trials.session": 1, "trials.population": 1,
    "trials.judging": 2,
    "trials.steering": 3,
    "trials.scenarios": 4,
    "analysis": 5, "reports": 6,
    "trials.run": 7,
    "trials.cli": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    out: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import submodule` depends on the submodule (a parent package always runs
            # first for any submodule import, so that is not an edge); `from pkg import name` on pkg
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module:
                out.add(target)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[best]


def test_every_module_has_a_layer():
    for m in MODULES:
        assert any(m == k or m.startswith(k + ".") for k in LAYERS), f"{m}: add it to LAYERS"


def test_no_import_circles():
    # Tarjan-free: a DFS with colours finds any back edge and prints the circle
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                circle = stack[stack.index(n):] + [n]
                pytest.fail("import circle: " + " -> ".join(circle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_lower_layers_never_import_higher_ones():
    bad = [f"{m} (layer {_layer(m)}) imports {n} (layer {_layer(n)})"
           for m, targets in GRAPH.items() for n in targets if _layer(n) > _layer(m)]
    assert not bad, "\n".join(bad)


def test_analysis_never_imports_trials():
    bad = [f"{m} imports {n}" for m, t in GRAPH.items() if m.startswith("analysis")
           for n in t if not n.startswith("analysis")]
    assert not bad, bad


def test_the_checker_sees_a_circle(tmp_path):
    """The circle check is not vacuous: two modules importing each other are a circle."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from b import x\n")
    b.write_text("def f():\n    import a\n")
    saved = dict(MODULES)
    try:
        MODULES.clear()
        MODULES.update({"a": a, "b": b})
        graph = {m: _imports(m, p) for m, p in MODULES.items()}
    finally:
        MODULES.clear()
        MODULES.update(saved)
    assert graph == {"a": {"b"}, "b": {"a"}}


@pytest.mark.parametrize("package", ["trials.session", "trials.judging", "trials.steering",
                                     "trials.persona", "trials.llm", "trials.run", "analysis", "reports"])
def test_each_package_imports_alone(package):
    """In a fresh interpreter, each package imports by itself (no hidden order dependence)."""
    result = subprocess.run([sys.executable, "-c", f"import {package}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_module_imports():
    failures = {}
    for m in sorted(MODULES):
        try:
            module = importlib.import_module(m)
        except Exception as exc:  # noqa: BLE001 - collect every broken module, not only the first
            failures[m] = f"{type(exc).__name__}: {exc}"
            continue
        assert module.__name__ == m
    assert not failures, failures
    assert len(MODULES) > 50  # the walk found the packages (not an empty glob)

"""The architecture, enforced: app.py → classroom → gan_core.serve → gan_core, one way.

- `gan_core` (the engine) imports no serving code, no page and no UI library;
- `gan_core.serve` (run handles, cohorts, trainer threads and processes) imports the engine
  but no page and no UI library;
- `classroom` imports both, never `app` or the benchmarks; `app.py` imports only `classroom`;
- `benchmarks` may import anything, and nothing but the tests imports it;
- no module imports another package's private (`_name`) names, and no imports go round in a
  cycle, inside functions included.

Every module is walked with `ast` (an import inside a function counts), and the engine and the
serving layer are imported in a fresh interpreter to check nothing UI-side gets loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UI = {"gradio", "gradio_client", "plotly", "PIL", "fastapi", "starlette"}
PACKAGES = ("app", "classroom", "gan_core", "benchmarks")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(absolute module, names imported from it) of every import in `path`, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append((target, tuple(alias.name for alias in node.names)))
    return found


def layer(module: str) -> str | None:
    """Which layer a module of this project belongs to (None: a library)."""
    if module == "app":
        return "app"
    if module == "gan_core.serve" or module.startswith("gan_core.serve."):
        return "serve"
    top = module.split(".")[0]
    return {"gan_core": "engine", "classroom": "classroom", "benchmarks": "benchmarks"}.get(top)


ALLOWED = {  # layer -> the project layers it may import
    "engine": {"engine"},
    "serve": {"engine", "serve"},
    "classroom": {"engine", "serve", "classroom"},
    "app": {"classroom"},
    "benchmarks": {"engine", "serve", "classroom", "benchmarks"},
}
ALL_MODULES = [p for folder in ("gan_core", "classroom", "benchmarks") for p in modules(folder)] + [ROOT / "app.py"]


@pytest.mark.parametrize("path", ALL_MODULES, ids=module_name)
def test_imports_follow_the_layers(path):
    here = layer(module_name(path))
    for target, _ in imports(path):
        there = layer(target)
        if there is not None:
            assert there in ALLOWED[here], f"{module_name(path)} ({here}) imports {target} ({there})"
        elif here in ("engine", "serve"):
            assert target.split(".")[0] not in UI, f"{module_name(path)} imports {target}: the engine knows no page"


@pytest.mark.parametrize("path", ALL_MODULES, ids=module_name)
def test_no_private_name_crosses_a_package(path):
    """`from other_package.x import _name` reaches into another package's insides."""
    here = module_name(path)
    home = here.rpartition(".")[0] if path.name != "__init__.py" else here
    for target, names in imports(path):
        if layer(target) is None:
            continue
        target_package = target.rpartition(".")[0] if target.count(".") else target
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private and target_package != home and not target.startswith(home + "."):
            pytest.fail(f"{here} imports private {private} from {target}")


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    names = {module_name(p) for p in ALL_MODULES}
    for path in ALL_MODULES:
        edges = set()
        for target, imported in imports(path):
            for candidate in [target, *(f"{target}.{n}" for n in imported)]:
                if candidate in names and candidate != module_name(path):
                    edges.add(candidate)
        graph[module_name(path)] = edges
    # Tarjan's strongly connected components: a component of two or more modules is a cycle.
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_nothing_but_the_tests_imports_the_benchmarks():
    for path in [ROOT / "app.py", *modules("classroom"), *modules("gan_core")]:
        assert not [t for t, _ in imports(path) if layer(t) == "benchmarks"], f"{module_name(path)} imports benchmarks"


def test_the_walker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    package = tmp_path / "gan_core" / "serve"
    package.mkdir(parents=True)
    src = package / "m.py"
    src.write_text("def f():\n    import gradio as gr\n    from ..engine import _x\n    from .cohort import Cohort\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert imports(src) == [("gradio", ()), ("gan_core.engine", ("_x",)), ("gan_core.serve.cohort", ("Cohort",))]
    finally:
        ROOT = saved


@pytest.mark.parametrize("folder", ["gan_core"])
def test_importing_the_engine_and_serving_layer_loads_no_ui_package(folder):
    names = [module_name(p) for p in modules(folder) if p.stem != "__main__"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in names)
            + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(UI | {'classroom', 'app'})!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"importing {folder} loaded {out.stdout.strip()}"

"""The engine knows no page: `gan_core` imports neither Gradio, plotly, PIL nor the classroom.

Walks every module of the package with `ast` (so an import inside a function counts too),
and imports the package in a fresh interpreter to check nothing UI-side gets loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("gradio", "gradio_client", "plotly", "PIL", "classroom", "ui", "app")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, anywhere in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "gan_core").glob("*.py")), ids=lambda p: p.name)
def test_engine_module_imports_no_ui(path):
    bad = imported_modules(path) & set(FORBIDDEN)
    assert not bad, f"gan_core/{path.name} imports {sorted(bad)}: the engine must not know the page"


def test_the_walker_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    import gradio as gr\n    from PIL import Image\n")
    assert {"gradio", "PIL"} <= imported_modules(src)


def test_importing_every_engine_module_loads_no_ui_package():
    modules = [f"gan_core.{p.stem}" for p in sorted((ROOT / "gan_core").glob("*.py")) if p.stem != "__main__"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"importing the engine loaded {out.stdout.strip()}"


def test_classroom_is_the_only_way_from_app_to_engine():
    """app.py wires the classroom; the classroom may import gan_core, never app."""
    for path in sorted((ROOT / "classroom").glob("*.py")):
        assert "app" not in imported_modules(path), f"classroom/{path.name} imports app"

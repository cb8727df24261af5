"""The house as a check (DESIGN.md, "The house"): modules one reader can hold, no private
names borrowed across modules, long functions only with a stated reason.

Import layers are checked by import-linter (``make lint``); these are the rules it cannot see.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "analysis"
MAX_MODULE_LINES = 650  # "no module over ~600 lines" (after `ruff format`)
MAX_FUNCTION_LINES = 80  # code lines, the docstring not counted
LONG_REASON = "Long because"  # a function over the limit says why in its docstring


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if ast.get_docstring(node) is not None and len(body) > 1:
        body = body[1:]
    return (node.end_lineno or node.lineno) - body[0].lineno + 1


def module_sizes() -> dict[str, int]:
    """Lines per module, relative to ``src/analysis``."""
    return {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in _modules()}


def private_imports() -> list[str]:
    """``file:line name`` for every private name imported from another module of the project.

    A private module inside a package (``models/_math.py``) may be imported by its package's
    modules; a private *name* (``_helper``) is its own module's business.
    """
    out = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level == 0 and not (node.module or "").startswith("analysis"):
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    out.append(f"{p.relative_to(SRC)}:{node.lineno} {node.module}.{a.name}")
    return out


def long_functions() -> list[str]:
    """``file:line name (n lines)`` for functions over the limit whose docstring gives no reason."""
    out = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node)
                if n > MAX_FUNCTION_LINES and LONG_REASON not in (ast.get_docstring(node) or ""):
                    out.append(f"{p.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_module_is_over_the_limit():
    big = {m: n for m, n in module_sizes().items() if n > MAX_MODULE_LINES}
    assert not big, f"split these modules along the ideas they hold: {big}"


def test_no_private_name_is_imported_across_modules():
    assert not private_imports(), "give these a public name in their package's API"


def test_long_functions_say_why():
    assert not long_functions(), (
        f"split these into named steps, or say in the docstring '{LONG_REASON} …'"
    )


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """Each rule above finds a planted offence (so a pass means something)."""
    pkg = tmp_path / "analysis"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    (pkg / "big.py").write_text(
        "from analysis.other import _hidden\n\n\ndef f():\n" + body + "\n" + "\n" * MAX_MODULE_LINES
    )
    monkeypatch.setattr(f"{__name__}.SRC", pkg)
    assert module_sizes()["big.py"] > MAX_MODULE_LINES
    assert private_imports() == ["big.py:1 analysis.other._hidden"]
    assert long_functions() == [f"big.py:4 f ({MAX_FUNCTION_LINES + 1} lines)"]


def test_import_linter_fails_on_a_forbidden_import(tmp_path):
    """``lint-imports`` (the layer contracts in pyproject.toml) fails when a model imports
    the sources: run on a copy of the package with one such import added.
    """
    import shutil
    import subprocess
    import sys

    root = tmp_path / "repo"
    shutil.copytree(SRC, root / "src" / "analysis", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SRC.parents[1] / "pyproject.toml", root / "pyproject.toml")
    lint = Path(sys.executable).with_name("lint-imports")
    env = {"PYTHONPATH": str(root / "src"), "PATH": str(lint.parent)}
    ok = subprocess.run([str(lint)], cwd=root, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout[-3000:]
    target = root / "src" / "analysis" / "models" / "__init__.py"
    target.write_text(target.read_text() + "\nfrom analysis.sources import load_events  # noqa\n")
    bad = subprocess.run([str(lint)], cwd=root, env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "analysis.models is not allowed to import analysis.sources" in bad.stdout

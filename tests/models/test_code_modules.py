"""The fit cache keys on the code a model depends on: every model declares the project modules
its module imports (``code_modules``), so that editing one of them refits instead of serving a
stale cached fit.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import analysis.models
from analysis.models.base import BayesianModel
from analysis.models.cache import code_files


def _resolve(module: str, name: str) -> str:
    """``from module import name``: the submodule ``module.name`` where there is one."""
    full = f"{module}.{name}"
    try:
        return full if importlib.util.find_spec(full) is not None else module
    except ModuleNotFoundError:
        return module


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def project_imports(module: str) -> set[str]:
    """The modules of the project (``analysis.*``) that ``module`` imports, at run time.

    Imports inside functions count; those under ``if TYPE_CHECKING:`` do not.
    """
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node)
        for n in ast.walk(node)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "analysis"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "analysis":
                out |= {_resolve(node.module, a.name) for a in node.names}
    return out - {module}


def needed_modules(cls: type) -> set[str]:
    """The project modules a model's code depends on besides its own module.

    What its module imports, and what those of them inside ``analysis.models`` import in turn
    (model code); modules outside ``analysis.models`` (schema, errors, config, text) count
    themselves only.
    """
    seen: set[str] = set()
    todo = [cls.__module__]
    while todo:
        m = todo.pop()
        for dep in project_imports(m):
            if dep not in seen:
                seen.add(dep)
                if dep.startswith("analysis.models."):
                    todo.append(dep)
    return seen - {cls.__module__, "analysis", "analysis.models"}


def missing_code_modules(cls: type[BayesianModel]) -> list[str]:
    """The modules ``cls`` depends on but does not declare in ``code_modules``."""
    return sorted(needed_modules(cls) - set(cls.code_modules))


def _model_classes() -> list[type[BayesianModel]]:
    for info in pkgutil.walk_packages(analysis.models.__path__, "analysis.models."):
        importlib.import_module(info.name)

    def subclasses(c: type) -> list[type]:
        return [s for sub in c.__subclasses__() for s in (sub, *subclasses(sub))]

    return sorted(
        {c for c in subclasses(BayesianModel) if c.__module__.startswith("analysis.")},
        key=lambda c: c.__name__,
    )


MODELS = _model_classes()


def test_every_model_family_is_found():
    names = {c.__name__ for c in MODELS}
    assert {"StageTransitionModel", "DwellTimeModel", "ConversionModel", "CureTimeModel"} <= names


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_code_modules_cover_what_the_model_imports(cls):
    assert not missing_code_modules(cls), (
        f"{cls.__name__}: add these to code_modules (the fit cache would serve a stale fit "
        f"after an edit to them)"
    )


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_code_modules_exist_and_are_hashed(cls):
    files = code_files(cls, cls.code_modules)
    assert all(f.is_file() for f in files)
    assert Path(importlib.import_module(cls.__module__).__file__ or "") in files


def test_the_check_fails_when_a_module_is_missing():
    from analysis.models.cure import CureTimeModel

    class Forgetful(CureTimeModel):
        code_modules = BayesianModel.code_modules  # cure's log_ndtr lives in _math

    Forgetful.__module__ = CureTimeModel.__module__
    assert missing_code_modules(Forgetful) == ["analysis.models._math"]


def test_editing_a_declared_module_changes_the_cache_key(monkeypatch):
    """Cure's likelihood uses log_ndtr from _math: an edit there must miss the cache."""
    import pandas as pd

    from analysis.models import cache
    from analysis.models.cure import CureTimeModel

    df = pd.DataFrame({"duration_days": [1.0, 2.0, 3.0], "censored": [False, True, False]})
    before = CureTimeModel(df).cache_key()
    real = Path.read_bytes

    def edited(path: Path) -> bytes:
        data = real(path)
        return data + b"# edited" if path.name == "_math.py" else data

    monkeypatch.setattr(cache.Path, "read_bytes", edited)
    assert CureTimeModel(df).cache_key() != before


def test_a_package_in_code_modules_hashes_every_module_in_it():
    """``analysis.schema`` is a package: the path-table rules in ``schema/paths.py`` key the fit."""
    files = {
        p.relative_to(Path(analysis.models.__file__).parents[1]).as_posix()
        for p in code_files(BayesianModel, ["analysis.schema"])
    }
    assert {"schema/__init__.py", "schema/events.py", "schema/paths.py"} <= files

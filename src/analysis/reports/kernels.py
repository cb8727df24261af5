"""Kernels for the report notebooks: started ahead with their notebook's modules imported.

A worker's next kernel starts (and imports pandas, PyMC, plotly…) while its current report
runs; papermill runs the notebook on it through the engine :func:`register_engine` registers,
and :class:`Heartbeat` says, while it runs, which cell it is in.
"""

from __future__ import annotations

import ast
import functools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from analysis import config
from analysis.reports.figures import HEADLINE_ENV
from analysis.reports.render import heading_text

_logger = logging.getLogger("analysis.reports")


def notebook_imports(nb_path: str | Path) -> list[str]:
    """Return the modules a notebook imports, in order of appearance.

    The modules a notebook imports (``import x``, ``from x import y``; anywhere in its code
    cells, magics skipped), in order of appearance. For ``from x import y`` both ``x`` and
    ``x.y`` are listed: ``y`` may be a submodule (names that are not fail fast in
    :func:`warm_imports`).
    """
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    mods: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        src = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.append(node.module)  # and the names that may be its submodules
                mods += [
                    f"{node.module}.{a.name}" for a in node.names if a.name != "*"
                ]  # (``from analysis import plotting``)
    return list(dict.fromkeys(mods))


def skip_unused_iri_checker() -> None:
    """Keep jsonschema from importing its optional IRI checker, ``rfc3987_syntax`` (~1.8 s).

    ``import nbformat`` (papermill, nbconvert, and plotly's notebook renderer) imports
    ``jsonschema._format``, which imports ``rfc3987_syntax`` when it is installed (it comes with
    ``jsonschema[format-nongpl]``, a Jupyter dependency); that module builds ~35 Earley parsers
    at import time (python-jsonschema/jsonschema#1428). No schema these processes validate
    (nbformat's) uses the ``iri`` formats, so the runner and the kernels it starts mark the module
    unavailable, which jsonschema handles as "not installed". Does nothing once it is imported.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


#: Modules that a module imports only when first used, warmed with it: journeys open DuckDB
#: through ibis, whose backend (and pyarrow's dataset layer) loads on the first connect.
IMPORTED_ON_FIRST_USE: dict[str, tuple[str, ...]] = {
    "analysis.journeys": ("duckdb", "ibis.backends.duckdb", "pyarrow.dataset"),
}


def warm_imports(modules: list[str] | tuple[str, ...]) -> None:
    """Import ``modules`` now, ignoring failures.

    Import ``modules`` now (and what they import on first use, see
    :data:`IMPORTED_ON_FIRST_USE`), ignoring failures (the notebook raises its own import
    errors). Run in a kernel started ahead of its notebook; binds no names in its namespace.
    """
    import importlib

    skip_unused_iri_checker()
    for m in modules:
        for name in (m, *IMPORTED_ON_FIRST_USE.get(m, ())):
            try:
                importlib.import_module(name)
            except Exception:
                pass


@functools.cache
def _kernel_socket_dir() -> Path | None:
    """Return a private folder for this process's kernels' Unix sockets, or None.

    A private folder (mode 0700, removed at exit) for this process's kernels' Unix sockets,
    or None where they cannot be used (then kernels listen on localhost TCP, as papermill's do).

    IPC keeps a report's data off the network stack, and ipykernel does not warn about
    unencrypted TCP in every kernel's log. A socket path must fit in ~107 bytes.
    """
    import atexit
    import shutil
    import tempfile

    if os.name != "posix":
        return None
    try:
        folder = Path(tempfile.mkdtemp(prefix="cjl-kernels-"))
    except OSError:
        return None
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder if len(str(folder)) <= 80 else None


async def _start_kernel_async(modules: list[str], env: dict[str, str]):
    """Start a python3 kernel that imports ``modules`` at start-up.

    Start a python3 kernel that imports ``modules`` at start-up; return its (async) kernel
    manager at once (the kernel is not ready yet), or None when it cannot start (papermill then
    starts one itself).

    The kernel starts and imports (pandas, PyMC, plotly… ~2-4 s) while the worker's current
    notebook runs. Its namespace is untouched (only ``sys.modules`` is warm) and it runs one
    notebook only, so every report still starts from a clean kernel.
    """
    from jupyter_client.manager import AsyncKernelManager

    try:
        sockets = _kernel_socket_dir()
        km = AsyncKernelManager(kernel_name="python3", transport="ipc" if sockets else "tcp")
        if sockets:
            km.ip = str(sockets / "kernel")
        warm = f"__import__('analysis.reports', fromlist=['_']).warm_imports({list(modules)!r})"
        await km.start_kernel(
            cwd=str(config.PROJECT_ROOT),
            env=env,
            extra_arguments=[f"--IPKernelApp.exec_lines={warm}"],
        )
        return km
    except Exception as exc:
        _logger.warning("could not start a kernel ahead (%s); papermill will start one", exc)
        return None


def _start_kernel(modules: list[str], env: dict[str, str]):
    """Start a kernel (:func:`_start_kernel_async`) from code that is not running an event loop."""
    from jupyter_core.utils import run_sync

    return run_sync(_start_kernel_async)(modules, env)


def stop_kernel(km) -> None:
    """Shut the kernel of ``km`` down now (nothing when it is None or gone)."""
    from jupyter_core.utils import run_sync

    if km is None:
        return
    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)
    except Exception as exc:
        _logger.warning("could not shut down a kernel: %s", exc)


@functools.cache
def register_engine() -> str:
    """Register papermill's engine for kernels started ahead; return its name.

    Papermill's nbclient engine, on a kernel started by :func:`_start_kernel_async`; the kernel and
    its client are shut down after the notebook, as papermill does with its own. ``on_ready``
    (optional) is called when the kernel is ready, before the first cell; ``on_cell`` (optional)
    with ``(cell, index, cells)`` as each cell starts. Registered once per process.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class PrestartedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            km=None,
            on_ready=None,
            on_cell=None,
            **kwargs,
        ):
            hooks = {}
            if on_cell is not None:  # (cell, index, all cells) as each cell starts
                cells = nb_man.nb.cells
                hooks["on_cell_start"] = lambda cell, cell_index, **_: on_cell(
                    cell, cell_index, cells
                )
            client = PapermillNotebookClient(
                nb_man,
                km=km,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logging.getLogger("papermill"),
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                on_notebook_start=on_ready,  # called once the kernel answers, before the first cell
                shutdown_kernel="immediate",  # every output has arrived: nothing to wait for
                **hooks,
            )
            return client.execute(cleanup_kc=True)

    papermill_engines.register("cjl-prestarted", PrestartedKernelEngine)
    return "cjl-prestarted"


def quiet_papermill() -> None:
    """Keep papermill's INFO lines out of the runner's log.

    Papermill logs four INFO lines per notebook (input, output, working folder, kernel) that
    say nothing the runner's own progress lines do not; its warnings and errors still show.
    """
    logging.getLogger("papermill").setLevel(logging.WARNING)


def warm_modules(notebooks: list[Path]) -> list[str]:
    """Return the modules the notebooks import, for kernels started ahead."""
    return list(
        dict.fromkeys(m for nb in notebooks if Path(nb).is_file() for m in notebook_imports(nb))
    )


def _headline_file() -> Path:
    import tempfile
    import uuid

    folder = Path(tempfile.gettempdir()) / "cjl-headlines"
    folder.mkdir(exist_ok=True)
    return folder / f"{os.getpid()}-{uuid.uuid4().hex}.json"


def start_worker_kernel(warm: list[str]) -> tuple[Any, Path] | None:
    """Start a kernel ahead (see :func:`_start_kernel_async`) with its own headline file."""
    headline = _headline_file()
    km = _start_kernel(warm, {**os.environ, HEADLINE_ENV: str(headline)})
    return (km, headline) if km is not None else None


async def start_worker_kernel_async(warm: list[str]) -> tuple[Any, Path] | None:
    """Start a kernel ahead (:func:`start_worker_kernel`) inside a running event loop."""
    headline = _headline_file()
    km = await _start_kernel_async(warm, {**os.environ, HEADLINE_ENV: str(headline)})
    return (km, headline) if km is not None else None


class Heartbeat:
    """Progress lines while a report runs.

    While a report runs, a plain line every ``every`` seconds: how long it has run, which
    code cell runs now and for how long, and that cell's first line (a cold model fit takes
    a minute, and a scheduler's log should show the run is alive and where). ``every`` 0 or
    None: silent. Fed by the engine's ``on_cell`` hook; a daemon thread writes the lines.
    """

    def __init__(self, label: str, every: float | None, log) -> None:
        import threading

        self.label, self.every, self.log = label, float(every or 0), log
        self.t0 = self.t_cell = time.monotonic()
        self.where = "starting its kernel"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {label}")

    def on_cell(self, cell, index: int, cells) -> None:
        """Note the code cell that starts now (the engine's ``on_cell`` hook)."""
        if cell.get("cell_type") != "code" or not cell.get("source", "").strip():
            return
        code = [
            i
            for i, c in enumerate(cells)
            if c.get("cell_type") == "code" and c.get("source", "").strip()
        ]
        lines = [ln.strip() for ln in cell["source"].splitlines()]
        first = next((ln for ln in lines if ln and not ln.startswith("#")), lines[0])
        first = first if len(first) <= 70 else first[:69] + "…"
        section = next(
            (
                h
                for c in reversed(cells[:index])
                if c.get("cell_type") == "markdown"
                for h in [heading_text(c.get("source", ""))]
                if h
            ),
            None,
        )
        self.t_cell = time.monotonic()
        self.where = (
            f"code cell {code.index(index) + 1} of {len(code)}"
            f"{f' in «{section}»' if section else ''} ({first})"
        )

    def line(self) -> str:
        """Return the progress line: how long the report and its current cell have run."""
        now = time.monotonic()
        cell = f", {now - self.t_cell:.0f} s in it" if self.where.startswith("code cell") else ""
        return f"… {self.label} still running after {now - self.t0:.0f} s: {self.where}{cell}"

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self.log(self.line())

    def __enter__(self) -> Heartbeat:
        if self.every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)  # no beat after the report's own line

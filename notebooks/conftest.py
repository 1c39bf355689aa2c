"""nbval runs each notebook in its own kernel, which in-process mocks cannot reach: give the kernels an
emulator endpoint instead, one emulator for all the notebooks, started before the first kernel starts and
stopped at the end.

The notebooks also run in the same pytest session as tests/ (``make test``), on its workers: they build on
each other's resources, so they all go to one worker, in order (one unit of work, with
``--dist loadgroup``), while the other workers run the tests. Their emulator is a process of its own: an
emulator inside the worker would share moto's state with the tests that worker runs before them (moto
keeps one state per process). Only the kernels see its endpoint: the tests keep their own environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parent
#: The xdist work unit of every notebook cell (``--dist loadgroup`` sends a unit to one worker).
GROUP = "notebooks"
#: The emulator as pointapp ships it (plain moto), in a process of its own.
EMULATOR_COMMAND = [sys.executable, "-m", "pointapp", "emulator", "--port", "0"]

_emulator: list[tuple[subprocess.Popen[str], str]] = []  # (process, endpoint URL) once started


def _is_cell(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb" and NOTEBOOKS in item.path.parents


def _endpoint() -> str:
    """The notebooks' emulator (started on first use); its URL."""
    if not _emulator:
        process = subprocess.Popen(EMULATOR_COMMAND, stdout=subprocess.PIPE, text=True, cwd=NOTEBOOKS.parent)
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("Emulator running at "), first
        _emulator.append((process, first.rsplit(" ", 1)[1]))
    return _emulator[0][1]


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadgroup``: xdist's scheduling by group, with every notebook cell in the one group
    :data:`GROUP`, so one worker runs them all, in order; every other test is a unit of its own."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class NotebooksTogether(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            # (pytest 9 ignores the group that an ``xdist_group`` mark adds to a node id: the scope is named here)
            return GROUP if nodeid.split("::", 1)[0].endswith(".ipynb") else super()._split_scope(nodeid)

    return NotebooksTogether(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """A notebook's kernel starts as its first cell is set up: with the emulator's endpoint and credentials
    in its environment (set for that moment only)."""
    if not _is_cell(item):
        yield
        return
    kernel_environment = {"AWS_ENDPOINT_URL": _endpoint(), "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                          "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                          "AWS_PROFILE": None, "AWS_DEFAULT_PROFILE": None}
    before = {name: os.environ.get(name) for name in kernel_environment}
    _set(kernel_environment)
    try:
        yield
    finally:
        _set(before)


def _set(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    for process, _ in _emulator:
        process.terminate()
        process.wait(timeout=20)
    _emulator.clear()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say how long the notebooks took (their cells' time, kernel starts included, all on the one emulator)."""
    reports = [report for reports in terminalreporter.stats.values() for report in reports
               if ".ipynb::" in getattr(report, "nodeid", "") and hasattr(report, "duration")]
    cells = [report for report in reports if report.when == "call"]
    if cells:
        seconds = sum(report.duration for report in reports)
        terminalreporter.write_line(f"notebook session: {len(cells)} cells in {seconds:.0f} s, on one emulator")

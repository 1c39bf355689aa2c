"""nbval runs each notebook in its own kernel, which in-process mocks cannot reach: give the kernels an
emulator endpoint instead, started here before any kernel starts and stopped at the end."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from pointapp.emulator import Emulator

_emulator = Emulator()
_STARTED = pytest.StashKey[float]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STARTED] = time.monotonic()
    os.environ["AWS_ENDPOINT_URL"] = _emulator.start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    _emulator.stop()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say how long the notebooks took, all on the one emulator."""
    cells = sum(len(terminalreporter.stats.get(name, [])) for name in ("passed", "failed", "skipped"))
    terminalreporter.write_line(f"notebook session: {cells} cells in {time.monotonic() - config.stash[_STARTED]:.0f} s, "
                                "on one emulator")

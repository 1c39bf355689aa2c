"""nbval runs each notebook in its own kernel, which in-process mocks cannot reach: give the kernels an
emulator endpoint instead, started here before any kernel starts and stopped at the end."""

from __future__ import annotations

import os

import pytest

from pointapp.emulator import Emulator

_emulator = Emulator()


def pytest_configure(config: pytest.Config) -> None:
    os.environ["AWS_ENDPOINT_URL"] = _emulator.start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    _emulator.stop()

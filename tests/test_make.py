"""`make run` on a fresh clone of the committed tree (reusing this environment's packages)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_make_run_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "pointapp"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    venv = Path(sys.prefix)
    stamp = tmp_path / "installed"  # newer than the clone's pyproject.toml: make reuses this environment as it is
    stamp.touch()
    result = subprocess.run(["make", "run", f"VENV={venv}", f"STAMP={stamp}"], cwd=clone, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Run record: runs/" in result.stdout
    (record,) = (clone / "runs").iterdir()
    assert (record / "summary.json").exists() and (record / "architecture-live.png").exists()
    assert "Traceback" not in result.stdout + result.stderr
    assert "pip install" not in result.stdout  # nothing was reinstalled over this environment


def dry_run(target: str, *variables: str) -> str:
    """The commands ``make TARGET`` would run (``make -n``), setup's included, none of them run."""
    result = subprocess.run(["make", "-n", target, f"VENV={Path(sys.prefix)}", *variables], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_lab_runs_jupyterlab_on_the_shared_emulator_and_as_root_allows_root() -> None:
    as_root = dry_run("lab", "USER_ID=0")
    assert "pointapp emulator --start" in as_root and "AWS_ENDPOINT_URL" not in as_root
    assert "jupyter lab --allow-root notebooks" in as_root
    assert "--allow-root" not in dry_run("lab", "USER_ID=1000")
    # with no USER_ID given, make asks `id -u`: root here gets --allow-root, anyone else does not
    assert ("--allow-root" in dry_run("lab")) == (os.getuid() == 0)


def test_make_run_is_a_fresh_run_of_its_own_and_make_emulator_starts_the_shared_one() -> None:
    assert "pointapp runbook --ephemeral" in dry_run("run")
    assert "pointapp emulator --start" in dry_run("emulator")

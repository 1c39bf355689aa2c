"""`make run` on a fresh clone of the committed tree (reusing this environment's packages)."""

from __future__ import annotations

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

"""The runbook: the notebooks executed headless with papermill, one run record per run."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pointapp.emulator import Emulator
from pointapp.errors import ConfirmationRequired, PointappError
from pointapp.spec import load_spec
from pointapp.steps import STEPS
from pointapp.target import resolve_target

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
START_HERE = "00_start_here.ipynb"
#: Walkthroughs that run after the steps they use.
WALKTHROUGHS = ("20_release.ipynb", "90_architecture.ipynb")


def _local_kernel_manager() -> type:
    """A kernel manager whose kernels talk over local sockets (IPC) instead of TCP on the loopback."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class LocalKernelManager(AsyncKernelManager):  # type: ignore[misc]
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

    return LocalKernelManager


def runbook_notebooks(notebooks: Path = NOTEBOOKS) -> list[Path]:
    """The start page, the notebook of every available step in registry order, then the walkthroughs."""
    names = [START_HERE] + [step.notebook for step in STEPS if step.available] + list(WALKTHROUGHS)
    return [notebooks / name for name in names]


def run_runbook(*, env: str = "prod", config: str | None = None, region: str | None = None,
                endpoint_url: str | None = None, aws: bool = False, profile: str | None = None,
                yes: bool = False, output: str | Path = "runs", notebooks: Path = NOTEBOOKS) -> Path:
    """Execute the runbook's notebooks against one target and return the run record's directory."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    load_spec(env, config)  # refuse a bad spec before starting anything
    target = resolve_target(region=region, endpoint_url=endpoint_url, aws=aws, profile=profile)
    if target.is_real_aws and not yes:
        raise ConfirmationRequired("the runbook applies changes to real AWS: pass --yes to confirm")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    record = Path(output) / f"{stamp}-{env}"
    record.mkdir(parents=True, exist_ok=False)
    emulator = Emulator() if target.kind == "emulator" else None
    try:
        url = emulator.start() if emulator else target.endpoint_url
        parameters: dict[str, Any] = {
            "env": env, "config": str(Path(config).resolve()) if config else "", "region": target.region,
            "endpoint_url": url or "", "aws": target.is_real_aws, "profile": profile or "", "apply": True, "yes": yes,
        }
        kernel_manager = _local_kernel_manager()
        print(f"Runbook for {env} on {target.describe() if not emulator else 'embedded emulator ' + str(url)}")
        for notebook in runbook_notebooks(notebooks):
            started = time.monotonic()
            print(f"  {notebook.name:<24} running ...", flush=True)
            try:
                papermill.execute_notebook(str(notebook), str(record / notebook.name), parameters=parameters,
                                           kernel_name="python3", progress_bar=False, cwd=str(notebook.parent),
                                           kernel_manager_class=kernel_manager)
            except PapermillExecutionError as error:
                raise PointappError(f"{notebook.name} failed in cell {error.exec_count}: "
                                    f"{error.ename}: {error.evalue.splitlines()[0] if error.evalue else ''}; "
                                    f"executed copy in {record / notebook.name}") from None
            print(f"  {notebook.name:<24} done in {time.monotonic() - started:.1f}s", flush=True)
    finally:
        if emulator:
            emulator.stop()
    return record

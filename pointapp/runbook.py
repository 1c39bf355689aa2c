"""The runbook: the notebooks executed headless with papermill, with a run record an auditor can read.

A run record is a directory ``runs/<timestamp>-<env>/`` holding every executed notebook and a summary
(``summary.json`` and ``summary.md``): the parameters, the target, each notebook's status and duration,
the resources each step owns afterwards, and the error if any. A run stops at the first failing
notebook; ``--resume RUN_DIR`` continues from it with the same parameters, into the same record.

Secrets never reach a record: a parameter whose name marks it secret is handed to the kernels through
the environment, not through papermill (which would copy it into the notebook), and every file of the
record is scanned for known secret values before the run ends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pointapp import shared_emulator
from pointapp.context import StepContext
from pointapp.emulator import Emulator
from pointapp.errors import ConfirmationRequired, PointappError, SpecError
from pointapp.spec import load_spec
from pointapp.steps import STEPS, get, parse_steps
from pointapp.target import Target, resolve_target

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
START_HERE = "00_start_here.ipynb"
#: Walkthroughs that run after the steps they use.
WALKTHROUGHS = ("20_release.ipynb", "90_architecture.ipynb", "90_audit.ipynb")
SECRET_NAME = re.compile(r"(secret|password|passwd|token|credential|private_key|api_key)", re.IGNORECASE)
SECRET_ENV_PREFIX = "POINTAPP_SECRET_"


def _local_kernel_manager(sockets: Path) -> type:
    """A kernel manager whose kernels talk over local sockets (IPC) instead of TCP on the loopback.

    The sockets live in ``sockets``, a directory of this run alone: without it they are made in the
    working directory under one fixed name, and two runbooks started side by side would talk to each
    other's kernels.
    """
    from jupyter_client.manager import KernelManager
    from traitlets import default

    class LocalKernelManager(KernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return str(sockets / f"kernel-{id(self)}")

    return LocalKernelManager


class _Kernels:
    """The notebooks' kernels, one fresh kernel per notebook: the next one boots (Python, IPython, the
    imports) while the current notebook runs, and a used one shuts down in the background."""

    def __init__(self, manager: type, cwd: Path) -> None:
        self.manager, self.cwd = manager, cwd
        self.ready: Any = None
        self.stopping: list[threading.Thread] = []

    def _start(self) -> Any:
        kernel = self.manager(kernel_name="python3")
        kernel.start_kernel(cwd=str(self.cwd))  # returns once the process is launched; it boots on its own
        return kernel

    def take(self, another_follows: bool) -> Any:
        """A started kernel for the next notebook; with ``another_follows``, the one after starts booting."""
        kernel, self.ready = self.ready or self._start(), None
        if another_follows:
            self.ready = self._start()
        return kernel

    def release(self, kernel: Any) -> None:
        thread = threading.Thread(target=kernel.shutdown_kernel, name="pointapp-kernel-shutdown", daemon=True)
        thread.start()
        self.stopping.append(thread)

    def close(self) -> None:
        if self.ready is not None:
            self.release(self.ready)
            self.ready = None
        for thread in self.stopping:
            thread.join(timeout=30)


def runbook_notebooks(notebooks: Path = NOTEBOOKS, steps: Iterable[str] | None = None,
                      start: str | None = None) -> list[Path]:
    """The start page, the notebooks of the chosen steps in step-list order, then the walkthroughs.

    ``steps`` limits the run to those steps (the start page only); ``start`` skips the steps before it.
    """
    chosen = [s for s in STEPS if s.available]
    if steps:
        wanted = set(steps)
        chosen = [s for s in chosen if s.name in wanted]
    if start:
        names = [s.name for s in chosen]
        if start not in names:
            raise SpecError("--from", f"step {start!r} is not in this run; allowed: {', '.join(names)}")
        chosen = chosen[names.index(start):]
    names = [START_HERE] + [s.notebook for s in chosen] + ([] if steps else list(WALKTHROUGHS))
    return [notebooks / name for name in names]


def step_of(notebook: str) -> str:
    return next((s.name for s in STEPS if s.notebook == notebook), Path(notebook).stem.split("_", 1)[-1])


def secret_parameter(name: str, default: str = "") -> str:
    """In a notebook: the value of a secret runbook parameter (passed through the environment)."""
    return os.environ.get(SECRET_ENV_PREFIX + name.upper(), default)


@dataclass
class NotebookRun:
    notebook: str
    step: str
    status: str = "pending"  # pending, done, failed, replayed
    duration: float = 0.0
    error: str = ""


@dataclass
class Summary:
    env: str
    target: str
    parameters: dict[str, Any]
    secret_parameters: list[str]
    started: str
    notebooks: list[NotebookRun]
    finished: str = ""
    status: str = "running"
    resources: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def write(self, record: Path) -> None:
        (record / "summary.json").write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (record / "summary.md").write_text(self.markdown(), encoding="utf-8")

    def markdown(self) -> str:
        lines = [f"# Run record: {self.env}", "", f"- target: {self.target}", f"- started: {self.started}",
                 f"- finished: {self.finished or '-'}", f"- status: **{self.status}**", "", "## Parameters", ""]
        lines += [f"- `{k}` = `{v!r}`" for k, v in sorted(self.parameters.items())]
        lines += [f"- `{k}` = (secret, not recorded)" for k in self.secret_parameters]
        lines += ["", "## Notebooks", "", "| notebook | step | status | duration | error |", "|---|---|---|---|---|"]
        lines += [f"| {n.notebook} | {n.step} | {n.status} | {n.duration:.1f}s | {n.error} |" for n in self.notebooks]
        if self.resources:
            lines += ["", "## Resources owned after the run", "", "| step | resources |", "|---|---|"]
            lines += [f"| {step} | {count} |" for step, count in self.resources.items()]
        lines += ["", *[f"> {note}" for note in self.notes]]
        return "\n".join(lines).rstrip() + "\n"

    @classmethod
    def read(cls, record: Path) -> Summary:
        try:
            data = json.loads((record / "summary.json").read_text(encoding="utf-8"))
        except OSError:
            raise SpecError("--resume", f"{record} is not a run record (no summary.json)") from None
        data["notebooks"] = [NotebookRun(**n) for n in data["notebooks"]]
        return cls(**data)


def _split_secrets(parameters: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    plain = {k: v for k, v in parameters.items() if not SECRET_NAME.search(k)}
    secret = {k: str(v) for k, v in parameters.items() if SECRET_NAME.search(k)}
    return plain, secret


def scan_record(record: Path, secrets: Iterable[str]) -> list[str]:
    """The files of ``record`` that contain one of ``secrets`` (values of 6 characters or more)."""
    values = [s for s in secrets if s and len(s) >= 6]
    leaked = []
    for path in sorted(record.rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if any(value in text for value in values):
                leaked.append(path.name)
    return leaked


def known_secret_values(ctx: StepContext) -> list[str]:
    """The values of the secrets the environment holds (Secrets Manager), to look for in the record."""
    values: list[str] = []
    client = ctx.client("secretsmanager")
    for page in client.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            if not (secret["Name"].startswith(f"{ctx.spec.owner}/") or secret["Name"].startswith("rds!")):
                continue
            text = client.get_secret_value(SecretId=secret["ARN"]).get("SecretString", "") or ""
            values.append(text)
            try:  # the fields that are secret (a password), not the ones that are not (a user name)
                values += [str(v) for k, v in json.loads(text).items() if SECRET_NAME.search(k)]
            except (ValueError, AttributeError):
                pass
    return values


def owned_counts(planned: Any) -> dict[str, int]:
    """How many resources each step owns on the target now (from a plan's discovery)."""
    return {name: len(get(name).load().inventory(state)) for name, state in planned.observed.items()}


def run_runbook(*, env: str = "prod", config: str | None = None, region: str | None = None,
                endpoint_url: str | None = None, aws: bool = False, profile: str | None = None,
                yes: bool = False, output: str | Path = "runs", notebooks: Path = NOTEBOOKS,
                steps: str | Iterable[str] | None = None, start: str | None = None, resume: str | Path | None = None,
                extra: Mapping[str, Any] | None = None, say: Callable[[str], None] = print,
                ephemeral: bool = False) -> Path:
    """Execute the runbook's notebooks against one target and return the run record's directory.

    On the shared emulator (the default) the run leaves what it built there; with ``ephemeral`` an embedded
    emulator holds the run's resources and ends with it. Either way the kernels get the emulator's URL.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from pointapp import diagram, engine
    from pointapp.target import connect

    previous_target = ""
    if resume:
        record = Path(resume)
        summary = Summary.read(record)
        previous, previous_target = summary.parameters, summary.target
        env, config, region = previous["env"], previous.get("config") or None, previous["region"]
        endpoint_url = previous.get("endpoint_url") or None
        aws, profile, yes = previous.get("aws", False), previous.get("profile") or None, yes or previous.get("yes", False)
        if summary.target.startswith("embedded emulator"):
            endpoint_url, ephemeral = None, True
        elif summary.target.startswith("shared emulator"):
            endpoint_url, ephemeral = None, False
    load_spec(env, config)  # refuse a bad spec before starting anything
    target = resolve_target(region=region, endpoint_url=endpoint_url, aws=aws, profile=profile, ephemeral=ephemeral)
    if target.is_real_aws and not yes:
        raise ConfirmationRequired("the runbook applies changes to real AWS: pass --yes to confirm")
    plain_extra, secret_extra = _split_secrets(extra or {})
    if not resume:
        chosen = runbook_notebooks(notebooks, parse_steps(steps) if steps else None, start)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        record = Path(output) / f"{stamp}-{env}"
        record.mkdir(parents=True, exist_ok=False)
        summary = Summary(env, "", {}, sorted(secret_extra), datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          [NotebookRun(p.name, step_of(p.name)) for p in chosen])
    emulator = Emulator() if target.kind == "emulator" else None
    secret_env = {SECRET_ENV_PREFIX + k.upper(): v for k, v in secret_extra.items()}
    saved_env = {k: os.environ.get(k) for k in secret_env}
    os.environ.update(secret_env)
    sockets = tempfile.mkdtemp(prefix="pointapp-kernels-")
    kernels: _Kernels | None = None
    try:
        if target.kind == "shared":
            shared = shared_emulator.ensure(say=say)
            target = Target("shared", target.region, shared.url, pid=shared.pid)
        url = emulator.start() if emulator else target.endpoint_url
        summary.target = f"embedded emulator ({url}, ended with the run)" if emulator else target.describe()
        parameters: dict[str, Any] = {
            "env": env, "config": str(Path(config).resolve()) if config else "", "region": target.region,
            "endpoint_url": url or "", "aws": target.is_real_aws, "profile": profile or "", "apply": True, "yes": yes,
            **plain_extra,
        }
        local = emulator is not None or target.kind == "shared"  # found again by its kind on --resume, not its URL
        summary.parameters = {**parameters, "endpoint_url": "" if local else parameters["endpoint_url"]}
        summary.status, summary.finished = "running", ""
        summary.write(record)
        say(f"Runbook for {env} on {summary.target}; record {record}")
        kernels = _Kernels(_local_kernel_manager(Path(sockets)), notebooks)
        # the emulator of the failed run is gone: an embedded one always, a shared one when it was stopped since
        replay = bool(resume and (emulator or (target.kind == "shared" and summary.target != previous_target)))
        if replay:
            which = "embedded" if emulator else "shared"
            summary.notes.append(f"resumed on a new {which} emulator: the steps already done were replayed first, "
                                 "since the previous emulator's state ended with it")
        runs = [run for run in summary.notebooks if run.status != "done" or replay]
        for position, run in enumerate(runs):
            path = notebooks / run.notebook
            started = time.monotonic()
            say(f"  {run.notebook:<24} {run.step:<10} running ...")
            kernel = kernels.take(another_follows=position + 1 < len(runs))
            try:
                papermill.execute_notebook(str(path), str(record / run.notebook), parameters=parameters,
                                           kernel_name="python3", progress_bar=False, cwd=str(path.parent), km=kernel)
            except PapermillExecutionError as error:
                run.status, run.duration = "failed", time.monotonic() - started
                evalue = error.evalue.splitlines()[0] if error.evalue else ""
                run.error = f"cell {error.exec_count}: {error.ename}: {evalue}"
                summary.status = "failed"
                summary.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
                summary.write(record)
                # A step whose dependencies are not built fails again on resume unless they are in the run.
                advice = ("run the runbook with the steps it needs (in --steps, or --from an earlier step)"
                          if error.ename == "DependencyError" else f"fix it and run `pointapp runbook --resume {record}`")
                raise PointappError(f"{run.notebook} failed in cell {error.exec_count}: {error.ename}: {evalue}; "
                                    f"{advice}") from None
            finally:
                kernels.release(kernel)
            run.status = "replayed" if (run.status == "done" and replay) else "done"
            run.duration = time.monotonic() - started
            summary.write(record)
            say(f"  {run.notebook:<24} {run.step:<10} {run.status} in {run.duration:.1f}s")
        # The closing checks share one connection and one discovery: what each step owns, the secrets to
        # look for in the record, and the live figure of what the run built.
        with connect(env=env, config=config, region=target.region, endpoint_url=url, aws=target.is_real_aws,
                     profile=profile, progress=lambda _: None) as ctx:
            planned = engine.plan(ctx)
            summary.resources = owned_counts(planned)
            leaked = scan_record(record, [*secret_extra.values(), *known_secret_values(ctx)])
            if leaked:
                summary.status = "failed"
                summary.notes.append("a secret value appears in: " + ", ".join(leaked))
                summary.write(record)
                raise PointappError(f"the run record holds a secret value in {', '.join(leaked)}: do not share it")
            summary.status = "succeeded"
            summary.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
            summary.write(record)
            diagram.draw(ctx.spec, record, formats=["png", "svg"], name="architecture-live", ctx=ctx, planned=planned)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if kernels is not None:
            kernels.close()
        if emulator:
            emulator.stop()
        shutil.rmtree(sockets, ignore_errors=True)
    return record

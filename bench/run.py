"""The benchmark, run by hand: ``.venv/bin/python bench/run.py`` (a few minutes; not a test).

It starts the embedded emulator in this process behind a counting layer (a WSGI middleware that sees
every request, so the API counts come from the emulator's side, not from pointapp's own report), runs
the ``pointapp`` command against it as a user would (each command its own process), prints a table and
appends it, with the date and the machine, to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pointapp.emulator import Emulator  # noqa: E402
from pointapp.target import READ_PREFIXES  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
#: Reads of one resource's tags: what the one GetResources listing saves where it lists the type.
TAG_READS = {"ListTagsForResource", "ListTagsLogGroup", "GetBucketTagging", "DescribeTags"}


class Counting:
    """WSGI middleware: counts each AWS request by service and operation; reads vs changes."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: Counter[tuple[str, str, bool]] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            service, operation = self.identify(environ)
            mutating = not operation.startswith(READ_PREFIXES) if operation else environ["REQUEST_METHOD"] not in ("GET", "HEAD")
            with self.lock:
                self.calls[(service, operation or environ["REQUEST_METHOD"], mutating)] += 1
        return self.app(environ, start_response)

    @staticmethod
    def identify(environ: dict[str, Any]) -> tuple[str, str]:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        service = authorization.split("Credential=", 1)[-1].split("/")[3] if "Credential=" in authorization else "?"
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            return service, target.rsplit(".", 1)[-1]
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if "Action" in query:
            return service, query["Action"][0]
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = _Replay(body)
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            if "Action" in form:
                return service, form["Action"][0]
        return service, ""  # a REST call (S3, SES v2): counted by its HTTP method

    def take(self) -> Counter[tuple[str, str, bool]]:
        with self.lock:
            taken, self.calls = self.calls, Counter()
        return taken


class _Replay:
    def __init__(self, body: bytes) -> None:
        import io

        self.stream = io.BytesIO(body)

    def read(self, *args: Any) -> bytes:
        return self.stream.read(*args)

    def readline(self, *args: Any) -> bytes:
        return self.stream.readline(*args)


#: The peak memory (resident set, MB) of each command run, its notebook kernels included.
PEAKS: dict[str, float] = {}

# Commands start from a small launcher process made before the emulator fills this one: a child forked
# from this process would count the emulator's memory, shared until it runs the command, as its own.
_LAUNCHER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    argv, cwd = json.loads(line)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    print(json.dumps([time.perf_counter() - started, os.waitstatus_to_exitcode(status), errors,
                      usage.ru_maxrss / 1024]), flush=True)
"""
_launcher: subprocess.Popen[str] | None = None


def command(argv: list[str], label: str) -> tuple[float, int, str]:
    """Run ``argv``; returns wall time, exit code and stderr, and records its peak memory in :data:`PEAKS`
    (the command's and every process it waited for: a runbook's kernels)."""
    global _launcher
    if _launcher is None:
        _launcher = subprocess.Popen([sys.executable, "-c", _LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
    assert _launcher.stdin is not None and _launcher.stdout is not None
    _launcher.stdin.write(json.dumps([argv, str(ROOT)]) + "\n")
    _launcher.stdin.flush()
    seconds, code, errors, peak = json.loads(_launcher.stdout.readline())
    PEAKS[label] = max(PEAKS.get(label, 0.0), peak)
    return seconds, code, errors


def pointapp(endpoint: str, *args: str) -> float:
    """Run one ``pointapp`` command against the emulator; returns its wall time in seconds."""
    seconds, code, errors = command([sys.executable, "-m", "pointapp", *args, "--endpoint-url", endpoint],
                                    " ".join(a for a in args[:2] if not a.startswith("-")))
    if code not in (0, 2):
        raise SystemExit(f"pointapp {' '.join(args)} failed: {errors.strip()}")
    return seconds


def reset(endpoint: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).read()


def measure(rows: list[tuple[str, str, str, str]], counter: Counting, label: str, seconds: float, note: str = "") -> Counter[Any]:
    calls = counter.take()
    total = sum(calls.values())
    changes = sum(n for (_, _, mutating), n in calls.items() if mutating)
    rows.append((label, f"{seconds:.2f} s", f"{total} ({changes} changes)", note))
    return calls


def cloudformation(endpoint: str, folder: Path) -> tuple[float, list[str]]:
    """Deploy the exported templates as a command of its own (like ``pointapp up``: a process that starts,
    imports boto3 and deploys); returns its wall time and the stacks the emulator could not deploy."""
    from moto.cloudformation.parsing import get_model_map

    supported = set(get_model_map())
    deployable, failed = [], []
    for path in sorted(folder.glob("*.json"), key=lambda p: _GROUP_ORDER.index(p.stem.rsplit("-", 1)[-1])):
        lacking = sorted({r["Type"] for r in json.loads(path.read_text())["Resources"].values()} - supported)
        if lacking:  # the emulator's CloudFormation would skip these silently: not a fair comparison
            failed.append(f"{path.stem.rsplit('-', 1)[-1]} (the emulator's CloudFormation lacks {', '.join(lacking)})")
        else:
            deployable.append(str(path))
    result = folder / "result.out"
    seconds, code, errors = command([sys.executable, str(Path(__file__).resolve()), "--deploy-cloudformation",
                                     endpoint, str(result), *deployable], "cloudformation")
    if code:
        raise SystemExit(f"deploying the templates failed: {errors.strip()}")
    return seconds, failed + json.loads(result.read_text())


def deploy_cloudformation(endpoint: str, templates: list[Path]) -> list[str]:
    """Deploy ``templates``, in order, to the emulator's CloudFormation; returns the failures."""
    import boto3

    cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name="ap-northeast-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    failed = []
    for path in templates:
        name = path.stem
        try:
            cfn.create_stack(StackName=name, TemplateBody=path.read_text(), Capabilities=["CAPABILITY_NAMED_IAM"])
            status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
            made = len(cfn.list_stack_resources(StackName=name)["StackResourceSummaries"])
            wanted = len(json.loads(path.read_text())["Resources"])
            if status != "CREATE_COMPLETE":
                failed.append(f"{path.stem.rsplit('-', 1)[-1]} ({status})")
            elif made < wanted:
                failed.append(f"{path.stem.rsplit('-', 1)[-1]} (the emulator made {made} of {wanted} resources)")
        except Exception as error:  # noqa: BLE001 - a benchmark reports what the emulator cannot deploy
            reason = str(error).splitlines()[0].split("operation: ", 1)[-1]
            failed.append(f"{path.stem.rsplit('-', 1)[-1]} ({reason[:90]})")
    return failed


_GROUP_ORDER = ["network", "registry", "data", "mail", "service", "delivery", "bastion", "frontend"]


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")  # the emulator warns about every resource type its CloudFormation lacks
    counter_box: dict[str, Counting] = {}

    def wrap(app: Any) -> Any:
        counter_box["c"] = Counting(app)
        return counter_box["c"]

    rows: list[tuple[str, str, str, str]] = []
    command([sys.executable, "-c", "pass"], "python")  # the launcher starts while this process is small
    with Emulator(port=0, wrap=wrap) as emulator, tempfile.TemporaryDirectory() as scratch:
        url, counter = emulator.endpoint_url, counter_box["c"]
        pointapp(url, "plan")  # warm the emulator's backends, so every figure below is steady-state
        counter.take()
        full = pointapp(url, "up")
        measure(rows, counter, "up, everything (--parallel 4)", full)
        noop = pointapp(url, "up")
        noop_calls = measure(rows, counter, "up again (no-op)", noop, "target: 0 changes, at most 40 reads")
        measure(rows, counter, "plan (in sync)", pointapp(url, "plan"))
        measure(rows, counter, "down", pointapp(url, "down"))
        reset(url)
        pointapp(url, "plan")
        counter.take()
        sequential = pointapp(url, "up", "--parallel", "1")
        measure(rows, counter, "up, everything (--parallel 1)", sequential)
        reset(url)

        # the same network, by pointapp and by CloudFormation with the exported templates
        folder = Path(scratch) / "cfn"
        pointapp(url, "export", "cloudformation", "-o", str(folder))
        counter.take()
        cfn_seconds, cfn_failed = cloudformation(url, folder)
        measure(rows, counter, "CloudFormation, exported templates", cfn_seconds,
                "not deployable on the emulator: " + ", ".join(cfn_failed) if cfn_failed else "all stacks")
        reset(url)
        pointapp(url, "plan")
        counter.take()
        deployed = {"network": "network,endpoints", "registry": "registry", "data": "database,cache", "mail": "mail",
                    "service": "service", "delivery": "delivery", "bastion": "bastion"}
        same = ",".join(steps for group, steps in deployed.items()
                        if not any(failure.startswith(f"{group} ") for failure in cfn_failed))
        ours = pointapp(url, "up", "--only", same)
        measure(rows, counter, f"up --only {same}", ours,
                f"the steps of the stacks that deployed; CloudFormation / pointapp: {cfn_seconds / ours:.2f}")

        # runbook overhead per notebook over the CLI doing the same steps
        reset(url)
        steps = "network,registry,mail"
        cli = pointapp(url, "up", "--only", steps, "--parallel", "1")
        reset(url)
        book = pointapp(url, "runbook", "--steps", steps, "-o", str(Path(scratch) / "runs"))
        notebooks = len(steps.split(",")) + 1  # the start-here checklist runs too
        counter.take()
        rows.append(("runbook overhead per notebook", f"{(book - cli) / notebooks:.2f} s", "-",
                     f"{notebooks} notebooks {book:.1f} s vs CLI {cli:.1f} s; target at most 2 s"))
        drawn, code, errors = command([sys.executable, "-m", "pointapp", "diagram", "--format", "png,svg",
                                       "-o", str(Path(scratch) / "d")], "diagram")
        if code:
            raise SystemExit(f"pointapp diagram failed: {errors.strip()}")
        rows.append(("diagram (png, svg)", f"{drawn:.2f} s", "-", "target under 2 s"))

    from pointapp import schedule
    from pointapp.spec import load_spec
    from pointapp.steps import STEPS

    estimate = schedule.estimate(load_spec("prod"), {s.name: (10, None) for s in STEPS if s.name != "frontend"}, 4)
    rows.append(("virtual-clock stand-up on AWS", f"{estimate.makespan / 60:.1f} min", "-",
                 f"critical path {estimate.critical / 60:.1f} min, sequential {estimate.sequential / 60:.1f} min"))
    heaviest = max(PEAKS, key=lambda label: PEAKS[label])
    rows.append(("peak memory of any command", f"{PEAKS[heaviest]:.0f} MB", "-",
                 f"pointapp {heaviest} (kernels included); target under 300 MB; "
                 + ", ".join(f"{label} {mb:.0f}" for label, mb in sorted(PEAKS.items()))))
    reads = sum(n for (_, _, mutating), n in noop_calls.items() if not mutating)
    one_by_one = sum(n for (_, operation, mutating), n in noop_calls.items()
                     if not mutating and operation in TAG_READS)
    table = _table(rows)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    text = f"\n## {datetime.datetime.now().isoformat(timespec='minutes')} on {machine}\n\n{table}\n"
    text += (f"\nNo-op up: {reads} reads, {one_by_one} of them tag reads of single resources whose type the "
             "emulator's GetResources does not list (on AWS that listing holds them: "
             f"{reads - one_by_one} reads). Read calls of the no-op up by operation: ")
    text += json.dumps(sorted(f"{s}:{o} x{n}" for (s, o, m), n in noop_calls.items() if not m)) + "\n"
    print(text)
    with RESULTS.open("a") as results:
        results.write(text)


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| measure | time | API calls (emulator side) | note |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--deploy-cloudformation"]:
        Path(sys.argv[3]).write_text(json.dumps(deploy_cloudformation(sys.argv[2], [Path(p) for p in sys.argv[4:]])))
    else:
        main()

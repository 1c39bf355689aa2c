"""The benchmark, run by hand: ``.venv/bin/python bench/run.py [--latency-ms 100]`` (minutes; not a test).

It runs the ``pointapp`` command as a user would, each command its own process, two ways:

- as a user runs it with `--ephemeral`: the command starts the embedded emulator inside itself (its state
  ends with the command, so these are stand-ups from nothing); the emulator sits behind a counting layer
  (a WSGI middleware that sees every request, so the API counts come from the emulator's side, not from
  pointapp's own report);
- against an endpoint: the emulator runs in this process behind the same layer, and the commands share
  its state (the no-op ``up``, ``plan`` in sync, ``down``, CloudFormation, the runbook).

Then with latency (``--latency-ms``, 100 by default: AWS seen from another region) in front of the
emulator: ``plan`` in sync and ``up --only network`` at 0 ms and at that latency, each with its ratio to
the serial sum (its read calls times the latency), and ``up --only network`` beside a straight sequence
of the same boto3 calls (recorded from pointapp, replayed one after another by a plain script). It
prints a table and appends it, with the date and the machine, to ``bench/RESULTS.md``.

Every command runs with Python's bytecode cache, as on a user's machine: a shell that sets
``PYTHONDONTWRITEBYTECODE`` would make each command compile pointapp's sources again (0.1 to 0.2 s of each
command's start), a cost no user pays after the first run. The bench compiles them once before it measures.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# pointapp is imported where it is used, not here: the replay (``--replay``) is a plain boto3 script, and a
# process that imports this module to replay must not import pointapp too.

RESULTS = ROOT / "bench" / "RESULTS.md"
#: Reads of one resource's tags: what the one GetResources listing saves where it lists the type.
TAG_READS = {"ListTagsForResource", "ListTagsLogGroup", "GetBucketTagging", "DescribeTags"}


class Counting:
    """WSGI middleware: counts each AWS request by service and operation; reads vs changes. With ``delay``
    (seconds) each AWS request waits that long first: an endpoint that far away (AWS from another region)."""

    def __init__(self, app: Any, delay: float = 0.0) -> None:
        from pointapp.clients import READ_PREFIXES

        self.reads = READ_PREFIXES
        self.app = app
        self.delay = delay
        self.calls: Counter[tuple[str, str, bool]] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            service, operation = self.identify(environ)
            mutating = not operation.startswith(self.reads) if operation else environ["REQUEST_METHOD"] not in ("GET", "HEAD")
            with self.lock:
                self.calls[(service, operation or environ["REQUEST_METHOD"], mutating)] += 1
            if self.delay:
                time.sleep(self.delay)
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


def run_pointapp(options: dict[str, Any], argv: list[str]) -> int:
    """``pointapp argv`` in this process, as a command of its own, with what ``options`` asks for: ``counts``
    (a file): its embedded emulator counts the requests behind :class:`Counting`, ``latency`` (seconds) in
    front of it, and writes the counts there; ``record`` (a file): every boto3 call pointapp makes, with its
    parameters and answer, in the order made, for :func:`replay`."""
    import atexit

    from pointapp import cli, emulator, target

    if options.get("counts"):
        made: list[Counting] = []
        start = emulator.Emulator.start

        def counting(app: Any) -> Counting:
            made.append(Counting(app, options.get("latency", 0.0)))
            return made[-1]

        def counted(self: Any) -> str:
            self.wrap = counting
            return start(self)

        emulator.Emulator.start = counted  # type: ignore[method-assign]
        atexit.register(lambda: Path(options["counts"]).write_text(json.dumps(
            [[*key, n] for c in made for key, n in c.calls.items()])))
    if options.get("record"):
        calls: list[dict[str, Any]] = []
        local = threading.local()
        setup = target.Context.__init__

        def before(model: Any, params: dict[str, Any], **_: Any) -> None:
            local.call = {"service": model.service_model.service_name, "operation": model.name, "params": params}
            calls.append(local.call)

        def after(parsed: dict[str, Any], **_: Any) -> None:
            local.call["answer"] = parsed

        def record_on(session: Any) -> None:  # once per session, whichever of the two hooks sees it first
            session.events.register("before-parameter-build.*.*", before, unique_id="bench-record-before")
            session.events.register("after-call.*.*", after, unique_id="bench-record-after")

        def recording(self: Any, *args: Any, **kwargs: Any) -> None:
            setup(self, *args, **kwargs)
            record_on(self.session)

        reach = target.check_reachable

        def reaching(session: Any, where: Any) -> str:  # the connect's STS call is one of the command's calls too
            record_on(session)
            return reach(session, where)

        target.Context.__init__ = recording  # type: ignore[method-assign]
        target.check_reachable = reaching  # type: ignore[assignment]
        atexit.register(lambda: Path(options["record"]).write_text(json.dumps(calls, default=str)))
    return cli.main(argv)


#: An id AWS gives a new resource (``vpc-0abc...``, ``subnet-...``, ``eipalloc-...``): replayed calls get others.
_AWS_ID = re.compile(r"^[a-z]+(?:-[a-z]+)?-[0-9a-f]{8,17}$")


def replay(recorded: Path, endpoint: str) -> None:
    """Make the boto3 calls of ``recorded`` one after another, as a plain script would, against ``endpoint``.

    Each call gets the ids the replayed calls before it were given in place of the recorded ones."""
    import boto3
    import botocore.exceptions
    from botocore import xform_name

    session = boto3.Session(region_name="ap-northeast-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    clients: dict[str, Any] = {}
    ids: dict[str, str] = {}

    def learn(before: Any, now: Any) -> None:  # the same place in the recorded and the replayed answer
        if isinstance(before, dict) and isinstance(now, dict):
            for key in before.keys() & now.keys():
                learn(before[key], now[key])
        elif isinstance(before, list) and isinstance(now, list):
            for old, new in zip(before, now, strict=False):  # a listing may hold more now
                learn(old, new)
        elif isinstance(before, str) and isinstance(now, str) and before != now and _AWS_ID.match(before):
            ids.setdefault(before, now)

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return ids.get(value, value) if isinstance(value, str) else value

    for call in json.loads(recorded.read_text()):
        if call["service"] not in clients:
            clients[call["service"]] = session.client(call["service"], endpoint_url=endpoint)
        try:
            answer = getattr(clients[call["service"]], xform_name(call["operation"]))(**swap(call["params"]))
        except botocore.exceptions.ClientError:
            continue  # as it failed for pointapp (a not-found it took as absent)
        learn(call.get("answer", {}), json.loads(json.dumps(answer, default=str)))


_GROUP_ORDER = ["network", "registry", "data", "mail", "service", "delivery", "bastion", "frontend"]


def as_user(scratch: Path, label: str, *args: str, latency: float = 0.0) -> tuple[float, Counter[Any]]:
    """``pointapp args`` with the embedded emulator inside the command (``latency`` seconds in front of it);
    its wall time and the requests its emulator counted."""
    counts = scratch / "counts.json"
    seconds, code, errors = command([sys.executable, str(Path(__file__).resolve()), "--pointapp",
                                     json.dumps({"counts": str(counts), "latency": latency}), *args, "--ephemeral"],
                                    label)
    if code not in (0, 2):
        raise SystemExit(f"pointapp {' '.join(args)} failed: {errors.strip()}")
    return seconds, Counter({(service, operation, mutating): n
                             for service, operation, mutating, n in json.loads(counts.read_text())})


def recorded_up(endpoint: str, record: Path, *args: str) -> float:
    """``pointapp up args`` against ``endpoint``, recording its boto3 calls to ``record``; its wall time."""
    seconds, code, errors = command([sys.executable, str(Path(__file__).resolve()), "--pointapp",
                                     json.dumps({"record": str(record)}), "up", *args, "--endpoint-url", endpoint],
                                    "endpoint up")
    if code not in (0, 2):
        raise SystemExit(f"pointapp up {' '.join(args)} failed: {errors.strip()}")
    return seconds


def replayed(endpoint: str, record: Path) -> float:
    """The recorded calls made one after another by a plain boto3 script (a process of its own); its wall time."""
    seconds, code, errors = command([sys.executable, str(Path(__file__).resolve()), "--replay", str(record), endpoint],
                                    "boto3 replay")
    if code:
        raise SystemExit(f"replaying the recorded calls failed: {errors.strip()}")
    return seconds


#: Times one ``pointapp.plan`` in a process that has already imported pointapp and connected.
_PLAN_TIMER = ("import sys, time, pointapp; ctx = pointapp.connect(endpoint_url=sys.argv[1], progress=lambda _: None); "
               "started = time.perf_counter(); pointapp.plan(ctx); print(time.perf_counter() - started)")


def planned_in_process(endpoint: str) -> float:
    """The wall time of ``pointapp.plan`` alone (import and connect done first), against ``endpoint``."""
    answer = subprocess.run([sys.executable, "-c", _PLAN_TIMER, endpoint], capture_output=True, text=True, cwd=ROOT,
                            check=False)
    if answer.returncode:
        raise SystemExit(f"timing pointapp.plan failed: {answer.stderr.strip()}")
    return float(answer.stdout.strip().splitlines()[-1])


def reads_of(calls: Counter[Any]) -> int:
    return sum(n for (_, _, mutating), n in calls.items() if not mutating)


def against_latency(rows: list[tuple[str, str, str, str]], url: str, counter: Counting, scratch: Path,
                    latency: float) -> None:
    """``plan`` in sync and ``up --only network`` at 0 ms and at ``latency``, with the ratio to the serial sum;
    ``up --only network`` beside a straight sequence of the same boto3 calls."""
    reset(url)
    pointapp(url, "up")
    counter.take()
    plans = {}
    for delay in (0.0, latency):
        counter.delay = delay
        plans[delay] = (pointapp(url, "plan"), counter.take())
    counter.delay = 0.0
    base, _ = plans[0.0]
    for delay, (seconds, calls) in plans.items():
        serial = reads_of(calls) * delay
        note = "" if not delay else (
            f"serial sum {reads_of(calls)} reads x {delay * 1000:.0f} ms = {serial:.2f} s; wall / serial sum "
            f"{seconds / serial:.2f}; added by the latency {seconds - base:.2f} s = {(seconds - base) / serial:.2f} "
            "of the serial sum (target at most 0.25)")
        rows.append((f"plan (in sync), {delay * 1000:.0f} ms latency", f"{seconds:.2f} s",
                     f"{sum(calls.values())} ({sum(n for (_, _, m), n in calls.items() if m)} changes)", note))
    for delay in (0.0, latency):  # the plan itself, in a process already connected: no start, no import
        counter.delay = delay
        seconds = planned_in_process(url)
        calls = counter.take()
        reads = reads_of(calls) - 1  # the connect's STS check comes before the plan
        note = "pointapp.plan(ctx) timed inside a connected process"
        if delay:
            note += (f"; serial sum {reads} reads x {delay * 1000:.0f} ms = {reads * delay:.2f} s; wall / serial sum "
                     f"{seconds / (reads * delay):.2f} (target at most 0.25)")
        rows.append((f"plan() call (in sync), {delay * 1000:.0f} ms latency", f"{seconds:.2f} s",
                     f"{sum(calls.values())} ({sum(n for (_, _, m), n in calls.items() if m)} changes)", note))
    counter.delay = 0.0
    record = scratch / "network-calls.json"
    ups: dict[float, tuple[float, Counter[Any], float]] = {}
    for delay in (0.0, latency):
        reset(url)
        counter.take()
        counter.delay = delay
        seconds = recorded_up(url, record, "--only", "network")
        calls = counter.take()
        reset(url)
        straight = replayed(url, record)
        counter.take()
        counter.delay = 0.0
        ups[delay] = (seconds, calls, straight)
    for delay, (seconds, calls, straight) in ups.items():
        reads = reads_of(calls)
        serial = sum(calls.values()) * delay
        note = (f"a straight sequence of the same {len(json.loads(record.read_text()))} boto3 calls: {straight:.2f} s; "
                f"pointapp / sequence {seconds / straight:.2f} (target at most 1)")
        if delay:
            note += (f"; serial sum {sum(calls.values())} calls ({reads} reads) x {delay * 1000:.0f} ms = {serial:.2f} s,"
                     f" added by the latency {seconds - ups[0.0][0]:.2f} s = {(seconds - ups[0.0][0]) / serial:.2f} of it")
        rows.append((f"up --only network, {delay * 1000:.0f} ms latency", f"{seconds:.2f} s",
                     f"{sum(calls.values())} ({sum(n for (_, _, m), n in calls.items() if m)} changes)", note))
    started = {module: command([sys.executable, "-c", f"import {module}"], f"import {module}")[0]
               for module in ("boto3", "pointapp.cli")}
    rows.append(("start of a command: import pointapp.cli", f"{started['pointapp.cli']:.2f} s", "-",
                 f"a script that imports boto3 only: {started['boto3']:.2f} s (part of each figure above)"))
    reset(url)


def repeated(runs: list[list[tuple[str, str, str, str]]]) -> list[tuple[str, str, str, str]]:
    """The rows of several runs of the same measures as one: each measure's median run, with the spread."""
    merged = []
    for same in zip(*runs, strict=True):
        seconds = sorted((float(row[1].split()[0]), row) for row in same if row[1].endswith(" s"))
        if not seconds:
            merged.append(same[0])
            continue
        label, time_, calls, note = seconds[len(seconds) // 2][1]
        spread = f"{len(same)} runs: {', '.join(f'{s:.2f}' for s, _ in seconds)} s"
        ratios = sorted(float(found[1]) for row in same if (found := re.search(r"pointapp / sequence ([0-9.]+)", row[3])))
        if ratios:
            spread += f"; pointapp / sequence in each run: {', '.join(f'{r:.2f}' for r in ratios)}"
        merged.append((label, time_, calls, f"{note}; {spread}" if note else spread))
    return merged


def latency_only(latency: float, repeat: int) -> None:
    """Only the rows measured under latency (``--only latency``), each the median of ``repeat`` runs."""
    import warnings

    from pointapp.emulator import Emulator

    warnings.filterwarnings("ignore")
    counter_box: dict[str, Counting] = {}

    def wrap(app: Any) -> Any:
        counter_box["c"] = Counting(app)
        return counter_box["c"]

    command([sys.executable, "-c", "pass"], "python")
    runs: list[list[tuple[str, str, str, str]]] = []
    with tempfile.TemporaryDirectory() as scratch_dir, Emulator(port=0, wrap=wrap) as emulator:
        url, counter = emulator.endpoint_url, counter_box["c"]
        pointapp(url, "plan")  # warm the emulator's backends, as the whole benchmark does first
        counter.take()
        for _ in range(repeat):
            runs.append([])
            against_latency(runs[-1], url, counter, Path(scratch_dir), latency)
    write_results(repeated(runs), f" (the latency rows only, the median of {repeat} runs)")


def write_results(rows: list[tuple[str, str, str, str]], what: str = "", after: str = "") -> None:
    """Print the table of ``rows`` and append it, with the date and the machine, to :data:`RESULTS`."""
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    text = f"\n## {datetime.datetime.now().isoformat(timespec='minutes')} on {machine}{what}\n\n"
    text += f"Load average before the run: {LOAD_BEFORE}; after: {load}.\n\n{_table(rows)}\n{after}"
    print(text)
    with RESULTS.open("a") as results:
        results.write(text)


LOAD_BEFORE = ", ".join(f"{n:.2f}" for n in os.getloadavg())


def main(latency: float) -> None:
    import warnings

    from pointapp.emulator import Emulator

    warnings.filterwarnings("ignore")  # the emulator warns about every resource type its CloudFormation lacks
    counter_box: dict[str, Counting] = {}

    def wrap(app: Any) -> Any:
        counter_box["c"] = Counting(app)
        return counter_box["c"]

    rows: list[tuple[str, str, str, str]] = []
    command([sys.executable, "-c", "pass"], "python")  # the launcher starts while this process is small
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        # As a user runs it: each command starts the embedded emulator inside itself.
        as_user(scratch, "embedded plan", "plan")  # the first run compiles and caches what later ones reuse
        for label, args in (("up, everything (--parallel 4)", ("up",)),
                            ("up, everything (--parallel 1)", ("up", "--parallel", "1")),
                            ("plan (nothing built)", ("plan",))):
            seconds, calls = as_user(scratch, f"embedded {args[0]}", *args)
            rows.append((f"{label}, embedded emulator", f"{seconds:.2f} s",
                         f"{sum(calls.values())} ({sum(n for (_, _, m), n in calls.items() if m)} changes)",
                         "the emulator starts inside the command, as a user runs it"))

        with Emulator(port=0, wrap=wrap) as emulator:
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
            folder = scratch / "cfn"
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
            book = pointapp(url, "runbook", "--steps", steps, "-o", str(scratch / "runs"))
            notebooks = len(steps.split(",")) + 1  # the start-here checklist runs too
            counter.take()
            rows.append(("runbook overhead per notebook", f"{(book - cli) / notebooks:.2f} s", "-",
                         f"{notebooks} notebooks {book:.1f} s vs CLI {cli:.1f} s; target at most 2 s"))
            drawn, code, errors = command([sys.executable, "-m", "pointapp", "diagram", "--format", "png,svg",
                                           "-o", str(scratch / "d")], "diagram")
            if code:
                raise SystemExit(f"pointapp diagram failed: {errors.strip()}")
            rows.append(("diagram (png, svg)", f"{drawn:.2f} s", "-", "target under 2 s"))

            against_latency(rows, url, counter, scratch, latency)

    from pointapp import schedule
    from pointapp.spec import load_spec
    from pointapp.steps import STEPS

    estimate = schedule.estimate(load_spec("prod"), {s.name: (10, None) for s in STEPS if s.name != "frontend"}, 4)
    rows.append(("virtual-clock stand-up on AWS", f"{estimate.makespan / 60:.1f} min", "-",
                 f"critical path {estimate.critical / 60:.1f} min, sequential {estimate.sequential / 60:.1f} min"))
    for where, labels in (("embedded emulator in the command", [k for k in PEAKS if k.startswith("embedded ")]),
                          ("against an endpoint", [k for k in PEAKS if not k.startswith("embedded ")])):
        heaviest = max(labels, key=lambda label: PEAKS[label])
        rows.append((f"peak memory, {where}", f"{PEAKS[heaviest]:.0f} MB", "-",
                     f"pointapp {heaviest} (kernels included); target under 300 MB; "
                     + ", ".join(f"{label} {PEAKS[label]:.0f}" for label in sorted(labels))))
    reads = reads_of(noop_calls)
    one_by_one = sum(n for (_, operation, mutating), n in noop_calls.items()
                     if not mutating and operation in TAG_READS)
    after = (f"\nNo-op up: {reads} reads, {one_by_one} of them tag reads of single resources whose type the "
             "emulator's GetResources does not list (on AWS that listing holds them: "
             f"{reads - one_by_one} reads). Read calls of the no-op up by operation: ")
    after += json.dumps(sorted(f"{s}:{o} x{n}" for (s, o, m), n in noop_calls.items() if not m)) + "\n"
    write_results(rows, after=after)


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| measure | time | API calls (emulator side) | note |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def with_bytecode_cache() -> None:
    """Let the measured commands use and write Python's bytecode cache, pointapp's compiled once now."""
    import compileall

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    for folder in (ROOT / "pointapp", ROOT / "bench"):
        compileall.compile_dir(folder, quiet=1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--deploy-cloudformation"]:
        Path(sys.argv[3]).write_text(json.dumps(deploy_cloudformation(sys.argv[2], [Path(p) for p in sys.argv[4:]])))
    elif sys.argv[1:2] == ["--pointapp"]:
        sys.exit(run_pointapp(json.loads(sys.argv[2]), sys.argv[3:]))
    elif sys.argv[1:2] == ["--replay"]:
        replay(Path(sys.argv[2]), sys.argv[3])
    else:
        import argparse

        parser = argparse.ArgumentParser(description="The benchmark: appends a table to bench/RESULTS.md.")
        parser.add_argument("--latency-ms", type=float, default=100.0,
                            help="the delay in front of the emulator for the latency rows (default 100)")
        parser.add_argument("--only", choices=["latency"],
                            help="latency: only the rows measured under latency (plan and up --only network)")
        parser.add_argument("--repeat", type=int, default=3, metavar="N",
                            help="with --only latency: run those rows N times, report each one's median (default 3)")
        options = parser.parse_args()
        with_bytecode_cache()
        if options.only == "latency":
            latency_only(options.latency_ms / 1000, options.repeat)
        else:
            main(options.latency_ms / 1000)

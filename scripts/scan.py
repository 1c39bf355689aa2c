"""``make scan``: Prowler, the open-source AWS security assessment, against the embedded emulator after a full
prod ``pointapp up``, and the verdict on what it finds.

The run: an emulator of the scan alone (its state ends with the scan) on a free port; ``pointapp up``
(prod, the built-in specification) against it; ``pointapp audit`` (it must agree: no finding); Prowler on
the services pointapp uses, in one region, with the emulator's fake credentials (boto3 honours
``AWS_ENDPOINT_URL``); JSON (OCSF) output.

The verdict on each failed Prowler check (:func:`classify`):

- not on pointapp's resources (moto's own defaults, account-level checks): listed apart, never failing;
- an emulator artifact listed in ``scripts/scan-allowlist.toml`` (each with why; one that names an audit check
  counts only when that check passed, one that names an emulator gap only when pointapp declares that gap):
  listed, not failing;
- Critical or High: failing;
- Medium: failing unless it is a documented choice the environment makes (pointapp.baseline): the choice names
  one of the check's FSBP controls, or the Prowler check id for a check no FSBP control covers;
- Low and informational: listed.

Exit 0 when nothing fails, 1 otherwise, 2 when the scan itself could not run (the emulator, ``up``, the audit
or Prowler failed). Usage: ``python scripts/scan.py --prowler .venv/prowler/bin/prowler`` (``--from FILE
[--audit FILE]``: judge a recorded run instead).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

HERE = Path(__file__).resolve().parent
ALLOWLIST = HERE / "scan-allowlist.toml"
#: The region of the scan: pointapp's default region (pointapp.target.DEFAULT_REGION).
REGION = "ap-northeast-1"
#: Prowler's names of the services pointapp uses (its other services would only scan moto's defaults).
SERVICES = ("ec2", "vpc", "elbv2", "ecs", "ecr", "rds", "elasticache", "s3", "iam", "cloudwatch", "kms",
            "secretsmanager", "ssm", "backup", "wafv2", "acm", "route53", "ses", "amplify", "codepipeline",
            "eventbridge")
#: The key of Prowler's FSBP mapping in each finding's compliance (from its compliance file
#: aws_foundational_security_best_practices_aws.json): the FSBP control ids the check follows.
FSBP = "AWS-Foundational-Security-Best-Practices"
SEVERITIES = ("critical", "high", "medium", "low", "informational")
BLOCKING = ("critical", "high")


class ScanError(Exception):
    """The scan could not run (exit 2): one line saying which part failed."""


@dataclass(frozen=True)
class Failure:
    """One failed Prowler check on one resource."""

    check: str  #: Prowler's check id, e.g. "rds_instance_transport_encrypted"
    severity: str  #: critical, high, medium, low or informational
    resource: str  #: the resource's ARN (or id, where Prowler has no ARN)
    name: str  #: the resource's name as Prowler reports it
    detail: str  #: Prowler's one-line explanation
    tags: Mapping[str, str] = field(default_factory=dict)
    controls: tuple[str, ...] = ()  #: the FSBP control ids the check follows, per Prowler

    def __str__(self) -> str:
        controls = f" [{', '.join(self.controls)}]" if self.controls else ""
        return f"{self.severity.upper():<13} {self.check}{controls}: {self.name or self.resource}: {self.detail}"


@dataclass(frozen=True)
class Artifact:
    """A reviewed allowlist entry: a Prowler check the emulator fails where AWS would not, and why."""

    check: str
    reason: str
    resource: str = "*"  #: a glob on the resource's ARN or name
    #: The ``pointapp audit`` check that verifies, on the emulator too, what Prowler cannot see there: the
    #: artifact is accepted only when that check passed (or is a documented choice) in the same environment.
    audit: str = ""
    #: An operation pointapp skips on the emulator alone ("service Operation", a key of
    #: pointapp.emulator.EMULATOR_GAPS): the artifact counts only when the product declares that gap.
    gap: str = ""

    def matches(self, failure: Failure, audit: Mapping[str, str] | None = None,
                gaps: Iterable[str] = ()) -> bool:
        """Whether this entry explains ``failure``; ``audit``: the audit's status by check (None: it did not run,
        so an entry that needs the audit's word does not count); ``gaps``: the product's emulator gaps."""
        if self.audit and (audit is None or audit.get(self.audit) not in ("pass", "choice")):
            return False
        if self.gap and self.gap not in gaps:
            return False
        return failure.check == self.check and (fnmatch.fnmatch(failure.resource, self.resource)
                                                or fnmatch.fnmatch(failure.name, self.resource))


@dataclass(frozen=True)
class Chosen:
    """A documented choice (pointapp.baseline.Choice) as the scan needs it: its control, setting and reason.

    ``control`` is an FSBP control id; for a Prowler check that follows no FSBP control (MFA delete, say) it is
    the Prowler check id itself.
    """

    control: str
    setting: str
    reason: str


@dataclass
class Verdict:
    """Every failure, sorted by what it means for pointapp."""

    owner: str
    blocking: list[Failure] = field(default_factory=list)
    chosen: list[tuple[Failure, Chosen]] = field(default_factory=list)
    artifacts: list[tuple[Failure, Artifact]] = field(default_factory=list)
    minor: list[Failure] = field(default_factory=list)
    outside: list[Failure] = field(default_factory=list)
    passed: int = 0
    #: ``pointapp audit``'s own findings in the scanned environment (the audit must agree: it has none).
    audit_findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blocking and not self.audit_findings

    def counts(self) -> dict[str, int]:
        """Failures on pointapp's resources by severity (the blocking, chosen, artifact and minor ones)."""
        owned = [*self.blocking, *(f for f, _ in self.chosen), *(f for f, _ in self.artifacts), *self.minor]
        counted = Counter(f.severity for f in owned)
        return {severity: counted.get(severity, 0) for severity in SEVERITIES}

    def report(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        lines = [f"Prowler on {self.owner}: {self.passed} passed; failed on pointapp's resources: {counts}"]
        sections: list[tuple[str, list[str]]] = [
            ("FAILING (Critical/High, or Medium not a documented choice)", [str(f) for f in self.blocking]),
            ("documented choices (pointapp.baseline)",
             [f"{f}  [{c.control}: {c.setting}: {c.reason}]" for f, c in self.chosen]),
            (f"emulator artifacts ({ALLOWLIST.name})", [f"{f}  [why: {a.reason}]" for f, a in self.artifacts]),
            ("low and informational", [str(f) for f in self.minor]),
            ("not pointapp's resources (the emulator's defaults, account-level checks), by check", _grouped(self.outside)),
            ("pointapp audit's findings (FAILING)", self.audit_findings),
        ]
        for title, items in sections:
            lines += [f"\n{title}: {len(items)}", *(f"  {item}" for item in sorted(items))]
        lines.append("\n" + ("PASS: nothing on pointapp's resources fails the scan" if self.ok else
                             f"FAIL: {len(self.blocking)} failure(s) on pointapp's resources"
                             + (f", {len(self.audit_findings)} audit finding(s)" if self.audit_findings else "")))
        return "\n".join(lines)


def _grouped(failures: Iterable[Failure]) -> list[str]:
    """One line per check: its severity, how many resources fail it, and the first one's explanation."""
    groups: dict[tuple[str, str], list[Failure]] = {}
    for failure in failures:
        groups.setdefault((failure.check, failure.severity), []).append(failure)
    return [f"{severity.upper():<13} {check}: {len(found)} resource(s), e.g. {found[0].name or found[0].resource}: "
            f"{found[0].detail}" for (check, severity), found in groups.items()]


# --- reading Prowler's output -------------------------------------------------------------------------


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    """A resource's tags, from the resource data Prowler records (its OCSF ``labels`` join key and value with
    ":", which tag keys such as ``pointapp:environment`` contain too)."""
    tags: dict[str, str] = {}
    for entry in (resource.get("data") or {}).get("metadata", {}).get("tags") or ():
        if isinstance(entry, Mapping) and "Key" in entry:
            tags[str(entry["Key"])] = str(entry.get("Value", ""))
        elif isinstance(entry, Mapping):
            tags.update({str(k): str(v) for k, v in entry.items()})
    return tags


def read_findings(findings: Iterable[Mapping[str, Any]]) -> tuple[list[Failure], int]:
    """The failures in Prowler's OCSF JSON findings (one per resource), and how many checks passed."""
    failures, passed = [], 0
    for finding in findings:
        status = finding.get("status_code")
        if status == "PASS":
            passed += 1
        if status != "FAIL":
            continue
        check = finding.get("metadata", {}).get("event_code", "")
        controls = tuple(sorted((finding.get("unmapped") or {}).get("compliance", {}).get(FSBP, ())))
        for resource in finding.get("resources") or [{}]:
            failures.append(Failure(check, str(finding.get("severity", "")).lower(), str(resource.get("uid", "")),
                                    str(resource.get("name", "")), str(finding.get("status_detail", "")),
                                    _tags(resource), controls))
    return failures, passed


def load_allowlist(path: Path = ALLOWLIST) -> list[Artifact]:
    """The reviewed emulator artifacts: every entry names its check and why (a missing reason is an error)."""
    entries = tomllib.loads(path.read_text()).get("artifact", [])
    artifacts = []
    for entry in entries:
        if not str(entry.get("reason", "")).strip():
            raise ValueError(f"{path.name}: the entry for {entry.get('check')} gives no reason")
        artifacts.append(Artifact(entry["check"], entry["reason"], entry.get("resource", "*"), entry.get("audit", ""),
                                  entry.get("gap", "")))
    return artifacts


# --- the verdict --------------------------------------------------------------------------------------


def owned(failure: Failure, owner: str) -> bool:
    """Whether the failure is on one of pointapp's resources: its name or ARN (every name pointapp gives starts
    with the owner, pointapp.spec.Spec.name), or a tag naming the owner: pointapp's ownership tag, or the tag an
    AWS service puts on what it makes for one of them (RDS's master-user secret carries
    ``aws:rds:primaryDBInstanceArn``, the database's ARN)."""
    return owner in failure.resource or owner in failure.name or any(owner in v for v in failure.tags.values())


def classify(failures: Iterable[Failure], owner: str, choices: Iterable[Chosen], artifacts: Sequence[Artifact],
             passed: int = 0, audit: Mapping[str, Any] | None = None, gaps: Iterable[str] = ()) -> Verdict:
    """Sort the failures (see the module's docstring); ``choices`` are those the environment makes; ``audit``:
    ``pointapp audit --format json`` of the same environment, when it ran; ``gaps``: the operations the product
    skips on the emulator (:func:`emulator_gaps`)."""
    gaps = set(gaps)
    chosen = {c.control: c for c in choices}
    statuses = {c["check"]: c["status"] for c in audit["checks"]} if audit is not None else None
    verdict = Verdict(owner, passed=passed)
    if audit is not None:
        verdict.audit_findings = [f"{c['check']}: {f['resource']}: {f['problem']} [{f['control']}]"
                                  for c in audit["checks"] for f in c["findings"]]
    for failure in failures:
        if not owned(failure, owner):
            verdict.outside.append(failure)
            continue
        artifact = next((a for a in artifacts if a.matches(failure, statuses, gaps)), None)
        if artifact is not None:
            verdict.artifacts.append((failure, artifact))
            continue
        if failure.severity in BLOCKING:
            verdict.blocking.append(failure)
        elif failure.severity == "medium":
            choice = next((chosen[c] for c in (*failure.controls, failure.check) if c in chosen), None)
            if choice is None:
                verdict.blocking.append(failure)
            else:
                verdict.chosen.append((failure, choice))
        else:
            verdict.minor.append(failure)
    return verdict


def environment_choices(env: str = "prod") -> tuple[str, list[Chosen]]:
    """The owner of ``env``'s built-in specification and the documented choices it makes."""
    from pointapp.baseline import CHOICES
    from pointapp.spec import load_spec

    spec = load_spec(env=env)
    return spec.owner, [Chosen(control, c.setting, c.reason) for c in CHOICES.values() if c.off(spec)
                        for control in c.controls]


def emulator_gaps() -> set[str]:
    """The operations pointapp skips on the emulator and runs on AWS, as "service Operation"."""
    from pointapp.emulator import EMULATOR_GAPS

    return {f"{service} {operation}" for service, operation in EMULATOR_GAPS}


# --- the run ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def emulator(log: Path) -> Iterator[str]:
    """An emulator of the scan alone (``pointapp emulator --port N``, its state ends with it) on a free port; its
    own output (moto's complaints about the services it lacks) goes to ``log``."""
    from pointapp.emulator import answers_as_moto

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "pointapp", "emulator", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60  # it usually answers within 1 to 3 s (importing moto)
            while not answers_as_moto(url, attempts=1, timeout=2):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ScanError(f"the emulator did not start; see {log}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def run(prowler: Path, output: Path) -> dict[str, float]:
    """Emulator, ``pointapp up``, ``pointapp audit``, Prowler: ``prowler.ocsf.json`` and ``audit.json`` in
    ``output``, and how long each part took (seconds)."""
    from pointapp.emulator import EMULATOR_CREDENTIALS

    times: dict[str, float] = {}
    with emulator(output / "emulator.log") as url:
        print(f"Emulator running at {url} (its log: {output / 'emulator.log'})", flush=True)
        environ = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                   "AWS_ACCESS_KEY_ID": EMULATOR_CREDENTIALS["aws_access_key_id"],
                   "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["aws_secret_access_key"]}
        for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            environ.pop(variable, None)
        start = time.monotonic()
        if subprocess.run([sys.executable, "-m", "pointapp", "up", "--endpoint-url", url, "--region", REGION],
                          env=environ).returncode != 0:
            raise ScanError("pointapp up failed; see its output above")
        times["up"] = time.monotonic() - start
        # Exit code 3 means "findings": the verdict counts them.
        audit = subprocess.run([sys.executable, "-m", "pointapp", "audit", "--endpoint-url", url, "--region", REGION,
                                "--format", "json"], env=environ, capture_output=True, text=True)
        if audit.returncode not in (0, 3):
            raise ScanError(f"pointapp audit failed (exit {audit.returncode}): {audit.stderr.strip()}")
        (output / "audit.json").write_text(audit.stdout)
        start = time.monotonic()
        # Exit code 3 means "some checks failed": the verdict below decides what that means.
        result = subprocess.run([str(prowler), "aws", "--region", REGION, "--services", *SERVICES,
                                 "--output-formats", "json-ocsf", "--output-directory", str(output),
                                 "--output-filename", "prowler", "--no-banner"], env=environ)
        times["prowler"] = time.monotonic() - start
        if result.returncode not in (0, 3):
            raise ScanError(f"Prowler failed (exit {result.returncode}); see its output above")
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prowler", type=Path, help="Prowler's executable (its own virtual environment)")
    parser.add_argument("--output", type=Path, help="folder for Prowler's output and the emulator's log "
                                                    "(default: runs/<time>-scan)")
    parser.add_argument("--from", dest="recorded", type=Path, help="judge this recorded Prowler OCSF JSON output")
    parser.add_argument("--audit", type=Path, help="with --from: the recorded `pointapp audit --format json` of the "
                                                   "same environment")
    args = parser.parse_args(argv)
    if args.recorded is None and args.prowler is None:
        parser.error("give --prowler (run a scan) or --from (judge a recorded one)")
    if args.recorded is None and not args.prowler.is_file():
        print(f"scan: no Prowler at {args.prowler} (make scan installs it in .venv/prowler)", file=sys.stderr)
        return 2
    owner, choices = environment_choices()
    if args.recorded is not None:
        recorded, audited = args.recorded, args.audit
    else:
        output = args.output or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-scan"
        output.mkdir(parents=True, exist_ok=True)
        try:
            times = run(args.prowler, output)
        except ScanError as error:
            print(f"scan: {error}", file=sys.stderr)
            return 2
        recorded, audited = output / "prowler.ocsf.json", output / "audit.json"
        print("Times: " + ", ".join(f"{part} {seconds:.0f} s" for part, seconds in times.items())
              + f"; Prowler's output: {recorded}")
    failures, passed = read_findings(json.loads(recorded.read_text()))
    audit = json.loads(audited.read_text()) if audited is not None else None
    verdict = classify(failures, owner, choices, load_allowlist(), passed, audit, emulator_gaps())
    print(verdict.report())
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())

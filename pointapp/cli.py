"""The ``pointapp`` command.

Exit codes: 0 success (``plan``: in sync), 2 ``plan`` found changes, 3 ``audit`` found problems (and
``emulator --status``: no shared emulator is running), 1 an error, 130 interrupted.
Errors are one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pointapp.errors import ConfirmationRequired, PointappError, SpecError, TargetError

if TYPE_CHECKING:  # each command imports what it uses when it runs: the emulator command needs no engine
    from pointapp.plan import Plan
    from pointapp.target import Context

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_FINDINGS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 1 (2 means "changes" for plan)."""

    #: The root parser's subcommands by name (argparse reports a subcommand's unknown options at the root).
    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"pointapp: error: {message} (see {self.prog} --help)\n")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line parsed; an unknown option is reported with the help of the command it was given to."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target (default: the shared emulator; see pointapp emulator --help)")
    group.add_argument("--endpoint-url", help="an AWS-compatible endpoint, for example a running emulator "
                                              "(default: $AWS_ENDPOINT_URL)")
    group.add_argument("--aws", action="store_true", help="real AWS through the standard credential chain")
    group.add_argument("--profile", help="real AWS with this named profile")
    group.add_argument("--region", help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, ap-northeast-1)")
    group.add_argument("--ephemeral", action="store_true",
                       help="an embedded emulator of this command alone, whose state ends with it "
                            "(default when $POINTAPP_EMULATOR=ephemeral)")


def _add_spec(parser: argparse.ArgumentParser, only: bool = True) -> None:
    parser.add_argument("--env", default="prod", help="environment: prod or staging (default: prod)")
    parser.add_argument("--config", help="YAML file merged over the built-in specification")
    if only:
        parser.add_argument("--only", help="comma-separated steps, for example network")


def _parallel(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 16:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to 16")
    return number


def _add_parallel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", type=_parallel, default=4, metavar="N",
                        help="steps run at the same time, where the dependencies allow (1 to 16; default 4)")


def _with_target(commands: Any, name: str, help: str, only: bool = True) -> argparse.ArgumentParser:
    """The subcommand ``name`` with the spec's options (``--only`` too when ``only``) and the target's."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help)
    _add_spec(parser, only)
    _add_target(parser)
    return parser


def _add_follow(parser: argparse.ArgumentParser, wait: str, yes: str) -> None:
    parser.add_argument("--wait", action="store_true", help=wait)
    parser.add_argument("--yes", action="store_true", help=yes)


def build_parser() -> _Parser:
    parser = _Parser(prog="pointapp", description="Stand up the point-app environment on AWS, step by step.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = _with_target(commands, "plan", "show what would change (exit 0: in sync, 2: changes, 1: error)")
    plan.add_argument("--estimate", action="store_true",
                      help="also print the expected time on real AWS: sequential, critical path, pointapp's schedule")
    _add_parallel(plan)

    up = _with_target(commands, "up", "create or update the environment")
    _add_parallel(up)
    up.add_argument("--yes", action="store_true", help="apply to real AWS without asking")

    down = _with_target(commands, "down", "delete what pointapp owns in the environment")
    down.add_argument("--yes", action="store_true", help="delete on real AWS without asking")

    emulator = commands.add_parser(
        "emulator", help="the shared emulator (--start, --status, --stop), or an emulator in the foreground",
        description="The shared emulator is the one every notebook and command uses when no target is given: the "
                    "first that needs it starts it in the background, on $POINTAPP_EMULATOR_PORT (default 5000); it "
                    "keeps its state until --stop. Its state file and log are in $POINTAPP_STATE_DIR (default "
                    "$XDG_STATE_HOME/pointapp or ~/.local/state/pointapp). With no option: an emulator of its own "
                    "in the foreground, until Ctrl-C.")
    action = emulator.add_mutually_exclusive_group()
    action.add_argument("--start", action="store_true",
                        help="start the shared emulator in the background (if it is not running) and return")
    action.add_argument("--status", action="store_true",
                        help="show the shared emulator (exit 0: running, 3: not running)")
    action.add_argument("--stop", action="store_true", help="stop the shared emulator; its state is lost")
    emulator.add_argument("--port", type=int, help="port on 127.0.0.1 (default: $POINTAPP_EMULATOR_PORT or 5000; "
                                                   "0: any free)")

    runbook = _with_target(commands, "runbook", "run the notebooks headless and keep the executed copies", only=False)
    runbook.add_argument("-o", "--output", default="runs", help="where run records go (default: runs/)")
    runbook.add_argument("--yes", action="store_true", help="allow the runbook to change real AWS")
    runbook.add_argument("--steps", help="comma-separated steps to run (default: all, then the walkthroughs)")
    runbook.add_argument("--from", dest="start", help="start at this step (the ones before are not run)")
    runbook.add_argument("--resume", help="a run record whose failed run to continue, with its parameters")
    runbook.add_argument("--language", choices=["en", "ja"], default="en",
                         help="the notebooks' language: en (notebooks/, default) or ja (notebooks/ja/); the same code")
    deploy = _with_target(commands, "deploy", "release an image with a CodeDeploy blue/green deployment", only=False)
    what = deploy.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", help="the image to release, with a tag or digest")
    what.add_argument("--status", action="store_true", help="show the latest deployment")
    _add_follow(deploy, "follow the deployment to its end", "release on real AWS without asking")

    rollback = _with_target(commands, "rollback", "stop the running deployment with rollback, "
                                                  "or redeploy the previous revision", only=False)
    _add_follow(rollback, "follow the rollback deployment to its end", "roll back on real AWS without asking")

    audit = _with_target(commands, "audit", "check the live environment against the security baseline "
                                            "(exit 0: no finding, 3: findings, 1: error)", only=False)
    audit.add_argument("--format", choices=["text", "json"], default="text",
                       help="text: the table and one line per finding or choice (default); json: the same, for machines")

    export = commands.add_parser("export", help="write generated files")
    export.add_argument("what", choices=["delivery", "cloudformation"],
                        help="delivery: taskdef.json, appspec.yaml, GitHub workflow; "
                             "cloudformation: one template per step group, for the target's region and zones")
    _add_spec(export, only=False)
    _add_target(export)
    export.add_argument("-o", "--output", help="directory to write into (default: delivery/ or cloudformation/)")

    figure = _with_target(commands, "diagram", "draw the architecture from the spec, or from what exists", only=False)
    figure.add_argument("--source", choices=["spec", "live"], default="spec",
                        help="spec: from the specification (no AWS call); live: what exists, drift marked")
    figure.add_argument("--format", default="png,svg", help="comma-separated: png, svg, dot, mermaid (default png,svg)")
    figure.add_argument("-o", "--output", default="diagrams", help="directory (default: diagrams/)")

    parser.commands = {}
    for sub in (plan, up, down, emulator, runbook, deploy, rollback, audit, export, figure):
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        parser.commands[sub.prog.split()[-1]] = sub
    return parser


def _connect(args: argparse.Namespace) -> Context:
    from pointapp.steps import parse_steps
    from pointapp.target import connect

    parse_steps(getattr(args, "only", None))  # an unknown step is refused before anything starts
    ctx = connect(env=args.env, config=args.config, region=args.region, endpoint_url=args.endpoint_url,
                  aws=args.aws, profile=args.profile, yes=getattr(args, "yes", False), ephemeral=args.ephemeral)
    machine = getattr(args, "format", "text") == "json"  # stdout is the JSON document alone
    print(f"Environment {ctx.spec.owner} on {ctx.target.describe()}", file=sys.stderr if machine else sys.stdout,
          flush=True)
    return ctx


def _confirm(ctx: Context, verb: str, planned: Plan | None = None) -> None:
    """On real AWS, ask before changing anything unless --yes; refuse when nobody can answer."""
    if not ctx.target.is_real_aws or ctx.assume_yes or (planned is not None and planned.empty):
        return
    if not sys.stdin.isatty():
        raise ConfirmationRequired(f"refusing to {verb} on real AWS without confirmation: pass --yes")
    summary = f"{planned.summary()} " if planned is not None else ""
    answer = input(f"{summary}Type 'yes' to {verb} on {ctx.target.describe()}: ")
    if answer.strip().lower() != "yes":
        raise ConfirmationRequired("cancelled: nothing was changed")
    ctx.assume_yes = True


def cmd_plan(args: argparse.Namespace) -> int:
    from pointapp import engine

    with _connect(args) as ctx:
        planned = engine.plan(ctx, args.only, dependencies="warn")  # a plan changes nothing: shown all the same
        if planned.unready:
            print(f"pointapp: warning: {planned.unready}", file=sys.stderr, flush=True)
        print(planned)
        if args.estimate:
            print(engine.estimate(ctx, planned, args.parallel))
        return EXIT_OK if planned.empty else EXIT_CHANGES


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C during a change, with what was done before it."""

    def __init__(self, done: int, total: int, last: str) -> None:
        super().__init__()
        self.message = (f"interrupted after {done} of {total} changes (the last done: {last or 'none'}); "
                        "what was done stays, and running the same command again continues from there")


def _apply(ctx: Context, planned: Plan, parallel: int = 1) -> Any:
    """Apply; on Ctrl-C say how far it got (the next run discovers the rest and converges)."""
    from pointapp import engine

    before = len(ctx.done)
    try:
        return engine.apply(ctx, planned, parallel)
    except KeyboardInterrupt:
        done = ctx.done[before:]
        raise _Interrupted(len(done), len(planned.actionable), done[-1].line().strip() if done else "") from None


def cmd_up(args: argparse.Namespace) -> int:
    from pointapp import engine

    with _connect(args) as ctx:
        planned = engine.plan(ctx, args.only)
        print(planned)
        if planned.empty:
            return EXIT_OK
        _confirm(ctx, "apply these changes", planned)
        print(_apply(ctx, planned, args.parallel))
        return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from pointapp import engine

    with _connect(args) as ctx:
        planned = engine.plan_destroy(ctx, args.only)
        if not planned.changes:
            print(f"Nothing owned by pointapp in {ctx.spec.owner}: nothing to delete.")
            return EXIT_OK
        print(planned)
        _confirm(ctx, "delete these resources", planned)
        print(engine.finish_destroy(ctx, _apply(ctx, planned), args.only))
        return EXIT_OK


def cmd_emulator(args: argparse.Namespace) -> int:
    import os

    from pointapp import shared_emulator
    from pointapp.emulator import Emulator

    port = args.port
    if args.status:
        found, line = shared_emulator.status()
        print(line)
        return EXIT_OK if found else EXIT_FINDINGS
    if args.stop:
        print(shared_emulator.stop())
        return EXIT_OK
    if args.start:
        environ = dict(os.environ, **({shared_emulator.PORT_VARIABLE: str(port)} if port is not None else {}))
        found = shared_emulator.ensure(environ)
        moved = f" (not on port {port}: stop it first to move it)" if port not in (None, 0, found.port) else ""
        print(f"The shared emulator is running at {found.describe()}{moved}; every notebook and pointapp command "
              "on this machine uses it, and it keeps its state until `pointapp emulator --stop`.")
        return EXIT_OK
    port = shared_emulator.configured_port() if port is None else port
    found = shared_emulator.running()
    if found is not None and found.port == port:
        raise TargetError(f"the shared emulator already runs on port {port} (pid {found.pid}): use it as it is, "
                          "or stop it first with `pointapp emulator --stop`")
    with Emulator(port=port) as emulator:
        print(f"Emulator running at {emulator.endpoint_url}", flush=True)
        print(f"  CLI:       pointapp up --endpoint-url {emulator.endpoint_url}")
        print(f"  notebooks: export AWS_ENDPOINT_URL={emulator.endpoint_url} before starting Jupyter,")
        print(f"             or set the parameter endpoint_url = \"{emulator.endpoint_url}\"")
        print("Press Ctrl-C to stop.", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    print("Emulator stopped.")
    return EXIT_OK


def cmd_runbook(args: argparse.Namespace) -> int:
    from pointapp.runbook import run_runbook

    if args.steps:
        from pointapp.steps import parse_steps

        parse_steps(args.steps)  # an unknown step is refused before anything starts
    record = run_runbook(env=args.env, config=args.config, region=args.region, endpoint_url=args.endpoint_url,
                         aws=args.aws, profile=args.profile, yes=args.yes, output=args.output, steps=args.steps,
                         start=args.start, resume=args.resume, ephemeral=args.ephemeral, language=args.language)
    print(f"Run record: {record} (summary.md, summary.json, the executed notebooks, architecture-live.png)")
    return EXIT_OK


def cmd_deploy(args: argparse.Namespace) -> int:
    from pointapp import release

    if args.image:
        release.check_image(args.image)  # a bad reference is refused before anything starts
    with _connect(args) as ctx:
        if args.status:
            latest = release.status(ctx)
            print(latest if latest else f"No deployment of {ctx.spec.owner} yet.")
            return EXIT_OK
        _confirm(ctx, f"release {args.image}")
        deployment = release.deploy(ctx, args.image, wait=args.wait)
        print(deployment)
        return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    from pointapp import release

    with _connect(args) as ctx:
        _confirm(ctx, "roll back")
        print(release.rollback(ctx, wait=args.wait))
        return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from pointapp.audit import audit

    with _connect(args) as ctx:
        report = audit(ctx)
        print(report.json() if args.format == "json" else report)
        return EXIT_FINDINGS if report.findings else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from pointapp import release

    with _connect(args) as ctx:
        if args.what == "cloudformation":
            from pointapp import cloudformation

            written = cloudformation.export(ctx, args.output or "cloudformation")
        else:
            written = release.export_delivery(ctx, args.output or "delivery")
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


def cmd_diagram(args: argparse.Namespace) -> int:
    from pointapp import diagram
    from pointapp.spec import load_spec

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    for fmt in formats:
        if fmt not in diagram.FORMATS:
            raise SpecError("--format", f"unknown format {fmt!r}; allowed: {', '.join(diagram.FORMATS)}")
    name = "architecture" + ("" if args.env == "prod" else f"-{args.env}") + ("-live" if args.source == "live" else "")
    if args.source == "spec":
        written = diagram.draw(load_spec(args.env, args.config), args.output, formats=formats, name=name)
    else:
        with _connect(args) as ctx:
            written = diagram.draw(ctx.spec, args.output, formats=formats, name=name, ctx=ctx)
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


COMMANDS: dict[str, Any] = {"plan": cmd_plan, "up": cmd_up, "down": cmd_down, "emulator": cmd_emulator,
                            "runbook": cmd_runbook, "deploy": cmd_deploy, "rollback": cmd_rollback,
                            "audit": cmd_audit, "export": cmd_export, "diagram": cmd_diagram}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        return int(COMMANDS[args.command](args))
    except _Interrupted as interrupted:
        print(f"pointapp: {interrupted.message}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("pointapp: interrupted; what was done stays, and the next run continues from there", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the one place every error becomes one line
        if args.debug:
            traceback.print_exc()
        print(f"pointapp: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(error: Exception) -> str:
    import botocore.exceptions

    if isinstance(error, PointappError):
        return str(error)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(error, botocore.exceptions.ClientError):
        info = error.response.get("Error", {})
        return f"AWS refused {error.operation_name}: {info.get('Message', '')} ({info.get('Code', '')})"
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return f"AWS: {error}"
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"unexpected {type(error).__name__}: {first} (run with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())

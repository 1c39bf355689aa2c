"""The embedded emulator with the AWS-behaviour layer on, for tests that run the CLI in other processes.

``python -m tests.aws_server --port 0`` prints the same first line as ``pointapp emulator``
("Emulator running at <url>") and serves until it is terminated. ``--off RULE`` turns a rule off,
``--window SECONDS`` sets every rule's window ("for a while").
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from pointapp.emulator import Emulator
from tests.aws_behaviour import RULES, AwsBehaviour
from tests.moto_speed import collect_garbage_less_often, lighten_moto


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.aws_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--off", action="append", default=[], choices=sorted(RULES), metavar="RULE",
                        help="turn a rule off (repeatable)")
    parser.add_argument("--window", type=float, default=None, help="seconds every 'for a while' rule lasts")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def finish(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    lighten_moto()
    collect_garbage_less_often()
    layer = AwsBehaviour(disabled=args.off, window=args.window)
    with Emulator(port=args.port, wrap=layer.wrap) as emulator:
        print(f"Emulator running at {emulator.endpoint_url}", flush=True)
        print(f"  with the AWS-behaviour layer: {', '.join(sorted(layer.enabled)) or 'no rules'}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The shared emulator: one moto server on this machine that outlives the process that started it.

With no endpoint and no real AWS asked for, every notebook kernel and every ``pointapp`` command uses it:
the first one starts it, the later ones find it and see what the earlier ones built. It runs as
``python -m pointapp emulator --port N`` in a session of its own (a kernel that ends does not take it
along) and keeps its state until ``pointapp emulator --stop``.

- Port: ``$POINTAPP_EMULATOR_PORT``, default 5000 (0: any free port, found in its log).
- State: ``emulator.json`` (url, pid, port, started) and ``emulator.log`` in ``$POINTAPP_STATE_DIR``, default
  ``$XDG_STATE_HOME/pointapp``, else ``~/.local/state/pointapp``.
- ``$POINTAPP_EMULATOR=ephemeral`` makes the embedded per-process emulator the default instead (the tests'
  setting); ``shared`` (or unset) keeps this one.

Starting holds a lock on ``emulator.lock`` (POSIX ``flock``): two notebooks started at once end with one
emulator, the second waiting for the first's to answer. A recorded emulator is reused only when its
process is alive and its URL answers with that process id; any other record is stale and replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from pointapp.emulator import IDENTITY_PATH, answers_as_moto
from pointapp.errors import TargetError

STATE_DIR_VARIABLE = "POINTAPP_STATE_DIR"
PORT_VARIABLE = "POINTAPP_EMULATOR_PORT"
MODE_VARIABLE = "POINTAPP_EMULATOR"
MODES = ("shared", "ephemeral")
DEFAULT_PORT = 5000
HOST = "127.0.0.1"
#: How long a new emulator may take to answer. It usually answers within 1 to 3 s (importing moto); a
#: loaded machine can take much longer.
START_TIMEOUT = 60.0
#: How long a stopped emulator has to end after SIGTERM before it is killed (it usually ends within 1 s).
STOP_GRACE = 10.0
_POLL = 0.1
_RUNNING_LINE = "Emulator running at "
#: Popen objects of the emulators this process started: a thread waits for each, so one stopped by another
#: process does not linger as a zombie (which would still look alive) while this process runs.
_STARTED: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class SharedEmulator:
    """A running shared emulator, as its state file records it."""

    url: str
    pid: int
    port: int
    started: str  # ISO 8601, UTC

    def describe(self) -> str:
        return f"{self.url} (pid {self.pid}, running since {self.started})"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the state file and the log live (see the module's docstring)."""
    environ = os.environ if environ is None else environ
    if environ.get(STATE_DIR_VARIABLE):
        return Path(environ[STATE_DIR_VARIABLE]).expanduser()
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "pointapp"


def state_file(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / "emulator.json"


def log_file(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / "emulator.log"


def configured_port(environ: Mapping[str, str] | None = None) -> int:
    """The shared emulator's port: ``$POINTAPP_EMULATOR_PORT`` or 5000."""
    environ = os.environ if environ is None else environ
    value = environ.get(PORT_VARIABLE, "").strip()
    if not value:
        return DEFAULT_PORT
    if not value.isdigit() or int(value) > 65535:
        raise TargetError(f"{PORT_VARIABLE}: {value!r} is not a port number (0 to 65535)")
    return int(value)


def ephemeral_by_default(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``$POINTAPP_EMULATOR`` makes the embedded per-process emulator the default."""
    environ = os.environ if environ is None else environ
    mode = environ.get(MODE_VARIABLE, "").strip().lower() or "shared"
    if mode not in MODES:
        raise TargetError(f"{MODE_VARIABLE}: unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    return mode == "ephemeral"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    with contextlib.suppress(OSError):  # Linux: a zombie has ended, though it still has its pid
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _answers_as(url: str, pid: int) -> bool:
    """Whether ``url`` is the pointapp emulator of process ``pid`` (it tells its pid at IDENTITY_PATH)."""
    try:
        with urllib.request.urlopen(f"{url}{IDENTITY_PATH}", timeout=5) as answer:  # noqa: S310 - http only
            return bool(json.loads(answer.read()).get("pid") == pid)
    except (OSError, ValueError, AttributeError):
        return False


def recorded(environ: Mapping[str, str] | None = None) -> SharedEmulator | None:
    """The emulator the state file names, whether or not it still runs (None: no readable state file)."""
    try:
        data = json.loads(state_file(environ).read_text(encoding="utf-8"))
        return SharedEmulator(str(data["url"]), int(data["pid"]), int(data["port"]), str(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_live(found: SharedEmulator) -> bool:
    """Whether the recorded process is alive and answers as that emulator (asked a few times: a busy machine
    can make it miss one answer's timeout, and it must not then be taken for stale and started again)."""
    return any(_alive(found.pid) and _answers_as(found.url, found.pid) for _ in range(3))


def running(environ: Mapping[str, str] | None = None) -> SharedEmulator | None:
    """The shared emulator, when the state file names one that is alive and answers; else None."""
    found = recorded(environ)
    return found if found is not None and _is_live(found) else None


@contextlib.contextmanager
def _locked(environ: Mapping[str, str] | None, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the state directory's lock: one process at a time starts, stops or replaces the emulator."""
    directory = state_dir(environ)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "emulator.lock", "a+b") as lock:  # the lock ends when the file closes, or the process
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("Waiting for another process that is starting or stopping the shared emulator "
                "(usually 1 to 3 s) ...")
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield


def _write_state(found: SharedEmulator, environ: Mapping[str, str] | None) -> None:
    path = state_file(environ)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(found), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)  # a reader sees the old file or the new one, never half of one


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the emulator's server binds
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _port_taken(port: int) -> TargetError:
    url = f"http://{HOST}:{port}"
    # asked once, briefly: a program that holds the port without answering HTTP must not delay the error
    use = f"; to use that emulator instead, pass --endpoint-url {url}" if answers_as_moto(url, 1, 2) else ""
    other = port + 1 if port < 65535 else DEFAULT_PORT + 1
    return TargetError(f"port {port} on {HOST} is taken by another program, not pointapp's shared emulator: "
                       f"set {PORT_VARIABLE} to a free port (for example {PORT_VARIABLE}={other}){use}")


def _start(environ: Mapping[str, str] | None, say: Callable[[str], None]) -> SharedEmulator:
    port = configured_port(environ)
    if port and not _port_free(port):
        raise _port_taken(port)
    log = log_file(environ)
    say(f"Starting the shared emulator on {HOST}:{port or 'a free port'} (it usually answers within 1 to 3 s; "
        f"log {log}) ...")
    package_root = str(Path(__file__).resolve().parent.parent)
    child_env = dict(os.environ if environ is None else environ)
    # the same pointapp as this process, whatever the directory it runs in
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, child_env.get("PYTHONPATH", "")) if p)
    child_env["PYTHONUNBUFFERED"] = "1"
    with open(log, "wb") as output:
        child = subprocess.Popen([sys.executable, "-m", "pointapp", "emulator", "--port", str(port)],
                                 stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                 cwd=state_dir(environ), env=child_env, start_new_session=True)
    _STARTED.append(child)
    threading.Thread(target=child.wait, name="pointapp-shared-emulator-reaper", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if child.poll() is not None:
            if port and not _port_free(port):
                raise _port_taken(port)  # taken between the check and the start
            last = (text.strip().splitlines() or ["no output"])[-1]
            raise TargetError(f"the shared emulator ended as it started ({last}); see {log}")
        lines = [line for line in text.splitlines() if line.startswith(_RUNNING_LINE)]
        if lines:
            url = lines[0][len(_RUNNING_LINE):].strip()
            if _answers_as(url, child.pid):
                started = datetime.now(timezone.utc).isoformat(timespec="seconds")
                found = SharedEmulator(url, child.pid, int(url.rsplit(":", 1)[1]), started)
                _write_state(found, environ)
                return found
        time.sleep(_POLL)
    _end(child.pid)
    raise TargetError(f"the shared emulator did not answer within {START_TIMEOUT:.0f} s; see {log}")


def ensure(environ: Mapping[str, str] | None = None, say: Callable[[str], None] = print) -> SharedEmulator:
    """The shared emulator: the running one, or one started now (in the background, outliving this process).

    ``say`` is told when one is started (and what it waits for). Raises :class:`TargetError` when the port
    is taken by another program or the emulator does not start.
    """
    found = running(environ)  # the common case, without the lock
    if found is not None:
        return found
    with _locked(environ, say):
        found = running(environ)  # another process may have started it while this one waited for the lock
        if found is not None:
            return found
        return _start(environ, say)


def _end(pid: int) -> None:
    """SIGTERM, a bounded wait, then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(_POLL)
        if not _alive(pid):
            return


def stop(environ: Mapping[str, str] | None = None) -> str:
    """Stop the shared emulator (its state is lost), remove its state file, and say what was done."""
    with _locked(environ):
        found = recorded(environ)
        if found is None:
            return "No shared emulator was running: nothing to stop."
        path = state_file(environ)
        if not _is_live(found):
            path.unlink(missing_ok=True)
            return (f"No shared emulator was running: removed the stale state file of {found.url} (pid {found.pid}, "
                    "which is no longer the emulator).")
        _end(found.pid)
        path.unlink(missing_ok=True)
        return f"Stopped the shared emulator at {found.describe()}; what it held is gone."


def status(environ: Mapping[str, str] | None = None) -> tuple[SharedEmulator | None, str]:
    """The running shared emulator (or None) and a line that says so."""
    found = running(environ)
    if found is not None:
        return found, (f"The shared emulator is running at {found.describe()}; it keeps its state until "
                       f"`pointapp emulator --stop`. State file {state_file(environ)}, log {log_file(environ)}.")
    stale = recorded(environ)
    note = f" (the state file names pid {stale.pid}, which is no longer the emulator)" if stale else ""
    return None, f"No shared emulator is running{note}."

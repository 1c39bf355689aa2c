"""The emulator: a moto server on 127.0.0.1, in a thread of the process that starts it (the embedded,
per-process emulator; :mod:`pointapp.shared_emulator` runs one in a process of its own for all)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from pointapp.errors import TargetError

if TYPE_CHECKING:  # the target module makes Targets; the gaps only read its kind and endpoint
    from pointapp.target import Target

#: Credentials the emulator accepts; they are not secrets and never reach real AWS.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


#: Operations the embedded emulator (moto) does not implement. On AWS they run; on the emulator the step
#: says plainly that it skipped them.
EMULATOR_GAPS: dict[tuple[str, str], str] = {
    ("codedeploy", "DeleteApplication"): "",
    ("codedeploy", "DeleteDeploymentGroup"): "",
    ("codedeploy", "UpdateDeploymentGroup"): "",
    ("codedeploy", "StopDeployment"): "",
    ("codedeploy", "RunDeployment"): "the emulator records deployments but never runs them",
    ("elasticache", "ReplicaNodes"): "the emulator makes one node whatever the replica count",
    ("elasticache", "FinishDeletion"): "the emulator leaves a deleted replication group 'deleting'",
    ("elasticache", "DeleteCacheSubnetGroup"): "",
    ("elasticache", "ModifyCacheSubnetGroup"): "",
    ("s3", "PolicyConditions"): "the emulator applies a bucket policy's Deny whatever its condition; the "
                                "statement refusing plain HTTP would refuse every request, so it is left out",
    ("logs", "AssociateKmsKey"): "",
    ("logs", "DisassociateKmsKey"): "",
    ("sesv2", "DkimTokens"): "the emulator's SES gives a domain identity no DKIM tokens; on AWS pointapp writes its "
                             "three DKIM CNAMEs into the zone here, and nothing was changed now",
    ("sesv2", "PutEmailIdentityMailFromAttributes"): "",
    ("amplify", "Amplify"): "the emulator has no Amplify; on AWS pointapp calls it here, and nothing was changed now",
    ("backup", "CreateBackupSelection"): "the emulator has no backup selections (CreateBackupSelection, "
                                         "ListBackupSelections); on AWS pointapp selects the database here, and nothing "
                                         "was changed now",
    ("backup", "UpdateBackupPlan"): "",
    ("rds", "CreateOptionGroup"): "the emulator makes MySQL option groups up to 8.0 only: the instance keeps the "
                                  "default option group, without the audit log plugin",
}


#: Where a pointapp emulator tells which process it is (``{"pid": N}``): the shared emulator's state file
#: names a process and a URL, and this proves they are still the same emulator.
IDENTITY_PATH = "/pointapp-emulator"


def _identified(app: Any) -> Any:
    """The WSGI app ``app``, answering :data:`IDENTITY_PATH` with this process's id."""
    def identified(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != IDENTITY_PATH:
            return app(environ, start_response)
        body = json.dumps({"pid": os.getpid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return identified


#: The services whose moto backends iterate their dictionaries while another thread may add to them (moto's
#: IAM lists every role on each CreateRole: "dictionary changed size during iteration" when two roles are made
#: at once): their requests are answered one at a time.
SERIALIZED_SERVICES = ("iam",)


def _serialized(app: Any) -> Any:
    """The WSGI app ``app``, answering the requests to :data:`SERIALIZED_SERVICES` one at a time."""
    lock = threading.Lock()
    scopes = tuple(f"/{service}/aws4_request" for service in SERIALIZED_SERVICES)

    def serialized(environ: dict[str, Any], start_response: Any) -> Any:
        if not any(scope in environ.get("HTTP_AUTHORIZATION", "") for scope in scopes):
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))  # the whole answer, inside the lock

    return serialized


def load_each_model_once() -> None:
    """Make moto parse each service's model (and paginators) once, however many requests first need it at once.

    moto caches a service's model after parsing it (EC2's is 3 MB of JSON), but without a lock: the first
    requests of a run arrive side by side (discovery reads concurrently), and each parsed the same model again
    (eight requests to EC2 at once: eight parses and 2.7 s of CPU instead of 0.15 s; over a runbook on the
    shared emulator, about 9 s). Here the first parse of each happens under a lock; later reads take none.
    Called once per process before serving; later calls do nothing.
    """
    from moto.core import responses, routing, utils

    for name in ("get_service_model", "get_pagination_model"):
        cached = getattr(utils, name)
        if getattr(cached, "loads_once", False):
            continue
        once = _once_per_service(cached)
        for module in (utils, responses, routing):
            if getattr(module, name, None) is cached:
                setattr(module, name, once)


def _once_per_service(load: Any) -> Any:
    loaded: dict[str, Any] = {}
    lock = threading.Lock()

    def once(service_name: str) -> Any:
        if service_name not in loaded:
            with lock:
                if service_name not in loaded:
                    loaded[service_name] = load(service_name)
        return loaded[service_name]

    once.loads_once = True  # type: ignore[attr-defined]
    return once


def start_with_less_work() -> None:
    """Spare moto two costs of its first requests that change nothing it answers (once per process; later
    calls do nothing):

    - To find the account of a request's access key, moto asks the IAM backend of every partition (six) of
      every account, and so makes each of them, with its 1,300 AWS managed policies: a fifth of a second each.
      A key exists only in a backend that made it, so here only the backends made already are asked.
    - Each service's backends learn their regions from botocore through a session of moto's own, which
      parses the service's whole model again to read its endpoint prefix (about 1.5 s over a runbook's
      services). Here the prefix comes from the model moto parsed to answer the service; the regions are
      botocore's, as before.
    """
    from moto.core.base_backend import AccountSpecificBackend
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iam import models as iam

    if getattr(iam.get_account_id_from, "asks_made_backends", False):
        return

    def get_account_id_from(access_key: str) -> str:
        for account_id, account in list(iam.iam_backends.items()):
            if any(access_key in backend.access_keys for backend in list(dict.values(account))):
                return str(account_id)
        return str(DEFAULT_ACCOUNT_ID)

    get_account_id_from.asks_made_backends = True  # type: ignore[attr-defined]
    iam.get_account_id_from = get_account_id_from
    AccountSpecificBackend._generate_regions = _regions_of  # type: ignore[method-assign, assignment]  # noqa: SLF001


def _regions_of(_: Any, service_name: str) -> list[str]:
    """What moto's ``AccountSpecificBackend._generate_regions`` answers: the regions of every partition
    botocore lists for ``service_name`` (moto makes the service's backends for these)."""
    return list(_regions_for(service_name))


@functools.cache
def _regions_for(service_name: str) -> tuple[str, ...]:
    """The regions botocore lists for a service, by the endpoint prefix of the model moto parsed for it."""
    from moto.core.base_backend import AccountSpecificBackend
    from moto.core.utils import get_service_model

    session = AccountSpecificBackend.get_session()
    if service_name not in session.get_available_services():
        return ()  # a service botocore does not know (moto's own API): botocore lists no region for it
    prefix = get_service_model(service_name).metadata.get("endpointPrefix", service_name)
    resolver = session._session._get_internal_component("endpoint_resolver")  # noqa: SLF001 - what get_available_regions asks
    return tuple(region for partition in session.get_available_partitions()
                 for region in resolver.get_available_endpoints(prefix, partition, False))


#: The delay between polls on an emulator. One poll outlasts what the tests' AWS-like emulator keeps
#: "for a while" (0.5 s), so a retried call is retried once, however busy the machine: the fault runs
#: compare the order of a run's calls with a clean run's.
EMULATOR_POLL_SECONDS = 1.0


#: How often the probe asks an endpoint that does not answer in time (a busy emulator on a loaded machine).
_PROBE_ATTEMPTS = 3


def answers_as_moto(url: str | None, attempts: int = _PROBE_ATTEMPTS, timeout: float = 10) -> bool:
    """Whether the endpoint at ``url`` is a moto server (it answers moto's own configuration API).

    A refusal (say 404 from AWS or another emulator) is a no. No answer within the timeout, or a server
    error, tells nothing: the endpoint is asked again, a few times, before it counts as not moto, so a busy
    emulator is not taken for one that has every service (its missing ones would then be called):
    ``attempts`` times, waiting ``timeout`` seconds each.
    """
    if not url:
        return False
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"{url}/moto-api/config", timeout=timeout) as answer:  # noqa: S310 - http(s) only
                return bool(200 <= answer.status < 300)
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return False  # it answered: not moto's configuration API
            continue  # it failed to answer (a server error): ask again
        except (OSError, ValueError):
            continue  # no answer in time, or the connection dropped: ask again
    return False


class EmulatorGaps:
    """What a target cannot do because it is the emulator: :data:`EMULATOR_GAPS`, once it is known to be one."""

    def __init__(self, emulated: bool | None = None) -> None:
        self.emulated = emulated  # None: find out on the first gap asked about (an endpoint may be moto or not)
        self._lock = threading.Lock()

    def lacks(self, target: Target, service: str, operation: str) -> str | None:
        """Why ``target`` cannot run ``operation`` (the emulator lacks it), or None when it can."""
        if (service, operation) not in EMULATOR_GAPS:
            return None
        with self._lock:  # asked once: the kinds discovered side by side wait for the answer
            if self.emulated is None:
                self.emulated = target.kind in ("emulator", "shared") or (
                    target.kind == "endpoint" and answers_as_moto(target.endpoint_url))
        if not self.emulated:
            return None
        return EMULATOR_GAPS[(service, operation)] or (
            f"the emulator does not implement {service} {operation}; on AWS pointapp calls it here, "
            "and nothing was changed now")


class Emulator:
    """A moto server running in a background thread of this process.

    ``port=0`` picks a free port. Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", wrap: Any = None) -> None:
        self.host = host
        self.port = port
        self.wrap = wrap  # a WSGI middleware around the emulator (the benchmark counts requests with one)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        """Bind, serve in a daemon thread and return the endpoint URL."""
        from moto.core.config import default_user_config
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # AWS managed policies (the SSM core policy of the bastion) exist on AWS; make them exist here too
        default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = True
        # moto's ACM issues a DNS-validated certificate 60 s after the request whatever DNS holds; AWS issues it once
        # the validation record resolves: waiting out moto's minute tells nothing, so it issues at once.
        import moto.settings

        moto.settings.ACM_VALIDATION_WAIT = 0
        load_each_model_once()
        start_with_less_work()
        app = _serialized(_identified(DomainDispatcherApplication(create_backend_app)))
        if self.wrap is not None:
            app = self.wrap(app)

        class KeepAlive(MotoRequestHandler):  # type: ignore[misc]  # moto.moto_server has no types: its handler is Any
            """HTTP/1.1: clients keep their connection open instead of opening one per call."""

            protocol_version = "HTTP/1.1"

        try:
            with contextlib.redirect_stderr(io.StringIO()):  # werkzeug explains a busy port at length
                self._server = make_server(self.host, self.port, app, threaded=True, request_handler=KeepAlive)
        except (OSError, SystemExit) as error:
            raise TargetError(f"cannot start the embedded emulator on {self.host}:{self.port}: "
                              f"{getattr(error, 'strerror', None) or 'port in use'}; choose another --port") from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="pointapp-emulator", daemon=True)
        self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

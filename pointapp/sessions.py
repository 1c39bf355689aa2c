"""botocore's data, parsed once per process: the regions and partitions, and boto3 sessions that share it.

Every new boto3 session parses again each JSON file botocore ships that it reads: the endpoint data (the
regions and partitions), each service's model (0.1 s for EC2). The sessions of one process (the region
check, a run, a notebook's runs, the tests) share one loader instead: the data is read-only, so sharing
it changes nothing else.

Every new client also builds its service's model anew from that data, and with it a description of each
operation as the client's methods are made (EC2 has more than 600): a tenth of a second for the clients of
one run. Clients whose session shares the loader share one model per service and API version instead,
built from the same data; a model is only read once built, so sharing it changes nothing either. They
also share the methods made from it (one per operation), and each client copies its session's event
handlers without going through ``copy.copy`` for every node (together, a sixth of making a client).
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3

_LOADER: list[Any] = []  # the botocore loader of the first session, holding every file it parsed
_LOADER_LOCK = threading.Lock()
#: The service models built from the shared loader's data, by (service, API version).
_MODELS: dict[tuple[str, str | None], Any] = {}


def _share_models_of_the_shared_loader() -> None:
    """Make botocore's client creator reuse the model it built for a service, when its loader is the shared
    one (once per process; a client of any other loader builds its own, as botocore does)."""
    from botocore.client import ClientCreator

    build = ClientCreator._load_service_model  # noqa: SLF001 - where botocore builds a new client's model

    def load_service_model(self: Any, service_name: str, api_version: str | None = None) -> Any:
        if not _LOADER or self._loader is not _LOADER[0]:  # noqa: SLF001
            return build(self, service_name, api_version)
        key = (service_name, api_version)
        model = _MODELS.get(key)
        if model is None:
            model = build(self, service_name, api_version)
            with _LOADER_LOCK:
                model = _MODELS.setdefault(key, model)
        return model

    ClientCreator._load_service_model = load_service_model  # noqa: SLF001
    _share_methods_of_shared_models(ClientCreator)
    _copy_event_handlers_faster()


#: A client's methods (one per operation), by the shared model they were made for.
_METHODS: dict[int, dict[str, Any]] = {}


def _share_methods_of_shared_models(creator: Any) -> None:
    """Make each new client of a shared model reuse the methods made for the first (one function per
    operation, over 600 for EC2). A method only names its operation and calls
    the client it is read from; the class of each client is still made anew from a copy, and the events
    that shape it (``creating-client-class``) still run for each. What a method shares is its docstring,
    built from the first client's session when read (``help``): the same text."""
    make = creator._create_methods  # noqa: SLF001 - where botocore makes a new client's methods

    def create_methods(self: Any, service_model: Any) -> dict[str, Any]:
        if service_model not in _MODELS.values():
            return make(self, service_model)  # type: ignore[no-any-return]
        made = _METHODS.get(id(service_model))
        if made is None:
            made = make(self, service_model)
            with _LOADER_LOCK:
                made = _METHODS.setdefault(id(service_model), made)
        return dict(made)

    creator._create_methods = create_methods  # noqa: SLF001


def _copy_event_handlers_faster() -> None:
    """Copy a session's event handlers for each new client with less work: botocore copies the tree of
    event names (about 400 nodes) node by node through ``copy.copy``; here the same nodes are copied
    directly, each list of handlers a new list of the same handlers, as botocore's copy makes them."""
    from botocore.hooks import NodeList, _PrefixTrie

    copy_node = _PrefixTrie._recursive_copy  # noqa: SLF001

    def recursive_copy(self: Any, node: dict[str, Any]) -> dict[str, Any]:
        copied: dict[str, Any] = {}
        for key, value in node.items():
            kind = type(value)
            if kind is NodeList:
                copied[key] = NodeList(value.first.copy(), value.middle.copy(), value.last.copy())
            elif kind is dict:
                copied[key] = recursive_copy(self, value)
            elif isinstance(value, (NodeList, dict)):
                copied[key] = copy_node(self, {key: value})[key]  # a kind of node botocore does not make
            else:
                copied[key] = value
        return copied

    _PrefixTrie._recursive_copy = recursive_copy  # noqa: SLF001


def share_service_models(session: boto3.Session) -> boto3.Session:
    """Let ``session`` reuse what the earlier sessions of this process parsed; returns it."""
    core = session._session  # noqa: SLF001 - boto3 exposes the botocore session only under this name
    with _LOADER_LOCK:
        if not _LOADER:
            _LOADER.append(core.get_component("data_loader"))
            _share_models_of_the_shared_loader()
        elif core.get_component("data_loader") is not _LOADER[0]:
            core.register_component("data_loader", _LOADER[0])
    return session


def new_session(**options: Any) -> boto3.Session:
    """``boto3.Session(**options)`` sharing the process's parsed data (:func:`share_service_models`)."""
    import boto3

    return share_service_models(boto3.Session(**options))


@functools.lru_cache(maxsize=1)
def data_session() -> boto3.Session:
    """The one session of this process that only reads botocore's data (the regions and partitions)."""
    return new_session()


#: The partitions pointapp builds ARNs, service principals and endpoints for.
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region botocore knows for EC2, across the standard partitions.

    Read once per process: botocore's region list is data shipped with it, parsed once per process for
    every session (:func:`share_service_models`)."""
    session = data_session()
    regions: set[str] = set()
    for partition in PARTITIONS:
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)

"""moto, made cheaper for the tests: a reset that only drops state, default AMIs made when first read,
answers serialized with what moto worked out for an earlier answer of the same shape, listings of tagged
resources that filter EC2 out without walking EC2's resources, XML answers written without SAX, and boto3
calls to an emulator of this process handed to its WSGI app directly, without a socket; botocore's clients
share what they learn of event names.

None changes what moto answers or what botocore sends: the reset drops what moto's own reset re-creates
and then drops; the default AMIs are there before any read of them; the listings leave out only what their
filters drop; the XML is the text xmltodict writes; the answers are byte for byte moto's own
(tests/test_moto_speed.py compares them with :func:`as_shipped`); the direct call skips HTTP between two
ends of one process (the emulator still serves other processes over HTTP); the event names shared depend
on nothing a client holds.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.handlers import BUILTIN_HANDLERS
from werkzeug.exceptions import InternalServerError
from werkzeug.test import EnvironBuilder

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_LIGHTENED: list[bool] = []


def collect_garbage_less_often() -> None:
    """Run Python's cycle collector less often (every 100,000 new objects, not 700, and over the objects
    that outlived those once every 50 times, not 10): moto's state and botocore's parsed answers are many
    small objects that live long, and scanning them again and again took a fifth of a fault run's time
    (the second scan, at 20, still took a twelfth). Memory stays bounded: the collector still runs, and a
    test process holds about 150 MB more between its scans of the older objects."""
    gc.set_threshold(100_000, 50, 20)


def lighten_moto() -> None:
    """Make moto cheaper in this process (once; later calls do nothing). What moto answers stays the same.

    - moto's reset re-creates every backend it ever made (each region's EC2 loads its 4,000 AMIs, each
      partition's IAM parses and makes its 1,300 AWS managed policies), then drops them all, to be made
      again on first use: here it only drops them, after the resets of their own that S3 and Batch have.
    - IAM parses and makes its managed policies once, then gives each new backend a copy (a tenth of the
      time), and only in the ``aws`` partition: the tests' regions are all there, and moto makes an IAM
      backend for every partition on each request (to look the caller's access key up), then one per reset.
    - KMS makes an RSA key pair for every key it creates (its default keys too, a tenth of a second each),
      used only to sign and verify: here it makes it on first use.
    - The server lists moto's package folders on every request (to tell a service from a host name), and
      a response lists its class's methods on every request: both are read once here.
    - The serializer remembers the attribute names it tries per model class and field, and EC2 reads a
      resource's tags by its id (:func:`_remember_attribute_names`, :func:`_look_up_ec2_tags_by_id`).
    """
    if _LIGHTENED:
        return
    _LIGHTENED.append(True)
    from moto import backends as moto_backends
    from moto.core import responses
    from moto.core.base_backend import BackendDict, BaseBackend, backend_lock
    from moto.iam import models as iam
    from moto.kms import models as kms

    kms.generate_private_key = _LazyPrivateKey.maker(kms.generate_private_key)  # type: ignore[assignment]
    modules = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment, return-value]
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)  # type: ignore[assignment]

    def reset(cls: type[BackendDict[Any]]) -> None:
        with backend_lock:
            for backends in BackendDict._instances:  # noqa: SLF001 - moto's own list of the backends in use
                for account in backends.values():
                    for region in account.values():
                        if type(region).reset is not BaseBackend.reset:  # S3's closes files, forgets its buckets
                            region.reset()
                backends.clear()
                # S3 keeps which account owns each bucket beside its backends: a stale entry names a backend
                # without the bucket, and its lookup of the bucket then asks that backend again, for ever.
                getattr(backends, "bucket_accounts", {}).clear()
            BackendDict._instances.clear()  # noqa: SLF001

    parsed: dict[str, Any] = json.loads(iam.aws_managed_policies_data)
    made: dict[str, list[iam.AWSManagedPolicy]] = {}  # by account: the policies as first made, never attached

    def managed_policies(self: iam.IAMBackend) -> list[iam.ManagedPolicy]:
        if not iam.load_iam_aws_managed_policies() or self.region_name != "aws":
            return []
        if self.account_id not in made:
            made[self.account_id] = [iam.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data)
                                     for name, data in parsed.items()]
        return [_fresh_copy(policy) for policy in made[self.account_id]]

    BackendDict.reset = classmethod(reset)  # type: ignore[method-assign, assignment]
    iam.IAMBackend._init_aws_policies = managed_policies  # type: ignore[method-assign]  # noqa: SLF001
    _remember_attribute_names()
    _look_up_ec2_tags_by_id()
    _load_default_amis_on_first_use()
    _leave_ec2_out_of_listings_that_filter_it_out()
    _write_xml_directly()


def _load_default_amis_on_first_use() -> None:
    """Each new EC2 backend (one per Region after every reset) makes moto's 1,300 default AMIs, each with its
    snapshot, a fifth of a second. Here it makes them when the backend's images or snapshots are first read
    (a DescribeImages, the tagging API): a backend whose test never reads them never makes them. What such a
    read answers is the same: the AMIs are made just before it, in moto's own order, with ids as random as
    before.

    A DescribeImages that asks for default AMIs by id alone (RunInstances checks its AMI so, twice) makes
    only those, each with its snapshot, as moto makes it: moto answers just them, in its order. When the rest
    are made, each AMI made early and its snapshot take the places moto gives them (:func:`_made_early`)."""
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.amis import AmiBackend

    load = AmiBackend._load_amis  # noqa: SLF001 - the load moto runs in the backend's __init__
    describe = AmiBackend.describe_images

    def defer(self: AmiBackend) -> None:
        self.__dict__[_AMIS_DEFERRED] = True

    def load_all(self: AmiBackend) -> None:
        early = self.__dict__.pop(_EARLY_AMIS, {})
        load(self)
        _made_early(self, early)

    def describe_images(self: AmiBackend, ami_ids: list[str] | None = None, filters: dict[str, Any] | None = None,
                        exec_users: list[str] | None = None, owners: list[str] | None = None) -> Any:
        asked = _asked_by_id_alone(ami_ids, filters, exec_users, owners)
        if asked and self.__dict__.get(_AMIS_DEFERRED) is True:
            with _AMIS_LOADING:
                if self.__dict__.get(_AMIS_DEFERRED) is True:
                    made = _make_alone(self, asked)
                    if made is not None:
                        return made
        return describe(self, ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)

    AmiBackend._load_amis = defer  # type: ignore[method-assign]  # noqa: SLF001
    AmiBackend.describe_images = describe_images  # type: ignore[method-assign]
    for name in ("amis", "snapshots"):
        setattr(EC2Backend, name, _MadeOnFirstRead(name, load_all))


def _asked_by_id_alone(ami_ids: list[str] | None, filters: dict[str, Any] | None, exec_users: Any,
                       owners: Any) -> list[str] | None:
    """The AMI ids a DescribeImages asks for when it asks by id and nothing else (ids, or one ``image-id``
    filter without wildcards); else None."""
    if exec_users or owners or bool(ami_ids) == bool(filters):
        return None
    if ami_ids:
        return list(ami_ids) if all(i.startswith("ami-") for i in ami_ids) else None  # moto refuses the others
    assert filters is not None
    values = filters.get("image-id") if list(filters) == ["image-id"] else None
    values = [values] if isinstance(values, str) else values
    if not isinstance(values, list) or not all(isinstance(v, str) and not set(v) & set("*?[") for v in values):
        return None
    return values


#: A backend's AMIs made before the rest (by id: the AMI and its snapshot), while the rest are deferred.
_EARLY_AMIS = "_pointapp_default_amis_made_early"
#: Set on a backend while one default AMI is made early: (the thread making it, where its snapshot goes).
_EARLY_SNAPSHOTS = "_pointapp_early_snapshots"


def _default_ami_data(region: str) -> dict[str, dict[str, Any]]:
    """The data moto makes each default AMI of ``region`` from, by id, in the order moto first makes them
    (an id listed twice is made twice, the later data last: that is the AMI that stays)."""
    from moto.ec2.models.amis import AMIS
    from moto.utilities.utils import load_resource

    found = _DEFAULT_AMI_DATA.get(region)
    if found is None:
        found = {ami["ami_id"]: ami for ami in AMIS}
        for path in ("latest_amis", "ecs/optimized_amis"):
            try:
                found.update((ami["ami_id"], ami) for ami in load_resource(f"ec2/resources/{path}/{region}.json"))
            except FileNotFoundError:
                pass
        _DEFAULT_AMI_DATA[region] = found
    return found


_DEFAULT_AMI_DATA: dict[str, dict[str, dict[str, Any]]] = {}


def _make_alone(backend: Any, asked: list[str]) -> list[Any] | None:
    """The default AMIs ``asked`` (made now if not made before), in moto's order; None if one of them is
    not a default AMI of the backend's Region, or moto makes no default AMI here."""
    import os

    from moto import settings
    from moto.ec2.models.amis import Ami, parse_timestamp

    if "MOTO_AMIS_PATH" in os.environ or not settings.ec2_load_default_amis():
        return None
    data = _default_ami_data(backend.region_name)
    if not all(ami_id in data for ami_id in asked):
        return None
    early: dict[str, tuple[Any, Any]] = backend.__dict__.setdefault(_EARLY_AMIS, {})
    for ami_id in asked:
        if ami_id in early:
            continue
        arguments = {**data[ami_id], "owner_alias": "amazon"}  # as moto's load sets them
        if isinstance(arguments.get("creation_date"), str):
            arguments["creation_date"] = parse_timestamp(arguments["creation_date"])
        holding: dict[str, Any] = {}
        backend.__dict__[_EARLY_SNAPSHOTS] = (threading.get_ident(), holding)
        try:
            ami = Ami(backend, **arguments)
        finally:
            del backend.__dict__[_EARLY_SNAPSHOTS]
        early[ami_id] = (ami, ami.ebs_snapshot)
    return [early[ami_id][0] for ami_id in data if ami_id in asked]


def _made_early(backend: Any, early: dict[str, tuple[Any, Any]]) -> None:
    """Once moto made every default AMI: those made early take the places of moto's, and their snapshots
    those of the snapshots moto just made for them, so that every listing answers in moto's order."""
    if not early:
        return
    amis, snapshots = backend.__dict__["amis"], backend.__dict__["snapshots"]
    instead: dict[str, Any] = {}
    for ami_id, (ami, snapshot) in early.items():
        instead[amis[ami_id].ebs_snapshot.id] = snapshot
        amis[ami_id] = ami
    kept = [(instead[key].id, instead[key]) if key in instead else (key, value) for key, value in snapshots.items()]
    snapshots.clear()
    snapshots.update(kept)


def _leave_ec2_out_of_listings_that_filter_it_out() -> None:
    """moto's GetResources walks every resource of every backend in use, then drops each of a type its
    ``ResourceTypeFilters`` leave out. EC2's are the most by far: its 1,300 default AMIs and their snapshots
    (and walking them makes them). Every type EC2 lists is ``ec2:...``, so with type filters of which none
    is ``ec2`` or ``ec2:...``, all of them would be dropped: here EC2 lists none while such a listing takes
    its next resource (in that request's thread). Every other backend, and any other listing, is walked as
    moto walks it."""
    from moto.ec2.models import EC2Backend
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

    walk = EC2Backend.iter_tagged_resources
    made = ResourceGroupsTaggingAPIBackend._get_resources_generator  # noqa: SLF001

    def iter_tagged_resources(self: Any) -> Iterator[Any]:
        return iter(()) if getattr(_WITHOUT_EC2, "on", False) else walk(self)

    def get_resources_generator(self: Any, tag_filters: Any = None, resource_type_filters: list[str] | None = None,
                                resource_arn_list: Any = None) -> Iterator[Any]:
        listing = made(self, tag_filters=tag_filters, resource_type_filters=resource_type_filters,
                       resource_arn_list=resource_arn_list)
        if not resource_type_filters or any(f == "ec2" or f.startswith("ec2:") for f in resource_type_filters):
            yield from listing
            return
        while True:
            _WITHOUT_EC2.on = True
            try:
                item = next(listing, _END)
            finally:
                _WITHOUT_EC2.on = False
            if item is _END:
                return
            yield item

    _replace(EC2Backend, "iter_tagged_resources", iter_tagged_resources)
    _replace(ResourceGroupsTaggingAPIBackend, "_get_resources_generator", get_resources_generator)


#: Set (``on``) in a thread while it takes the next resource of a listing that filters every EC2 type out.
_WITHOUT_EC2 = threading.local()
_END = object()


def _write_xml_directly() -> None:
    """moto's serializer writes each XML answer with ``xmltodict.unparse``, which hands every element to
    SAX's XMLGenerator and checks its name character by character (half of the time it takes).
    Here the same text is written directly: the same escapes, the same empty elements (``<a/>`` where
    moto asks for short ones), each distinct name checked once by xmltodict's own check. A document with
    what moto never sends (comments, namespace maps, pretty printing, an output stream) goes through
    xmltodict itself."""
    import xmltodict
    from moto.core import serialize

    _replace(serialize, "xmltodict", _DirectXml(xmltodict))  # type: ignore[arg-type]


class _Unsupported(Exception):
    """A document :class:`_DirectXml` leaves to xmltodict."""


class _DirectXml:
    """Stands for the ``xmltodict`` module in moto's serializer: its ``unparse``, written directly."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.names: set[tuple[str, str]] = set()  # (kind, name) that passed xmltodict's check

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def unparse(self, input_dict: Any, output: Any = None, encoding: str = "utf-8", full_document: bool = True,
                short_empty_elements: bool = False, comment_key: str = "#comment", **kwargs: Any) -> Any:
        if output is not None or comment_key != "#comment" or any(kwargs.values()) or set(kwargs) - {"pretty"}:
            return self.module.unparse(input_dict, output, encoding, full_document, short_empty_elements, comment_key,
                                       **kwargs)
        writer = _XmlWriter(short_empty_elements)
        try:
            if full_document:
                writer.parts.append(f'<?xml version="1.0" encoding="{encoding}"?>\n')
            seen_root = False
            for key, value in input_dict.items():
                if key == comment_key:
                    raise _Unsupported
                if full_document and seen_root:
                    raise ValueError("Document must have exactly one root.")
                self._emit(writer, key, value, 0, full_document, encoding)
                seen_root = True
            if full_document and not seen_root:
                raise ValueError("Document must have exactly one root.")
        except _Unsupported:
            return self.module.unparse(input_dict, output, encoding, full_document, short_empty_elements, comment_key,
                                       **kwargs)
        return "".join(writer.parts)

    def _check(self, name: Any, kind: str) -> None:
        if (kind, name) not in self.names:
            self.module._validate_name(name, kind)  # noqa: SLF001 - raises as xmltodict does
            self.names.add((kind, name))

    def _emit(self, writer: _XmlWriter, key: str, value: Any, depth: int, full_document: bool, encoding: str) -> None:
        self._check(key, "element")
        text = self.module._convert_value_to_string  # noqa: SLF001
        if not hasattr(value, "__iter__") or isinstance(value, (str, bytes, bytearray, memoryview, dict)):
            value = [value]
        for index, item in enumerate(value):
            if full_document and depth == 0 and index > 0:
                raise ValueError("document with multiple roots")
            if item is None:
                item = {}
            elif not isinstance(item, (dict, str)):
                item = text(item, encoding=encoding)
            if isinstance(item, str):
                item = {"#text": item}
            cdata = None
            attrs: list[tuple[str, str]] = []
            children: list[tuple[str, Any]] = []
            for child, child_value in item.items():
                if child == "#text":
                    cdata = None if child_value is None else text(child_value, encoding=encoding)
                elif isinstance(child, str) and child.startswith("@"):
                    if child == "@xmlns" and isinstance(child_value, dict):
                        raise _Unsupported
                    if child_value is None:
                        child_value = ""
                    elif not isinstance(child_value, str):
                        child_value = text(child_value, encoding=encoding)
                    self._check(child[1:], "attribute")
                    attrs.append((child[1:], child_value))
                elif not (isinstance(child_value, list) and not child_value):
                    if child == "#comment":
                        raise _Unsupported
                    children.append((child, child_value))
            writer.start(key, attrs)
            for child, child_value in children:
                self._emit(writer, child, child_value, depth + 1, full_document, encoding)
            if cdata is not None:
                writer.characters(cdata)
            writer.end(key)


class _XmlWriter:
    """What SAX's XMLGenerator writes for elements and text, into a list."""

    def __init__(self, short_empty_elements: bool) -> None:
        self.parts: list[str] = []
        self.short = short_empty_elements
        self.pending = False

    def start(self, name: str, attrs: list[tuple[str, str]]) -> None:
        if self.pending:
            self.parts.append(">")
        self.parts.append("<" + name)
        for attr, value in attrs:
            self.parts.append(f" {attr}={quoteattr(value)}")
        self.pending = self.short
        if not self.short:
            self.parts.append(">")

    def characters(self, content: str) -> None:
        if content:
            if self.pending:
                self.parts.append(">")
                self.pending = False
            self.parts.append(escape(content))

    def end(self, name: str) -> None:
        if self.pending:
            self.parts.append("/>")
            self.pending = False
        else:
            self.parts.append(f"</{name}>")


#: Set on a backend whose default AMIs are not made yet (True), or are being made ("loading").
_AMIS_DEFERRED = "_pointapp_default_amis_deferred"
#: Held while a backend's default AMIs are made: a request in another thread waits for all of them (the
#: thread making them reads its own attributes meanwhile, hence reentrant).
_AMIS_LOADING = threading.RLock()


class _MadeOnFirstRead:
    """An attribute of an EC2 backend (its AMIs, its snapshots) that runs ``load`` before it is first read."""

    def __init__(self, name: str, load: Callable[[Any], None]) -> None:
        self.name, self.load = name, load

    def __get__(self, backend: Any, owner: type | None = None) -> Any:
        if backend is None:
            return self
        making = backend.__dict__.get(_EARLY_SNAPSHOTS)
        if making is not None and self.name == "snapshots" and making[0] == threading.get_ident():
            return making[1]  # the snapshot of a default AMI made early (:func:`_make_alone`)
        if _AMIS_DEFERRED in backend.__dict__:
            with _AMIS_LOADING:
                if backend.__dict__.get(_AMIS_DEFERRED) is True:
                    backend.__dict__[_AMIS_DEFERRED] = "loading"
                    try:
                        self.load(backend)
                    finally:
                        del backend.__dict__[_AMIS_DEFERRED]
        return backend.__dict__[self.name]

    def __set__(self, backend: Any, value: Any) -> None:
        backend.__dict__[self.name] = value


#: The most attribute-name lists :func:`_remember_attribute_names` keeps (a shape made for one answer, an
#: error's, is a key of its own): past it, the memo starts again.
_NAMES_KEPT = 100_000


def _remember_attribute_names() -> None:
    """moto's serializer finds each field of an answer on its model object by trying a list of attribute
    names, which six alias rules work out anew for every field of every answer (a third of serializing
    one). The list depends only on the object's class, the field, its shape and the shape's parent: here
    it is worked out once for each of those and remembered; the object is still asked for each name in
    that order, and the answer's transformers still apply, so every answer stays the same."""
    from moto.core import serialize
    from moto.core.utils import MISSING, get_value

    made = serialize.ResponseSerializer.get_value
    names: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def get_value_remembered(self: Any, value: Any, key: str, shape: Any) -> Any:
        picker = self._value_picker  # noqa: SLF001 - the serializer's own picker
        if type(picker) is not serialize.XFormedAttributePicker or picker.alias_providers is not serialize.DEFAULT_ALIAS_PROVIDERS:
            return made(self, value, key, shape)
        memo = (type(value), key, shape, getattr(shape, "parent", None))
        tried = names.get(memo)
        if tried is None:
            context = serialize.AttributePickerContext(obj=value, key=key, shape=shape,
                                                       operation_model=self.operation_model,
                                                       service_model=self.operation_model.service_model)
            tried = tuple(picker.get_possible_keys(context))
            if len(names) >= _NAMES_KEPT:
                names.clear()
            names[memo] = tried
        for name in tried:
            found = get_value(value, name, MISSING)
            if found is not MISSING:
                break
        else:
            found = None
        if picker.response_transformers:
            path = f"{'.'.join(self.path)}.{key}"
            for ending, transform in picker.response_transformers.items():
                if path.endswith(ending):
                    return transform(found)
        return found

    _replace(serialize.ResponseSerializer, "get_value", get_value_remembered)


def _look_up_ec2_tags_by_id() -> None:
    """moto's EC2 finds a resource's tags, for every resource of every answer, by matching its id as a
    pattern against the id of every tagged resource (an answer listing N resources costs N times all the
    tags of the Region). An id is no pattern (it holds none of ``*?[``): here its tags are read by that id,
    in the same order and shape; an id that would be a pattern goes the old way."""
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    made = TaggedEC2Resource.get_tags

    def get_tags(self: Any) -> list[dict[str, str]]:
        resource_id = getattr(self, "id", None)
        if not resource_id or not isinstance(resource_id, str) or any(c in resource_id for c in "*?["):
            return made(self)
        tags = self.ec2_backend.tags.get(resource_id) or {}
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [{"resource_id": resource_id, "key": key, "value": value, "resource_type": kind}
                for key, value in list(tags.items())]

    _replace(TaggedEC2Resource, "get_tags", get_tags)


#: The moto methods replaced here that shape answers: (class, name, moto's own, the replacement).
_REPLACED: list[tuple[type, str, Any, Any]] = []


def _replace(owner: type, name: str, replacement: Any) -> None:
    _REPLACED.append((owner, name, getattr(owner, name), replacement))
    setattr(owner, name, replacement)


@contextlib.contextmanager
def as_shipped() -> Iterator[None]:
    """moto's own methods, in place of those replaced here that shape answers, until the block ends (the
    tests that check the replacements answer as moto does)."""
    for owner, name, own, _ in _REPLACED:
        setattr(owner, name, own)
    try:
        yield
    finally:
        for owner, name, _, replacement in _REPLACED:
            setattr(owner, name, replacement)


def _fresh_copy(policy: Any) -> Any:
    """An AWS managed policy as it was made, unattached: what a backend may change of it (its attachment
    count, tags, versions) is its own. Its id stays the one first drawn, as an AWS managed policy's does."""
    copy = _shallow(policy)
    copy.tags = {}
    copy.versions = [_shallow(version) for version in policy.versions]
    return copy


def _shallow(item: Any) -> Any:
    copy = object.__new__(type(item))
    copy.__dict__.update(item.__dict__)
    return copy


def share_event_aliases() -> None:
    """Let every botocore event emitter of this process (once; later calls do nothing) share what it
    learnt of event names: which ones botocore's alias table renames (``elbv2`` to
    ``elastic-load-balancing-v2``) and which it leaves.

    Each client copies its session's emitter with an empty memo of that, then works it out again for
    every event it emits a first time, a search of the whole table; with the contexts a test run makes
    (each of its own clients), that was a twentieth of a fault run's time. The answer depends on the event
    name and the table only, so emitters with botocore's own table share one memo.
    """
    if _SHARED_ALIASES:
        return
    _SHARED_ALIASES.append({})
    from botocore.hooks import EventAliaser
    from botocore.utils import EVENT_ALIASES

    made = EventAliaser.__init__

    def __init__(self: EventAliaser, event_emitter: Any, event_aliases: dict[str, str] | None = None) -> None:
        made(self, event_emitter, event_aliases)
        if self._event_aliases == EVENT_ALIASES:
            self._alias_name_cache = _SHARED_ALIASES[0]

    EventAliaser.__init__ = __init__


_SHARED_ALIASES: list[dict[str, str]] = []


class _LazyPrivateKey:
    """A KMS key's private key, made by ``make(key_spec)`` when first used."""

    def __init__(self, make: Callable[[str], Any], key_spec: str) -> None:
        self.make, self.key_spec, self.made = make, key_spec, None

    @classmethod
    def maker(cls, make: Callable[[str], Any]) -> Callable[[str], Any]:
        return lambda key_spec: cls(make, key_spec)

    def __getattr__(self, name: str) -> Any:
        if name in ("make", "key_spec", "made"):  # not set yet (a copy being made)
            raise AttributeError(name)
        if self.made is None:
            self.made = self.make(self.key_spec)
        return getattr(self.made, name)


class _Body(io.BytesIO):
    """An answer's body as botocore reads a raw HTTP response."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        data = self.read()
        while data:
            yield data
            data = self.read()


class InProcess:
    """botocore's ``before-send`` handler: a request to an endpoint of :meth:`serve` gets its answer from
    that endpoint's WSGI app, called in this thread; any other request is sent as usual."""

    def __init__(self) -> None:
        self.apps: dict[str, WsgiApp] = {}
        self.lock = threading.Lock()

    def serve(self, url: str, app: WsgiApp) -> None:
        with self.lock:
            self.apps[url.rstrip("/")] = app

    def forget(self, url: str) -> None:
        with self.lock:
            self.apps.pop(url.rstrip("/"), None)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        parts = urlsplit(request.url)
        base = f"{parts.scheme}://{parts.netloc}"
        app = self.apps.get(base)
        if app is None:
            return None
        body = request.body.read() if hasattr(request.body, "read") else request.body
        headers = {key: value.decode() if isinstance(value, bytes) else value for key, value in request.headers.items()}
        environ = EnvironBuilder(method=request.method, base_url=base, path=parts.path, query_string=parts.query,
                                 headers=headers, data=body or b"").get_environ()
        answered: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered.update(status=status, headers=response_headers)
            return lambda _: None

        try:
            content = _run(app, environ, start_response)
        except Exception:  # noqa: BLE001 - as werkzeug's server answers an app that fails: 500
            content = _run(InternalServerError(), environ, start_response)
        response_headers = HTTPHeaders()
        for key, value in answered["headers"]:
            response_headers[key] = value
        return AWSResponse(request.url, int(answered["status"].split()[0]), response_headers, _Body(content))


def _run(app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> bytes:
    result = app(environ, start_response)
    try:
        return b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()


#: The handler every botocore session of this process made from now on calls before it sends a request.
IN_PROCESS = InProcess()
BUILTIN_HANDLERS.append(("before-send", IN_PROCESS))

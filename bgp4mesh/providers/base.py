"""Shared plumbing for the Netmaker dynamic providers.

Shape follows the appliance-REST-API pattern (a small base provider, one subclass per object
kind), with the dynamic-provider pitfalls handled here once:

* **No client in the serialized provider.** A :class:`~bgp4mesh.netmaker_api.NetmakerClient`
  is built inside every method from the resource's ``connection`` input (plus the overrides
  read in :meth:`configure`) and closed afterwards. Nothing is created at import time, and
  ``__getstate__`` drops the overrides so a provider pickled after ``configure`` still carries
  no credential.
* **Credentials.** ``connection = {api_url, master_key, ca_pem}`` arrives as an input; the
  program passes ``master_key`` as a secret. It is kept in the outputs only inside
  ``connection``, which every resource lists in ``additional_secret_outputs`` (so the state
  file holds it encrypted; ``delete`` and ``refresh`` need it). Stack config
  ``bgp4mesh:netmaker_api_url`` / ``bgp4mesh:netmaker_master_key`` (and ``..._ca_pem``) or env
  ``NETMAKER_API_URL`` / ``NETMAKER_MASTER_KEY`` (``NETMAKER_CA_PEM``) override it when present.
* **Unknowns.** During preview, inputs may be unknown: ``pulumi.output.Unknown`` instances in
  this SDK (keep_unknowns=True) or the raw sentinel string ``04da6b54-...`` in older ones.
  ``check`` skips validation of unknown values; ``diff`` treats an unknown value in a
  replace-only field as a replacement (conservative, like the Terraform bridge) and in other
  fields as an update, and skips the server drift check when the connection is unknown.
* **Drift.** ``read`` is not called by ``pulumi up`` for dynamic resources, so ``diff`` also
  reads the live object: gone -> replace (or update, for kinds that can re-create their parts
  in place), changed -> update or replace. An unreachable server only downgrades that check
  to a warning, so a preview still works offline.
* **Code changes.** ``provider_version`` is an input; changing it forces an update, which
  runs the new provider code.
* **Policy packs** see every dynamic resource as one type, so each resource carries a
  ``kind`` input/output (and a distinct type token ``pulumi-python:dynamic/bgp4mesh:<Name>``).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from bgp4mesh.netmaker_api import NetmakerClient, NotFound, Unavailable
from bgp4mesh.providers.fields import Fields

UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

CONFIG_API_URL = "bgp4mesh:netmaker_api_url"
CONFIG_MASTER_KEY = "bgp4mesh:netmaker_master_key"
CONFIG_CA_PEM = "bgp4mesh:netmaker_ca_pem"
ENV_API_URL = "NETMAKER_API_URL"
ENV_MASTER_KEY = "NETMAKER_MASTER_KEY"
ENV_CA_PEM = "NETMAKER_CA_PEM"

# Inputs every resource has besides its own fields.
COMMON_UPDATE_FIELDS = ("provider_version", "kind")


def is_unknown(value: Any) -> bool:
    """True if ``value`` is, or contains, a preview-time unknown."""
    if isinstance(value, pulumi.output.Unknown):
        return True
    if isinstance(value, str):
        return value == UNKNOWN_SENTINEL
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    return False


def known(value: Any) -> bool:
    return value is not None and not is_unknown(value)


def differs(old: Any, new: Any) -> bool:
    """Input comparison for diff: unknown ``new`` counts as a change; None == missing."""
    if is_unknown(new):
        return True
    return _norm(old) != _norm(new)


def _norm(v: Any) -> Any:
    # the engine sends every number as a float; "" and None and [] mean "unset"
    if isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, Mapping):
        return {k: _norm(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v] or None
    if v == "":
        return None
    return v


def as_int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    if isinstance(v, int):
        return v
    return None


def normalize_cidr(value: str, version: int | None = None) -> str:
    """Network-address form, as Netmaker stores it (``10.1.0.7/24`` -> ``10.1.0.0/24``)."""
    net = ipaddress.ip_network(str(value).strip(), strict=False)
    if version is not None and net.version != version:
        raise ValueError(f"'{value}' is not an IPv{version} CIDR")
    return str(net)


# --------------------------------------------------------------------------------------
# connection input
# --------------------------------------------------------------------------------------
@dataclass
class NetmakerConnection:
    """How a provider reaches Netmaker. Pass ``master_key`` as a secret Output."""

    api_url: pulumi.Input[str]
    master_key: pulumi.Input[str]
    ca_pem: pulumi.Input[str] | None = None

    def to_input(self) -> dict[str, Any]:
        return {"api_url": self.api_url, "master_key": self.master_key, "ca_pem": self.ca_pem}


def connection_input(connection: Any) -> Any:
    """Accept a :class:`NetmakerConnection`, a mapping, or an Output of a mapping."""
    if isinstance(connection, NetmakerConnection):
        return connection.to_input()
    if isinstance(connection, Mapping):
        extra = set(connection) - {"api_url", "master_key", "ca_pem"}
        if extra:
            raise TypeError(f"connection: unexpected keys {sorted(extra)} (expected api_url, master_key, ca_pem)")
        return dict(connection)
    return connection


# --------------------------------------------------------------------------------------
# provider base
# --------------------------------------------------------------------------------------
class NetmakerProvider(ResourceProvider):
    """Base class: shared check/diff/create/read/update/delete over four hooks.

    Subclasses set ``KIND`` and ``FIELDS`` (and, where the default does not fit, the other
    class variables) and implement:

    * ``validate(news) -> list[CheckFailure]`` (may normalise ``news`` in place; must skip
      unknown values),
    * ``create_object(client, props) -> (id, computed_outs)``,
    * ``read_object(client, id, props) -> live outs dict | None`` (None = gone),
    * ``update_object(client, id, olds, news) -> computed_outs``,
    * ``delete_object(client, id, props)`` (may raise NotFound: treated as done).
    """

    serialize_as_secret_always = False  # the provider captures no secret

    KIND: ClassVar[str] = ""
    FIELDS: ClassVar[Fields] = Fields()  # the resource's own inputs and outputs
    GONE_FIELD: ClassVar[str] = ""  # reported in `replaces` when the object vanished
    GONE_MEANS_REPLACE: ClassVar[bool] = True
    CLIENT_OPTIONS: ClassVar[dict[str, Any]] = {}
    # the drift check in diff is best-effort: give up sooner on a dead server (a preview
    # against an offline lab should not spend the full retry budget on every resource)
    DRIFT_CLIENT_OPTIONS: ClassVar[dict[str, Any]] = {"retries": 2, "total_timeout": 10.0}

    def __init__(self) -> None:
        super().__init__()

    # -- serialization safety -------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_override")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- configure / client -----------------------------------------------------------------
    def configure(self, req: ConfigureRequest) -> None:
        """Read optional credential overrides: stack config first, then env."""
        cfg = getattr(req, "config", None)

        def pick(key: str, env: str) -> str | None:
            val = None
            if cfg is not None:
                try:
                    val = cfg.get(key)
                except Exception:  # noqa: BLE001 - a malformed config must not kill the provider
                    val = None
            if not val:
                val = os.environ.get(env)
            return str(val) if val else None

        self._override_api_url = pick(CONFIG_API_URL, ENV_API_URL)
        self._override_master_key = pick(CONFIG_MASTER_KEY, ENV_MASTER_KEY)
        self._override_ca_pem = pick(CONFIG_CA_PEM, ENV_CA_PEM)

    def _effective_connection(self, props: Mapping[str, Any]) -> dict[str, Any]:
        raw = props.get("connection")
        if isinstance(raw, Mapping):
            conn = dict(raw)
        elif is_unknown(raw):  # the whole object is unknown during preview
            conn = {"api_url": raw, "master_key": raw, "ca_pem": None}
        else:
            conn = {}
        for field in ("api_url", "master_key", "ca_pem"):
            override = getattr(self, f"_override_{field}", None)
            if override:
                conn[field] = override
        return conn

    def _connection_known(self, props: Mapping[str, Any]) -> bool:
        conn = self._effective_connection(props)
        return known(conn.get("api_url")) and known(conn.get("master_key")) and not is_unknown(conn.get("ca_pem"))

    def client(self, props: Mapping[str, Any], **options: Any) -> NetmakerClient:
        conn = self._effective_connection(props)
        api_url, key = conn.get("api_url"), conn.get("master_key")
        if not known(api_url) or not known(key):
            raise ValueError(
                f"{self.KIND}: no Netmaker connection: set connection.api_url/master_key, stack config "
                f"{CONFIG_API_URL}/{CONFIG_MASTER_KEY}, or env {ENV_API_URL}/{ENV_MASTER_KEY}"
            )
        return NetmakerClient(str(api_url), str(key), conn.get("ca_pem") or None, **{**options, **self.CLIENT_OPTIONS})

    # -- hooks --------------------------------------------------------------------------------
    def validate(self, news: dict[str, Any]) -> list[CheckFailure]:
        return []

    def create_object(self, client: NetmakerClient, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def read_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError

    def update_object(
        self, client: NetmakerClient, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> dict[str, Any]:
        live = self.read_object(client, id_, {**olds, **news})
        return {k: v for k, v in (live or {}).items() if k not in self.FIELDS.inputs}

    def delete_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- helpers --------------------------------------------------------------------------------
    def _inputs(self, props: Mapping[str, Any]) -> dict[str, Any]:
        out = {f: props.get(f) for f in self.FIELDS.inputs}
        out["connection"] = props.get("connection")
        out["provider_version"] = props.get("provider_version")
        out["kind"] = self.KIND
        return out

    def _outs(self, props: Mapping[str, Any], computed: Mapping[str, Any]) -> dict[str, Any]:
        outs = self._inputs(props)
        outs.update({k: v for k, v in computed.items() if k not in ("connection", "kind")})
        return outs

    # -- ResourceProvider -----------------------------------------------------------------------
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        news = dict(news)
        failures: list[CheckFailure] = []
        for k, v in self.FIELDS.defaults.items():
            if news.get(k) is None:
                news[k] = v
        kind = news.get("kind")
        if known(kind) and kind != self.KIND:
            failures.append(CheckFailure("kind", f"must be '{self.KIND}', got '{kind}'"))
        news["kind"] = self.KIND
        conn = news.get("connection")
        if conn is None and not getattr(self, "_override_api_url", None):
            failures.append(CheckFailure("connection", "required: {api_url, master_key[, ca_pem]}"))
        elif isinstance(conn, Mapping):
            url = conn.get("api_url")
            if known(url) and not str(url).startswith(("http://", "https://")):
                failures.append(CheckFailure("connection", f"api_url must start with http:// or https://, got '{url}'"))
            if url is None and not getattr(self, "_override_api_url", None):
                failures.append(CheckFailure("connection", "api_url is required"))
            key = conn.get("master_key")
            if (key is None or key == "") and not getattr(self, "_override_master_key", None):
                failures.append(CheckFailure("connection", "master_key is required (pass it as a secret)"))
            ca = conn.get("ca_pem")
            if known(ca) and ca:
                try:
                    ssl.create_default_context(cadata=str(ca))
                except (ssl.SSLError, ValueError) as exc:
                    failures.append(CheckFailure("connection", f"ca_pem is not a usable PEM CA certificate ({exc})"))
        elif known(conn):
            failures.append(CheckFailure("connection", "must be an object {api_url, master_key, ca_pem}"))
        failures.extend(self.validate(news))
        return CheckResult(news, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces: set[str] = set()
        changed = False
        for f in self.FIELDS.inputs:
            if differs(olds.get(f), news.get(f)):
                if f in self.FIELDS.replace_on:
                    replaces.add(f)
                else:
                    changed = True
        for f in COMMON_UPDATE_FIELDS:
            if differs(olds.get(f), news.get(f) if f != "kind" else self.KIND):
                changed = True
        if differs(olds.get("connection"), news.get("connection")):
            changed = True  # refresh the stored connection; nothing changes on the server

        if id_ and not replaces and self._connection_known(news):
            try:
                with self.client(news, **self.DRIFT_CLIENT_OPTIONS) as client:
                    live = self.read_object(client, id_, {**olds, **{k: v for k, v in news.items() if known(v)}})
            except Unavailable as exc:
                pulumi.log.warn(f"{self.KIND} {id_}: drift check skipped, Netmaker unreachable: {exc}")
            else:
                if live is None:
                    if self.GONE_MEANS_REPLACE:
                        replaces.add(self.GONE_FIELD)
                    else:
                        changed = True
                else:
                    for f in self.FIELDS.inputs:
                        if f not in live or not known(news.get(f)):
                            continue
                        if _norm(live[f]) != _norm(news.get(f)):
                            if f in self.FIELDS.replace_on:
                                replaces.add(f)
                            else:
                                changed = True
                    for f in self.FIELDS.drift:
                        if f in live and _norm(live[f]) != _norm(olds.get(f)):
                            changed = True
        if replaces:
            return DiffResult(changes=True, replaces=sorted(replaces), delete_before_replace=True)
        return DiffResult(changes=changed, replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        with self.client(props) as client:
            id_, computed = self.create_object(client, props)
        return CreateResult(id_, self._outs(props, computed))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.client(props) as client:
            live = self.read_object(client, id_, props)
        if live is None:
            return ReadResult("", {})  # gone: refresh drops it from the state
        outs = dict(props)
        outs.update(live)
        outs["kind"] = self.KIND
        return ReadResult(id_, outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with self.client(news) as client:
            computed = self.update_object(client, id_, olds, news)
        return UpdateResult(self._outs(news, computed))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with self.client(props) as client:
            try:
                self.delete_object(client, id_, props)
            except NotFound:
                pass  # already gone: success


def merge_opts(
    opts: pulumi.ResourceOptions | None, secret_outputs: list[str]
) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=secret_outputs))


class NetmakerResource(pulumi.dynamic.Resource):
    """A resource that registers what its provider's ``FIELDS`` declare: ``kind``, the
    connection, the inputs from ``args``, ``provider_version`` and every output (unset),
    with the secret outputs encrypted in the state."""

    PROVIDER: ClassVar[type[NetmakerProvider]]

    def __init__(self, name: str, args: Any, opts: pulumi.ResourceOptions | None = None) -> None:
        provider = self.PROVIDER()
        fields = provider.FIELDS
        props = {
            "kind": provider.KIND,
            "connection": connection_input(args.connection),
            **{f: getattr(args, f) for f in fields.inputs},
            "provider_version": args.provider_version,
            **dict.fromkeys(fields.outputs),
        }
        super().__init__(provider, name, props, merge_opts(opts, fields.secret_outputs))

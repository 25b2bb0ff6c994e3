"""A small resource-provider plugin framework for the stand-in providers.

Implements Pulumi's ResourceProvider gRPC service (pulumi.runtime.proto) directly: the engine
starts the plugin with its address as an argument, reads the port from the first line of stdout
and then calls GetPluginInfo/Handshake/CheckConfig/Configure/Check/Diff/Create/Read/Update/Delete.

Values cross the wire as google.protobuf.Struct with Pulumi's sentinels: an unknown (preview)
value is a fixed string, a secret is a map tagged with a fixed signature key. Here, inputs and
outputs are plain Python values (ints for integral numbers, UNKNOWN for unknowns); secretness is
tracked per top-level property: a property that contains a secret anywhere is returned as a whole
secret, and a resource class lists the outputs that are always secret.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from concurrent import futures
from typing import Any, Optional

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN_STR = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# other special signatures (assets, archives, resource references, output values)
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"


class _Unknown:
    _inst = None

    def __new__(cls):
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


class ProviderError(Exception):
    """An error shown to the user as the operation's failure."""


class InputError(ProviderError):
    def __init__(self, prop: str, reason: str):
        super().__init__(f"{prop}: {reason}")
        self.prop = prop
        self.reason = reason


def has_unknown(v: Any) -> bool:
    if v is UNKNOWN:
        return True
    if isinstance(v, dict):
        return any(has_unknown(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(has_unknown(x) for x in v)
    return False


# ---------------------------------------------------------------- wire <-> plain
def _from_value(v: struct_pb2.Value) -> tuple[Any, bool]:
    kind = v.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None, False
    if kind == "bool_value":
        return v.bool_value, False
    if kind == "number_value":
        n = v.number_value
        return (int(n) if n.is_integer() else n), False
    if kind == "string_value":
        if v.string_value == UNKNOWN_STR:
            return UNKNOWN, False
        return v.string_value, False
    if kind == "list_value":
        out, secret = [], False
        for item in v.list_value.values:
            x, s = _from_value(item)
            out.append(x)
            secret = secret or s
        return out, secret
    # struct
    fields = v.struct_value.fields
    if SECRET_SIG_KEY in fields:
        sig = fields[SECRET_SIG_KEY].string_value
        if sig == SECRET_SIG:
            inner, _ = _from_value(fields["value"]) if "value" in fields else (None, False)
            return inner, True
        if sig == OUTPUT_SIG:
            secret = "secret" in fields and fields["secret"].bool_value
            if "value" not in fields:
                return UNKNOWN, secret
            inner, s = _from_value(fields["value"])
            return inner, secret or s
        # assets/archives/resource references: keep the raw map
        raw = {k: _from_value(x)[0] for k, x in fields.items()}
        return raw, False
    out, secret = {}, False
    for k, item in fields.items():
        x, s = _from_value(item)
        out[k] = x
        secret = secret or s
    return out, secret


def unmarshal(s: Optional[struct_pb2.Struct]) -> tuple[dict, set]:
    """Struct -> (plain dict, set of top-level keys holding a secret)."""
    props, secrets = {}, set()
    if s is None:
        return props, secrets
    for k, v in s.fields.items():
        x, sec = _from_value(v)
        props[k] = x
        if sec:
            secrets.add(k)
    return props, secrets


def _to_value(x: Any) -> struct_pb2.Value:
    v = struct_pb2.Value()
    if x is None:
        v.null_value = struct_pb2.NULL_VALUE
    elif x is UNKNOWN:
        v.string_value = UNKNOWN_STR
    elif isinstance(x, bool):
        v.bool_value = x
    elif isinstance(x, (int, float)):
        v.number_value = float(x)
    elif isinstance(x, str):
        v.string_value = x
    elif isinstance(x, (list, tuple)):
        v.list_value.values.extend(_to_value(i) for i in x)
    elif isinstance(x, dict):
        for k, i in x.items():
            v.struct_value.fields[k].CopyFrom(_to_value(i))
    else:
        raise TypeError(f"cannot marshal {type(x).__name__}")
    return v


def marshal(props: dict, secrets: set = frozenset()) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    for k, x in props.items():
        val = _to_value(x)
        if k in secrets and x is not UNKNOWN:
            wrapped = struct_pb2.Value()
            wrapped.struct_value.fields[SECRET_SIG_KEY].string_value = SECRET_SIG
            wrapped.struct_value.fields["value"].CopyFrom(val)
            val = wrapped
        s.fields[k].CopyFrom(val)
    return s


def _norm(x: Any) -> Any:
    """Normalize for comparison: missing == None, 1 == 1.0, tuples as lists."""
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if isinstance(x, (list, tuple)):
        return [_norm(i) for i in x]
    if isinstance(x, dict):
        return {k: _norm(v) for k, v in x.items() if v is not None}
    return x


def equal(a: Any, b: Any) -> bool:
    if a is UNKNOWN or b is UNKNOWN or has_unknown(a) or has_unknown(b):
        return False
    return _norm(a) == _norm(b)


def type_of(urn: str) -> str:
    # urn:pulumi:stack::project::parent$type::name
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def name_of(urn: str) -> str:
    return urn.split("::")[-1]


# ---------------------------------------------------------------- resources
class Resource:
    """One resource type. Subclasses set the class attributes and override the methods."""

    token: str = ""
    # input properties and their defaults (None: no default); unknown inputs are rejected
    inputs: dict[str, Any] = {}
    # inputs whose change forces a replacement ("*" for all of them)
    replace_on: frozenset[str] | str = frozenset()
    # outputs that are always secret
    secret_outputs: frozenset[str] = frozenset()
    # inputs that are always secret (returned secret by Check, e.g. a provider:"secret" input)
    secret_inputs: frozenset[str] = frozenset()
    # computed outputs (unknown in a preview of a create, or of an update that changes them)
    computed: tuple[str, ...] = ()

    def __init__(self, provider: "Provider"):
        self.provider = provider

    # -- hooks
    def check(self, urn: str, news: dict, olds: dict, seed: bytes) -> dict:
        """Validate and apply defaults; raise InputError for a failure."""
        out = {}
        for k, v in news.items():
            if k not in self.inputs and not k.startswith("__"):
                raise InputError(k, f"unknown property of {self.token}")
            out[k] = v
        for k, default in self.inputs.items():
            if out.get(k) is None and default is not None:
                out[k] = default
        return out

    def replaces(self, key: str, old_inputs: dict, news: dict) -> bool:
        return self.replace_on == "*" or key in self.replace_on

    def force_replace(self, olds: dict) -> list[str]:
        """Output properties whose current value forces a replacement (e.g. a certificate due)."""
        return []

    def create(self, urn: str, inputs: dict, preview: bool) -> tuple[str, dict]:
        raise NotImplementedError

    def update(self, urn: str, rid: str, olds: dict, news: dict, preview: bool) -> dict:
        # default: nothing to do beyond storing the new inputs
        out = dict(olds)
        out.update(news)
        for k in list(out):
            if k in olds and k not in news and k in self.inputs:
                del out[k]
        return out

    def delete(self, urn: str, rid: str, state: dict) -> None:
        pass

    def read(self, urn: str, rid: str, state: dict, inputs: dict) -> tuple[Optional[str], dict, dict]:
        return rid, state, inputs


class Provider(provider_pb2_grpc.ResourceProviderServicer):
    name = ""
    version = ""
    resources: tuple[type[Resource], ...] = ()

    def __init__(self, engine_address: str = ""):
        self.engine_address = engine_address
        self._types = {r.token: r(self) for r in self.resources}
        self.config: dict = {}
        self._engine = None
        self._engine_lock = threading.Lock()

    def log(self, urn: str, message: str, severity: str = "info", ephemeral: bool = False) -> None:
        """A diagnostic message shown by the engine against `urn` (best effort)."""
        if not self.engine_address or self.engine_address.endswith(":1"):
            return
        from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

        try:
            with self._engine_lock:
                if self._engine is None:
                    self._engine = engine_pb2_grpc.EngineStub(grpc.insecure_channel(self.engine_address))
            sev = {"debug": engine_pb2.DEBUG, "info": engine_pb2.INFO, "warning": engine_pb2.WARNING,
                   "error": engine_pb2.ERROR}[severity]
            self._engine.Log(engine_pb2.LogRequest(severity=sev, message=message, urn=urn, ephemeral=ephemeral),
                             timeout=10)
        except Exception:  # noqa: BLE001 -- logging must never fail an operation
            pass

    def _res(self, urn: str, typ: str = "") -> Resource:
        t = typ or type_of(urn)
        r = self._types.get(t)
        if r is None:
            raise ProviderError(f"the {self.name} stand-in provider does not implement resource type {t!r}")
        return r

    # -- plumbing
    def _guard(self, context, fn):
        try:
            return fn()
        except InputError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except ProviderError as e:
            context.abort(grpc.StatusCode.UNKNOWN, str(e))
        except grpc.RpcError:
            raise
        except Exception as e:  # noqa: BLE001 -- report everything to the engine
            if os.environ.get("PULUMI_STANDIN_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            context.abort(grpc.StatusCode.UNKNOWN, f"{type(e).__name__}: {e}")

    # -- plugin metadata and configuration
    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=self.version)

    def Handshake(self, request, context):
        return provider_pb2.ProviderHandshakeResponse(accept_secrets=True, accept_resources=True)

    def GetSchema(self, request, context):
        schema = {"name": self.name, "version": self.version,
                  "description": f"bgp4mesh stand-in for the {self.name} provider (no full schema)",
                  "resources": {r.token: {"inputProperties": {}, "properties": {}} for r in self.resources}}
        return provider_pb2.GetSchemaResponse(schema=json.dumps(schema))

    def CheckConfig(self, request, context):
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request, context):
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def Configure(self, request, context):
        self.config, _ = unmarshal(request.args)
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True,
                                              acceptResources=True, acceptOutputs=False)

    def Cancel(self, request, context):
        return empty_pb2.Empty()

    def Invoke(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{self.name} stand-in: function {request.tok} is not implemented")

    # -- resource lifecycle
    def Check(self, request, context):
        def run():
            res = self._res(request.urn, request.type)
            news, nsec = unmarshal(request.news)
            olds, _ = unmarshal(request.olds)
            try:
                inputs = res.check(request.urn, news, olds, request.randomSeed)
            except InputError as e:
                return provider_pb2.CheckResponse(
                    inputs=request.news, failures=[provider_pb2.CheckFailure(property=e.prop, reason=e.reason)])
            return provider_pb2.CheckResponse(inputs=marshal(inputs, (nsec | set(res.secret_inputs)) & set(inputs)))
        return self._guard(context, run)

    def Diff(self, request, context):
        def run():
            res = self._res(request.urn, request.type)
            olds, _ = unmarshal(request.olds)
            news, _ = unmarshal(request.news)
            old_inputs, _ = unmarshal(request.old_inputs) if request.HasField("old_inputs") else ({}, set())
            if not old_inputs:
                old_inputs = {k: v for k, v in olds.items() if k in res.inputs}
            ignore = set(request.ignoreChanges)
            diffs, replaces, detailed = [], [], {}
            for k in sorted(set(old_inputs) | set(news)):
                if k in ignore or k.startswith("__"):
                    continue
                if k not in res.inputs:
                    continue
                o, n = old_inputs.get(k), news.get(k)
                if o is None and n is None:
                    continue
                if equal(o, n):
                    continue
                diffs.append(k)
                rep = res.replaces(k, old_inputs, news)
                if o is None:
                    kind = provider_pb2.PropertyDiff.ADD_REPLACE if rep else provider_pb2.PropertyDiff.ADD
                elif n is None:
                    kind = provider_pb2.PropertyDiff.DELETE_REPLACE if rep else provider_pb2.PropertyDiff.DELETE
                else:
                    kind = provider_pb2.PropertyDiff.UPDATE_REPLACE if rep else provider_pb2.PropertyDiff.UPDATE
                if rep:
                    replaces.append(k)
                detailed[k] = provider_pb2.PropertyDiff(kind=kind, inputDiff=True)
            for k in res.force_replace(olds):
                diffs.append(k)
                replaces.append(k)
                detailed[k] = provider_pb2.PropertyDiff(kind=provider_pb2.PropertyDiff.UPDATE_REPLACE,
                                                        inputDiff=False)
            return provider_pb2.DiffResponse(
                changes=provider_pb2.DiffResponse.DIFF_SOME if diffs else provider_pb2.DiffResponse.DIFF_NONE,
                diffs=diffs, replaces=replaces, detailedDiff=detailed, hasDetailedDiff=True,
                deleteBeforeReplace=False)
        return self._guard(context, run)

    def _secrets_for(self, res: Resource, in_secrets: set, outs: dict) -> set:
        return (set(res.secret_outputs) | in_secrets) & set(outs)

    def Create(self, request, context):
        def run():
            res = self._res(request.urn, request.type)
            inputs, isec = unmarshal(request.properties)
            rid, outs = res.create(request.urn, inputs, request.preview)
            if request.preview and not rid:
                rid = ""
            return provider_pb2.CreateResponse(id=rid or "", properties=marshal(outs, self._secrets_for(res, isec, outs)))
        return self._guard(context, run)

    def Update(self, request, context):
        def run():
            res = self._res(request.urn, request.type)
            olds, _ = unmarshal(request.olds)
            news, nsec = unmarshal(request.news)
            outs = res.update(request.urn, request.id, olds, news, request.preview)
            return provider_pb2.UpdateResponse(properties=marshal(outs, self._secrets_for(res, nsec, outs)))
        return self._guard(context, run)

    def Delete(self, request, context):
        def run():
            res = self._res(request.urn, request.type)
            state, _ = unmarshal(request.properties)
            res.delete(request.urn, request.id, state)
            return empty_pb2.Empty()
        return self._guard(context, run)

    def Read(self, request, context):
        def run():
            res = self._res(request.urn, request.type)
            state, ssec = unmarshal(request.properties)
            inputs, isec = unmarshal(request.inputs)
            rid, outs, ins = res.read(request.urn, request.id, state, inputs)
            if rid is None:  # gone
                return provider_pb2.ReadResponse(id="")
            return provider_pb2.ReadResponse(
                id=rid, properties=marshal(outs, self._secrets_for(res, ssec, outs)),
                inputs=marshal(ins, (isec | set(res.secret_outputs)) & set(ins)))
        return self._guard(context, run)


def serve(provider_cls: type[Provider], args: list[str]) -> None:
    # the engine address is the last positional argument (flags such as -tracing X come first)
    engine = next((a for a in reversed(args) if not a.startswith("-")), "")
    prov = provider_cls(engine)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=int(os.environ.get("PULUMI_STANDIN_WORKERS", "32"))),
        options=[("grpc.max_receive_message_length", 400 * 1024 * 1024),
                 ("grpc.max_send_message_length", 400 * 1024 * 1024)],
    )
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(prov, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stop = threading.Event()
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        stop.set()
        server.stop(grace=2)

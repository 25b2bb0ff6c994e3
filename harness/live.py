"""The live harness: run the real Pulumi program against the real Docker engine,
without the Pulumi CLI or provider plugins (neither can be installed here).

Pulumi's own SDK drives the program through its mock monitor, so resource
ordering, dependencies, secrets and outputs behave as under `pulumi up`; only
`new_resource` is ours, and it performs the side effect each resource type
stands for (create the network, build the image, start the container, run the
command, call the dynamic provider's check+create) and returns real ids and
outputs. Everything created is written to a ledger so `destroy` removes it in
reverse order, also after a failed run.
"""

from __future__ import annotations

import base64
import io
import json
import os
import runpy
import secrets
import string
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
from pulumi.runtime import rpc

from . import tlsgen
from bgp4mesh.stack import NAMESPACE, PROJECT_DIR, raw_from_file

STATE_DIR_ENV = "BGP4MESH_LAB_STATE"
PROJECT = "bgp4mesh"


class LiveError(RuntimeError):
    """A side effect failed; the message says which resource and why."""


def state_dir(stack: str) -> Path:
    root = Path(os.environ.get(STATE_DIR_ENV, PROJECT_DIR / ".lab"))
    return root / stack


def docker(*args: str, check: bool = True, input: Optional[bytes] = None, timeout: float = 600) -> str:
    """Run the docker CLI; errors name the command and carry docker's message."""
    proc = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LiveError(f"docker {' '.join(args[:3])}...: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode(errors="replace").strip()


def unwrap(value: Any) -> Any:
    """Mock-monitor inputs carry secrets wrapped; side effects need the plain value."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


@dataclass
class Ledger:
    """What the harness created, in creation order, persisted after every step."""

    path: Path
    entries: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    dynamic: dict[str, tuple[Any, dict]] = field(default_factory=dict)  # in-process only: provider + outs

    @classmethod
    def load(cls, path: Path) -> "Ledger":
        entries = json.loads(path.read_text()) if path.exists() else []
        return cls(path, entries)

    def add(self, kind: str, ident: str, **info: Any) -> None:
        with self.lock:
            self.entries.append({"kind": kind, "id": ident, **info})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.entries, indent=1))

    def clear(self) -> None:
        self.entries = []
        if self.path.exists():
            self.path.unlink()


LOCAL_DOCKER = "unix:///var/run/docker.sock"

# What each handler really implements; any other input with a value is refused, so a
# program that relies on something the harness cannot do fails here instead of
# passing without it.
SUPPORTED_INPUTS: dict[str, set[str]] = {
    "pulumi:providers:docker": {"host"},
    "docker:index/network:Network": {"name", "driver", "internal", "ipamConfigs", "options", "labels"},
    "docker:index/volume:Volume": {"name", "labels"},
    "docker:index/remoteImage:RemoteImage": {"name", "keepLocally", "build", "triggers"},
    "docker:index/container:Container": {
        "name", "hostname", "image", "networksAdvanced", "networkMode", "capabilities", "sysctls", "devices",
        "volumes", "envs", "restart", "privileged", "memory", "labels", "entrypoints", "command", "uploads",
    },
    "command:local:Command": {"create", "update", "delete", "environment", "interpreter", "dir", "stdin", "triggers"},
    "random:index/randomPassword:RandomPassword": {"length", "lower", "upper", "numeric", "special", "overrideSpecial"},
    "random:index/randomString:RandomString": {"length", "lower", "upper", "numeric", "special", "overrideSpecial"},
    "tls:index/privateKey:PrivateKey": {"algorithm", "ecdsaCurve", "rsaBits"},
    "tls:index/selfSignedCert:SelfSignedCert": {
        "privateKeyPem", "subject", "isCaCertificate", "validityPeriodHours", "allowedUses", "dnsNames", "ipAddresses",
    },
    "tls:index/certRequest:CertRequest": {"privateKeyPem", "subject", "dnsNames", "ipAddresses"},
    "tls:index/locallySignedCert:LocallySignedCert": {
        "certRequestPem", "caPrivateKeyPem", "caCertPem", "validityPeriodHours", "allowedUses", "isCaCertificate",
    },
}


def refuse_unsupported(typ: str, name: str, inputs: dict) -> None:
    supported = SUPPORTED_INPUTS.get(typ, set()) | ({"version"} if typ.startswith("pulumi:providers:") else set())
    extra = sorted(k for k, v in inputs.items() if k not in supported and v not in (None, "", [], {}))
    if extra:
        raise LiveError(f"live harness: {typ} {name}: cannot do input(s) {', '.join(extra)}")
    host = inputs.get("host")
    if typ == "pulumi:providers:docker" and host not in (None, LOCAL_DOCKER):
        raise LiveError(f"live harness: docker provider {name}: only the local engine ({LOCAL_DOCKER}), not {host}")


class LiveMocks(pulumi.runtime.Mocks):
    """new_resource performs the real side effect for each resource type."""

    def __init__(self, stack: str, ledger: Ledger, log: Callable[[str], None] = lambda m: None):
        self.stack = stack
        self.ledger = ledger
        self.log = log
        self._closed = False
        self._inflight = 0
        self._idle = threading.Condition()
        self.handlers: dict[str, Callable[[pulumi.runtime.MockResourceArgs, dict], tuple[str, dict]]] = {
            "pulumi:providers:docker": self._provider,
            "pulumi:providers:command": self._provider,
            "pulumi:providers:random": self._provider,
            "pulumi:providers:tls": self._provider,
            "docker:index/network:Network": self._network,
            "docker:index/volume:Volume": self._volume,
            "docker:index/remoteImage:RemoteImage": self._remote_image,
            "docker:index/container:Container": self._container,
            "command:local:Command": self._command,
            "random:index/randomPassword:RandomPassword": self._random,
            "random:index/randomString:RandomString": self._random,
            "tls:index/privateKey:PrivateKey": self._tls,
            "tls:index/selfSignedCert:SelfSignedCert": self._tls,
            "tls:index/certRequest:CertRequest": self._tls,
            "tls:index/locallySignedCert:LocallySignedCert": self._tls,
        }

    def close(self, wait: float = 900) -> None:
        """Take no new work and wait for side effects under way: a teardown that ran
        while a creation was still in flight would leave that object behind."""
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._inflight == 0, timeout=wait)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        with self._idle:
            if self._closed:
                raise LiveError(f"{args.name}: not created, the deployment is being torn down")
            self._inflight += 1
        try:
            return self._new_resource(args)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        inputs = unwrap(args.inputs)
        if not args.custom:  # a ComponentResource: a grouping, nothing to create
            return args.name, inputs
        if args.typ.startswith("pulumi-python:dynamic"):
            return self._dynamic(args, inputs)
        handler = self.handlers.get(args.typ)
        if handler is None:
            raise LiveError(f"live harness: no real implementation for {args.typ} ({args.name})")
        refuse_unsupported(args.typ, args.name, {k: v for k, v in inputs.items() if k != "__defaults"})
        started = time.monotonic()
        ident, outs = handler(args, inputs)
        self.log(f"created {args.typ.split(':')[-1]} {args.name} ({time.monotonic() - started:.1f}s)")
        return ident, outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, Optional[list]]:
        raise LiveError(f"live harness: no real implementation for invoke {args.token}")

    # --- providers and simple values -------------------------------------------------

    def _provider(self, args, inputs):
        return f"{args.name}-provider", inputs

    def _random(self, args, inputs):
        alphabet = ""
        if inputs.get("lower", True):
            alphabet += string.ascii_lowercase
        if inputs.get("upper", True):
            alphabet += string.ascii_uppercase
        if inputs.get("numeric", True):
            alphabet += string.digits
        if inputs.get("special", True):
            alphabet += inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
        result = "".join(secrets.choice(alphabet) for _ in range(int(inputs["length"])))
        return args.name, {**inputs, "result": result}

    def _tls(self, args, inputs):
        outs = tlsgen.create(args.typ.split("/")[-1].split(":")[0], inputs)
        return args.name, {**inputs, **outs}

    # --- docker -----------------------------------------------------------------------

    def _network(self, args, inputs):
        name = inputs.get("name") or args.name
        cmd = ["network", "create", "--driver", inputs.get("driver") or "bridge"]
        if inputs.get("internal"):
            cmd.append("--internal")
        for ipam in inputs.get("ipamConfigs") or []:
            if ipam.get("subnet"):
                cmd += ["--subnet", ipam["subnet"]]
            if ipam.get("gateway"):
                cmd += ["--gateway", ipam["gateway"]]
        for key, value in (inputs.get("options") or {}).items():
            cmd += ["--opt", f"{key}={value}"]
        cmd += _labels(inputs)
        ident = docker(*cmd, name)
        self.ledger.add("network", ident, name=name)
        return ident, {**inputs, "name": name}

    def _volume(self, args, inputs):
        name = inputs.get("name") or args.name
        docker("volume", "create", *_labels(inputs), name)
        self.ledger.add("volume", name, name=name)
        return name, {**inputs, "name": name, "mountpoint": ""}

    def _remote_image(self, args, inputs):
        name, build = inputs["name"], inputs.get("build")
        if build:
            unsupported = sorted(k for k, v in build.items() if k not in ("context", "buildArgs", "dockerfile") and v)
            if unsupported:
                raise LiveError(f"live harness: RemoteImage {args.name}: cannot do build input(s) {', '.join(unsupported)}")
            cmd = ["build", "-q", "-t", name, *(["-f", build["dockerfile"]] if build.get("dockerfile") else [])]
            for key, value in (build.get("buildArgs") or {}).items():
                cmd += ["--build-arg", f"{key}={value}"]
            docker(*cmd, build["context"], timeout=1800)
        elif not docker("images", "-q", name):
            raise LiveError(f"image {name} is not present and this machine has no registry; build it locally")
        image_id = docker("image", "inspect", "-f", "{{.Id}}", name)
        # Images are a build cache, not lab state: teardown keeps them.
        return image_id, {**inputs, "imageId": image_id, "repoDigest": image_id}

    def _container(self, args, inputs):
        name = inputs.get("name") or args.name
        nets = inputs.get("networksAdvanced") or []
        cmd = ["create", "--name", name]
        if inputs.get("hostname"):
            cmd += ["--hostname", inputs["hostname"]]
        if inputs.get("networkMode") and not nets:
            cmd += ["--network", inputs["networkMode"]]
        if nets:
            cmd += _network_flags(nets[0])
        caps = inputs.get("capabilities") or {}
        cmd += [f"--cap-add={c}" for c in caps.get("adds") or []]
        cmd += [f"--cap-drop={c}" for c in caps.get("drops") or []]
        cmd += [f"--sysctl={k}={v}" for k, v in (inputs.get("sysctls") or {}).items()]
        for dev in inputs.get("devices") or []:
            cmd += ["--device", f"{dev['hostPath']}:{dev.get('containerPath') or dev['hostPath']}:{dev.get('permissions') or 'rwm'}"]
        for vol in inputs.get("volumes") or []:
            source = vol.get("volumeName") or vol.get("hostPath")
            cmd += ["-v", f"{source}:{vol['containerPath']}{':ro' if vol.get('readOnly') else ''}"]
        cmd += [f"--env={e}" for e in inputs.get("envs") or []]
        if inputs.get("restart"):
            cmd += ["--restart", inputs["restart"]]
        if inputs.get("privileged"):
            cmd.append("--privileged")
        if inputs.get("memory"):
            cmd += ["--memory", f"{inputs['memory']}m"]
        cmd += _labels(inputs)
        entry = inputs.get("entrypoints") or []
        if entry:
            cmd += ["--entrypoint", entry[0]]
        cmd += [inputs["image"], *entry[1:], *(inputs.get("command") or [])]
        ident = docker(*cmd)
        self.ledger.add("container", ident, name=name)
        for extra in nets[1:]:
            docker("network", "connect", *_network_flags(extra, connect=True), name)
        if inputs.get("uploads"):
            docker("cp", "-", f"{name}:/", input=_upload_tar(inputs["uploads"]))
        docker("start", name)
        info = json.loads(docker("inspect", name))[0]
        return ident, {**inputs, "name": name, "networkDatas": _network_datas(info)}

    # --- commands -----------------------------------------------------------------------

    def _command(self, args, inputs):
        stdout = run_command(inputs.get("create"), inputs, f"{args.name} create")
        if inputs.get("delete"):
            self.ledger.add("command", args.name, delete=inputs["delete"], dir=inputs.get("dir"))
        return args.name, {**inputs, "stdout": stdout, "stderr": ""}

    # --- dynamic providers -----------------------------------------------------------------

    def _dynamic(self, args, inputs):
        from pulumi.dynamic.dynamic import ConfigureRequest
        import dill

        serialized = inputs.pop("__provider")
        provider = dill.loads(base64.b64decode(serialized))
        if hasattr(provider, "configure"):
            provider.configure(ConfigureRequest(pulumi.Config()))
        checked = provider.check({}, inputs)
        if checked.failures:
            reasons = "; ".join(f"{f.property}: {f.reason}" for f in checked.failures)
            raise LiveError(f"{args.name}: check failed: {reasons}")
        props = checked.inputs if checked.inputs is not None else inputs
        started = time.monotonic()
        result = provider.create(props)
        outs = {**props, **(result.outs or {})}
        self.ledger.dynamic[result.id] = (provider, outs)
        self.ledger.add("dynamic", result.id, name=args.name, type=args.typ)
        self.log(f"created dynamic {args.name} ({time.monotonic() - started:.1f}s)")
        return result.id, {**outs, "__provider": serialized}


def run_command(script: Optional[str], inputs: dict, what: str) -> str:
    if not script:
        return ""
    env = {**os.environ, **{k: str(v) for k, v in (inputs.get("environment") or {}).items()}}
    interpreter = inputs.get("interpreter") or ["/bin/sh", "-c"]
    proc = subprocess.run(
        [*interpreter, script], cwd=inputs.get("dir") or None, env=env, input=inputs.get("stdin") or "", capture_output=True, text=True
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LiveError(f"command {what} exited {proc.returncode}: " + " | ".join(tail))
    return proc.stdout.strip()


def _labels(inputs: dict) -> list[str]:
    return [f"--label={item['label']}={item['value']}" for item in inputs.get("labels") or []]


def _network_flags(net: dict, connect: bool = False) -> list[str]:
    flags = [] if connect else ["--network", net["name"]]
    if net.get("ipv4Address"):
        flags += ["--ip", net["ipv4Address"]]
    for alias in net.get("aliases") or []:
        flags += ["--alias" if connect else "--network-alias", alias]
    return flags + ([net["name"]] if connect else [])


def _network_datas(info: dict) -> list[dict]:
    nets = info.get("NetworkSettings", {}).get("Networks", {}) or {}
    return [
        {
            "networkName": name,
            "ipAddress": data.get("IPAddress", ""),
            "ipPrefixLength": data.get("IPPrefixLen", 0),
            "gateway": data.get("Gateway", ""),
            "macAddress": data.get("MacAddress", ""),
        }
        for name, data in nets.items()
    ]


def _upload_tar(uploads: list[dict]) -> bytes:
    """One tar stream for all uploads, so missing parent directories are created."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for up in uploads:
            if up.get("contentBase64"):
                data = base64.b64decode(up["contentBase64"])
            else:
                data = (up.get("content") or "").encode()
            info = tarfile.TarInfo(up["file"].lstrip("/"))
            info.size = len(data)
            info.mode = 0o755 if up.get("executable") else 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Deployment:
    """A running stack: its outputs (secrets flagged) and the ledger to tear it down."""

    stack: str
    outputs: dict[str, Any]
    secret_outputs: set[str]
    ledger: Ledger
    seconds: float

    def masked_outputs(self) -> dict[str, Any]:
        return {k: ("[secret]" if k in self.secret_outputs else v) for k, v in self.outputs.items()}


def run_program(
    stack: str,
    mocks: pulumi.runtime.Mocks,
    raw: dict[str, Any],
    project_dir: Path = PROJECT_DIR,
    secret_keys: set[str] = frozenset(),
    observe: Optional[Callable[[pulumi.ResourceTransformationArgs], None]] = None,
) -> tuple[dict, set]:
    """Run __main__.py under `mocks` with `raw` as the stack's bgp4mesh:* config (the
    `secret_keys` among them held as secret, as the engine does for `--secret`); return
    the stack outputs and which of them are secret. `observe` sees every resource's
    type, name and options as declared. Shared by the unit tier (recording mocks) and
    the live tier (LiveMocks)."""
    from pulumi.runtime.settings import ROOT
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_all_config(
        {f"{NAMESPACE}:{k}": json.dumps(v) for k, v in raw.items()}, [f"{NAMESPACE}:{k}" for k in secret_keys]
    )
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))

    def program() -> None:
        if observe is not None:
            pulumi.runtime.register_stack_transformation(lambda args: observe(args))
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    _sync_await(run_pulumi_func(program))
    return _sync_await(_resolve_outputs())


def deploy(stack: str, project_dir: Path = PROJECT_DIR, log: Callable[[str], None] = lambda m: None) -> Deployment:
    """Run the stack's program for real. On failure everything created is removed
    and the error re-raised, so a failed run leaves nothing behind."""
    ledger_path = state_dir(stack) / "ledger.json"
    if Ledger.load(ledger_path).entries:
        raise LiveError(f"stack '{stack}' is already up (ledger {ledger_path}); run destroy/`./scripts/lab down` first")
    ledger = Ledger(ledger_path)
    raw, secret_keys = raw_from_file(stack, project_dir)
    started = time.monotonic()
    mocks = LiveMocks(stack, ledger, log)
    try:
        outputs, secret = run_program(stack, mocks, raw, project_dir, secret_keys)
    except BaseException:
        mocks.close()
        destroy(stack, ledger, log)
        raise
    deployment = Deployment(stack, outputs, secret, ledger, time.monotonic() - started)
    (state_dir(stack) / "outputs.json").write_text(json.dumps(deployment.masked_outputs(), indent=2, default=str))
    return deployment


async def _resolve_outputs() -> tuple[dict[str, Any], set[str]]:
    from pulumi.runtime.settings import get_root_resource

    root = get_root_resource()
    values, secret = {}, set()
    for key, value in (getattr(root, "outputs", {}) or {}).items():
        out = pulumi.Output.from_input(value)
        values[key] = await out.future()
        if await out.is_secret():
            secret.add(key)
    return values, secret


def destroy(stack: str, ledger: Optional[Ledger] = None, log: Callable[[str], None] = lambda m: None) -> list[str]:
    """Remove everything the ledger lists, newest first; tolerate what is already gone."""
    ledger = ledger or Ledger.load(state_dir(stack) / "ledger.json")
    problems = []
    for entry in reversed(ledger.entries):
        try:
            _remove(entry, ledger)
        except Exception as exc:  # keep going: a half-removed lab is worse
            problems.append(f"{entry['kind']} {entry.get('name', entry['id'])}: {exc}")
    problems += _sweep_labelled(stack)
    ledger.clear()
    outputs = state_dir(stack) / "outputs.json"
    if outputs.exists():
        outputs.unlink()
    for p in problems:
        log(f"teardown: {p}")
    return problems


def _remove(entry: dict, ledger: Ledger) -> None:
    kind = entry["kind"]
    if kind == "container":
        docker("rm", "-f", "-v", entry["name"], check=False)
    elif kind == "network":
        docker("network", "rm", entry["name"], check=False)
    elif kind == "volume":
        docker("volume", "rm", "-f", entry["name"], check=False)
    elif kind == "command":
        run_command(entry["delete"], {"dir": entry.get("dir")}, f"{entry['id']} delete")
    elif kind == "dynamic" and entry["id"] in ledger.dynamic:
        provider, outs = ledger.dynamic[entry["id"]]
        provider.delete(entry["id"], outs)
    # A dynamic resource from an earlier process lived inside the Netmaker server,
    # whose container and volume are removed above.


def _sweep_labelled(stack: str) -> list[str]:
    """Belt and braces: anything labelled with this stack that the ledger missed."""
    label = f"label=bgp4mesh.stack={stack}"
    left = []
    for cid in docker("ps", "-aq", "--filter", label, check=False).split():
        docker("rm", "-f", "-v", cid, check=False)
        left.append(f"container {cid} was not in the ledger")
    for nid in docker("network", "ls", "-q", "--filter", label, check=False).split():
        docker("network", "rm", nid, check=False)
        left.append(f"network {nid} was not in the ledger")
    for vol in docker("volume", "ls", "-q", "--filter", label, check=False).split():
        docker("volume", "rm", "-f", vol, check=False)
        left.append(f"volume {vol} was not in the ledger")
    left += _sweep_bridge_rules()
    return left


def _sweep_bridge_rules() -> list[str]:
    """Intra-bridge accept rules (lab_network) whose bridge is gone, e.g. after a killed run."""
    proc = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True)
    removed = []
    for rule in proc.stdout.splitlines():
        parts = rule.split()
        if len(parts) == 8 and parts[2] == "-i" and parts[4] == "-o" and parts[3] == parts[5] and parts[3].startswith("br-"):
            if not Path(f"/sys/class/net/{parts[3]}").exists():
                subprocess.run(["iptables", "-D", *parts[1:]], capture_output=True)
                removed.append(f"stale rule for {parts[3]} removed")
    return removed

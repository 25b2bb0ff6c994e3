"""Property-name trees of pulumi_docker's Python SDK, read from its source (no import needed).

tree(module, class) -> {wire name: subtree or None}, following nested Args/output classes named in
the getters' type annotations. Used to check that the bridged docker provider speaks the SDK's
property names, and runnable as a script to print the differences:

    python toolchain/tests/sdk_names.py PATH/TO/pulumi-resource-docker
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

GETTER = re.compile(
    r"@pulumi\.getter(?:\(name=\"(?P<wire>\w+)\"\))?\s*\n\s*def (?P<snake>\w+)\(self\) -> (?P<ann>[^\n]+):")
CLASS = re.compile(r"^class (\w+)\b", re.M)

RESOURCES = {
    "docker:index/container:Container": ("container", "Container", "ContainerArgs"),
    "docker:index/network:Network": ("network", "Network", "NetworkArgs"),
    "docker:index/volume:Volume": ("volume", "Volume", "VolumeArgs"),
    "docker:index/remoteImage:RemoteImage": ("remote_image", "RemoteImage", "RemoteImageArgs"),
    "pulumi:providers:docker": ("provider", "Provider", "ProviderArgs"),
}


def sdk_dir() -> Path:
    spec = importlib.util.find_spec("pulumi_docker")
    assert spec and spec.origin
    return Path(spec.origin).parent


def _classes(text: str) -> dict[str, str]:
    out = {}
    starts = [(m.group(1), m.start()) for m in CLASS.finditer(text)]
    for i, (name, pos) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(text)
        out[name] = text[pos:end]
    return out


def _tree(classes: dict[str, str], name: str, seen: frozenset = frozenset()) -> dict:
    body = classes.get(name, "")
    out = {}
    for m in GETTER.finditer(body):
        wire = m.group("wire") or m.group("snake")
        nested = re.findall(r"'(?:outputs\.)?(\w+)'", m.group("ann"))
        sub = None
        if nested and nested[0] in classes and nested[0] not in seen:
            sub = _tree(classes, nested[0], seen | {name})
            # "[]" marks an array of objects (vs. a single, flattened object)
            if "Sequence[" in m.group("ann").split(f"'{nested[0]}'")[0].split("'outputs.")[0]:
                sub["[]"] = None
        out[wire] = sub
    return out


def sdk_trees() -> dict[str, dict]:
    d = sdk_dir()
    inputs = _classes((d / "_inputs.py").read_text())
    outputs = _classes((d / "outputs.py").read_text())
    trees = {}
    for tok, (mod, res_cls, args_cls) in RESOURCES.items():
        text = (d / f"{mod}.py").read_text()
        local = _classes(text)
        t_in = _tree({**inputs, **local}, args_cls)
        t_out = _tree({**outputs, **local}, res_cls)
        if tok.startswith("pulumi:providers:"):
            t_out = {}  # a provider's outputs are only its terraform_config() method result
        trees[tok] = merge(t_in, t_out)
    return trees


def merge(a: dict | None, b: dict | None) -> dict | None:
    if a is None and b is None:
        return None
    out = dict(a or {})
    for k, v in (b or {}).items():
        out[k] = merge(out.get(k), v) if k in out else v
    return out


def bridge_trees(binary: str) -> dict[str, dict]:
    raw = json.loads(subprocess.run([binary, "-dump-names"], capture_output=True, text=True, check=True).stdout)

    def conv(fields: dict | None):
        if not fields:
            return None
        out = {}
        for k, v in fields.items():
            sub = conv(v.get("fields") if v else None)
            if sub is not None and v.get("list"):
                sub["[]"] = None
            out[k] = sub
        return out

    return {tok: conv(fields) for tok, fields in raw.items()}


def differences(sdk: dict | None, bridge: dict | None, path: str = "") -> list[str]:
    """Names the SDK uses that the provider does not know (and vice versa), recursively.
    A top-level `id` is every resource's own id in the SDK, never a property."""
    out = []
    sdk, bridge = dict(sdk or {}), dict(bridge or {})
    if not path:
        sdk.pop("id", None)
        bridge.pop("id", None)
    for k in sorted(set(sdk) - set(bridge)):
        out.append(f"sdk only:    {path}{k}")
    for k in sorted(set(bridge) - set(sdk)):
        out.append(f"bridge only: {path}{k}")
    for k in sorted(set(sdk) & set(bridge)):
        if sdk[k] is not None or bridge[k] is not None:
            out += differences(sdk[k], bridge[k], f"{path}{k}.")
    return out


if __name__ == "__main__":
    sdk = sdk_trees()
    bridge = bridge_trees(sys.argv[1])
    for tok in RESOURCES:
        diffs = differences(sdk[tok], bridge.get(tok))
        print(f"== {tok}: {len(diffs)} differences")
        for line in diffs:
            print("  " + line)

"""The bridged docker provider speaks pulumi_docker 5.2.0's tokens and property names."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import sdk_names

CACHE = Path(os.environ.get("BGP4MESH_CACHE", Path.home() / ".cache" / "bgp4mesh"))
BIN = Path(os.environ.get("BGP4MESH_PULUMI_BIN", CACHE / "pulumi" / "bin"))
PROVIDER = BIN / "pulumi-resource-docker"

pytestmark = pytest.mark.skipif(
    not PROVIDER.exists(),
    reason="pulumi-resource-docker not built (scripts/build-pulumi)")


def test_version():
    out = subprocess.run([str(PROVIDER), "-version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "5.2.0"


@pytest.mark.parametrize("token", sorted(sdk_names.RESOURCES))
def test_property_names_match_sdk(token):
    sdk = sdk_names.sdk_trees()[token]
    bridge = sdk_names.bridge_trees(str(PROVIDER))
    assert token in bridge, f"{token} not mapped"
    diffs = sdk_names.differences(sdk, bridge[token])
    assert not diffs, "\n".join(diffs)

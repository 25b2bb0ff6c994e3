"""The program declares 1000 mesh nodes in one process: Pulumi 3.272's dynamic-provider
serializer no longer stacks one pickler wrapper per resource (RecursionError near 950)."""

from __future__ import annotations

import copy
import pickle

from pulumi.dynamic import dynamic

from bgp4mesh.providers import NetmakerNetworkProvider
from bgp4mesh.stack import raw_from_file
from tests.program_mocks import run_stack


def test_serializer_leaves_the_pickler_as_it_found_it():
    before = pickle._Pickler.__dict__["_batch_setitems"], pickle._Pickler.__dict__["save_dict"]
    blobs = {dynamic.serialize_provider(NetmakerNetworkProvider()) for _ in range(1500)}
    assert (pickle._Pickler.__dict__["_batch_setitems"], pickle._Pickler.__dict__["save_dict"]) == before
    assert len(blobs) == 1, "serialization must stay deterministic"
    deep = {"k": [{"a": {"b": i}} for i in range(50)]}
    assert pickle.loads(pickle._dumps(deep)) == deep


def test_program_with_1000_mesh_nodes():
    raw = copy.deepcopy(raw_from_file("dev")[0])
    raw["prefixes"] = ["44.30.120.0/21", *(p for p in raw["prefixes"] if ":" in p)]  # dev's IPv6 block stays
    raw["mesh"]["range"] = "44.30.120.0/21"
    raw["lab"]["underlay"] = "172.31.0.0/21"
    raw["mesh"]["nodes"] = [{"name": f"node{i}"} for i in range(1000)]
    mocks, outputs, _ = run_stack("dev", raw)
    assert len(outputs["mesh_nodes"]) == 1000
    assert len(mocks.of_type(":MeshMember")) == 1001  # every node and the border router

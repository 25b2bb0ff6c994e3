"""Live tier, day two through the real Pulumi engine: what an operator sees after `up`,
after a policy edit, after adding and removing a mesh node, after a change made behind
Pulumi's back, and after `destroy`. The stack `daytwo` is the dev stack on other lab
subnets, so it can be edited freely and run beside `dev`."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import time

import pytest

from bgp4mesh.birdc import Target, import_limit, protocols
from bgp4mesh.naming import docker_name
from bgp4mesh.netmaker_api import NetmakerClient
from bgp4mesh.naming import bird_protocol
from bgp4mesh.stack import raw_from_file
from bgp4mesh.verify import build_checks, mesh_ip, run_checks
from bgp4mesh.docker_cli import docker
from harness.engine import Stack
from tests.live import eventually, leftovers, server_secrets
from tests import plans

STACK = "daytwo"
PROBE = "198.51.100.1"  # the mock ISP's Internet test address


def daytwo_config() -> dict:
    config = copy.deepcopy(Stack("dev").config)
    up = config["bgp4mesh:upstreams"][0]
    up.update(link="172.30.8.0/24", neighbor="172.30.8.1", local_address="172.30.8.100",
              link6="2001:db8:ac1e:8::/64", neighbor6="2001:db8:ac1e:8::1", local_address6="2001:db8:ac1e:8::100")
    config["bgp4mesh:border_routers"][0]["router_id"] = "172.30.8.100"
    config["bgp4mesh:lab"] = {"underlay": "172.31.8.0/24"}
    return config


def name(member: str) -> str:
    return docker_name(STACK, member)


def verify(stack: Stack, wait: float = 60) -> list[str]:
    cfg = stack.model()
    lines: list[str] = []
    assert run_checks(build_checks(plans.of(cfg), STACK), wait, lines.append) == 0, "\n".join(lines)
    return lines


def planned(stack: Stack) -> dict[str, set[str]]:
    """`pulumi preview --json`: resource name -> the operations planned for it (no 'same')."""
    steps = json.loads(stack.preview("--json").stdout).get("steps", [])
    ops: dict[str, set[str]] = {}
    for step in steps:
        if step["op"] != "same":
            ops.setdefault(step["urn"].rsplit("::", 1)[1], set()).add(step["op"])
    return ops


REPLACED = {"replace", "create-replacement", "delete-replaced"}
MONITORING_UPDATE = "monitoring-update"
"""The targets and rules written into the running Prometheus: they follow the members and
the sessions' limits, so an edit of those rewrites them (and leaves the container be)."""


def container_ids(*members: str) -> dict[str, str]:
    return {m: docker("inspect", "-f", "{{.Id}}", name(m)) for m in members}


def client(stack: Stack) -> NetmakerClient:
    key = server_secrets(stack.name)["masterkey"]
    out = stack.outputs()
    return NetmakerClient(out["netmaker_api"], key, out["netmaker_ca_certificate"])


@pytest.fixture(scope="module")
def day2():
    stack = Stack(STACK, daytwo_config())
    stack.destroy()
    assert not leftovers(STACK)
    stack.up()
    verify(stack)
    try:
        yield stack
    finally:
        stack.destroy()
        assert not leftovers(STACK), f"pulumi destroy left {leftovers(STACK)}"


def test_steady_state_changes_nothing(day2):
    day2.preview("--expect-no-changes")
    out = day2.up().stdout
    assert re.search(r"\d+ unchanged", out) and not re.search(r"\d+ (created|updated|replaced|deleted)", out), out


def test_state_holds_no_secret_in_clear(day2):
    # What the backend keeps on disk for this stack (checkpoint, backups, history), and the export.
    files = [f for f in day2.backend_dir().rglob("*") if f.is_file() and STACK in str(f)]
    assert any(f.name == f"{STACK}.json" for f in files), files
    state = day2.state() + "".join(f.read_text(errors="replace") for f in files)
    for secret in server_secrets(STACK).values():
        assert len(secret) >= 16 and secret not in state
    with client(day2) as api:
        values = [k["value"] for k in api.list_enrollment_keys()]
    assert values and not any(v in state for v in values)
    assert "eyJzZXJ2ZXIi" not in state, "an enrollment token (base64 of {\"server\"...) is in the state"
    assert state.count('"ciphertext"') >= 5


def test_policy_edit_replaces_only_the_border_router(day2):
    day2.config["bgp4mesh:upstreams"][0]["max_prefixes"] = 12
    ops = planned(day2)
    assert set(ops) == {"border-router", "border-join", "border-address-applied", "border-maintenance", MONITORING_UPDATE}, ops
    assert all(o <= REPLACED for o in ops.values()), ops
    node = mesh_ip(Target(name("node1")))
    # A ping train from the Internet test address through the border to a mesh node.
    train = subprocess.Popen(
        ["docker", "exec", name("isp"), "timeout", "45", "ping", "-i", "0.2", "-W", "1", "-I", PROBE, node],
        stdout=subprocess.PIPE, text=True,
    )
    started = time.monotonic()
    day2.up()
    border, isp = Target(name("border")), Target(name("isp"))
    eventually(lambda: protocols(isp)[bird_protocol("border")].info.startswith("Established"), wait=15, what="session back")
    back = time.monotonic() - started
    assert import_limit(border, bird_protocol("isp"))[0] == 12
    answered = sorted(int(s) for s in re.findall(r"icmp_seq=(\d+)", train.communicate()[0]))
    gaps = [b - a for a, b in zip(answered, answered[1:])]
    longest = (max(gaps) - 1) * 0.2 if gaps else 45
    print(f"policy edit: up + session back in {back:.1f}s, longest ping gap {longest:.1f}s")
    assert answered and longest < 10, f"pings stopped for {longest:.1f}s"
    verify(day2)


def test_adding_a_node_only_adds(day2):
    before = container_ids("border", "node1", "node2", "monitoring")
    day2.config["bgp4mesh:mesh"]["nodes"].append({"name": "node3"})
    ops = planned(day2)
    assert ops.pop(MONITORING_UPDATE) <= REPLACED
    assert ops and all(o == {"create"} for o in ops.values()), ops
    assert {"node3-netclient", "node3-member", "node3-join"} <= set(ops)
    day2.up()
    address = day2.outputs()["mesh_nodes"]["node3"]
    assert mesh_ip(Target(name("node3"))) == address
    assert Target(name("node3")).run("ping", "-c", "1", "-W", "2", PROBE).returncode == 0
    assert container_ids("border", "node1", "node2", "monitoring") == before
    verify(day2)


def test_removing_a_node_removes_it_everywhere(day2):
    before = container_ids("border", "node1", "node2", "monitoring")
    day2.config["bgp4mesh:mesh"]["nodes"] = [n for n in day2.config["bgp4mesh:mesh"]["nodes"] if n["name"] != "node3"]
    ops = planned(day2)
    assert ops.pop(MONITORING_UPDATE) <= REPLACED
    assert ops and all(o == {"delete"} for o in ops.values()), ops
    day2.up()
    assert docker("ps", "-aq", "--filter", f"name=^{name('node3')}$") == ""
    assert docker("volume", "ls", "-q", "--filter", f"name=^{name('node3-netclient')}$") == ""
    with client(day2) as api:
        assert not api.find_hosts_by_name("node3")
        assert len(api.list_nodes("bgp4mesh")) == 3
    assert container_ids("border", "node1", "node2", "monitoring") == before
    verify(day2)


def test_a_network_deleted_behind_pulumis_back_is_repaired_by_up(day2):
    with client(day2) as api:
        api.delete_network("bgp4mesh", force=True)
    ops = planned(day2)
    assert "replace" in ops.get("mesh-network", set()), ops
    day2.up()
    with client(day2) as api:
        assert len(api.list_nodes("bgp4mesh")) == 3
    verify(day2)


def test_destroy_leaves_nothing(day2):
    day2.destroy()
    assert not leftovers(STACK)
    assert day2.outputs() == {}
    assert raw_from_file("dev")  # the shipped stack file is untouched and still loads

"""Unit tier for the components (issue 17, item 6): each ComponentResource declared alone
under Pulumi's mock monitor with narrow, hand-built args (not through components/lab.py).

What a reviewer of the component boilerplate checks (the `bgp4mesh:index:<Type>` token,
every child parented to the component and named from its name, register_outputs), and
what the component really hands the engine: networks, addresses, uploads and their
secrecy, environment, restart policy, Docker names and labels, and what must be absent."""

from __future__ import annotations

import json
import shlex
from typing import Callable, Optional

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pytest

from bgp4mesh.agent_config import AGENT_DIR, AGENT_FILE, node_config, router_config
from bgp4mesh.config import Failover, Host, Images
from bgp4mesh.config import MeshNode as NodeSpec
from bgp4mesh.edge_rules import RULES_PATH
from bgp4mesh.looking_glass import CONFIG_PATH as LG_CONFIG
from bgp4mesh.naming import STACK_LABEL, docker_name
from bgp4mesh.netmaker_api import MEMBER_KEY_SECONDS
from bgp4mesh.render import VRP_PATH
from components.border_router import BorderRouter, BorderRouterArgs, RouterMesh, Session
from components.docker_parts import ROUTER_SYSCTLS
from components.hosts import HostContext
from components.mesh_join import MeshAccess, MeshJoin, MeshJoinArgs, member_key_tag
from components.mesh_node import MeshNode, MeshNodeArgs
from components.mock_isp import MockIsp, MockIspArgs
from components.monitoring import Monitoring, MonitoringArgs, MonitoringLink
from components.rtr_cache import RtrCache, RtrCacheArgs
from tests.component_mocks import (
    MOCK_TOKEN,
    ComponentMocks,
    Declaration,
    Registered,
    attached,
    declare,
    env_of,
    is_secret,
    label_values,
    upload_secret,
    uploaded,
)

STACK = "blue"
"""The components' `stack` argument. The Pulumi stack under the mocks is "unit", so a
Docker name or label made from pulumi.get_stack() instead would show."""
UNDERLAY = "bgp4mesh-blue-underlay"
MESH_NETWORK = "bgp4mesh-mesh"
CA_PEM = "-----CA PEM-----"
EDGE_RULES = "*filter\n-A INPUT -j DROP\nCOMMIT\n"
BIRD_FILES = {"bird.conf": "router id 192.0.2.1;", "peers.conf": "protocol bgp peer_isp_a {}"}

COMPONENT = "bgp4mesh:index:"
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
LOCAL_COMMAND = "command:local:Command"
KEY = ":EnrollmentKey"
MEMBER = ":MeshMember"


# --- shared assertions -----------------------------------------------------------------------


def join_family(declared: Declaration, name: str, pinned: bool = True) -> set[tuple[str, str]]:
    """What MeshJoin `name` adds to its owner: key, join, member, and a gate after a pin."""
    family = {(declared.one(KEY).typ, f"{name}-key"), (LOCAL_COMMAND, f"{name}-join"), (declared.one(MEMBER).typ, f"{name}-member")}
    return family | ({(LOCAL_COMMAND, f"{name}-address-applied")} if pinned else set())


def component(declared: Declaration, typ: str, name: str) -> Registered:
    """The one component of `typ`, checked to carry the bgp4mesh:index:<Type> token and `name`."""
    found = declared.one(COMPONENT + typ)
    assert (found.typ, found.name) == (COMPONENT + typ, name)
    return found


def assert_family(declared: Declaration, comp: Registered, children: set[tuple[str, str]], outside: set[str]) -> None:
    """`comp`'s direct children are exactly `children` ((type, name)), every descendant is
    named from its parent's name, and nothing but what the test itself declared (`outside`)
    is left outside the component: a child that lost its parent shows up there."""
    assert {(c.typ, c.name) for c in declared.children(comp)} == children
    for parent in [comp, *declared.descendants(comp)]:
        for child in declared.children(parent):
            assert child.name == parent.name or child.name.startswith(parent.name + "-"), (parent.name, child.name)
    family = {comp.urn} | {d.urn for d in declared.descendants(comp)}
    assert {r.name for r in declared.resources if r.urn not in family} == outside


def assert_docker_object(container: Registered, docker_object: str, hostname: Optional[str]) -> None:
    """What every bgp4mesh container has: its Docker name from the `stack` argument, the
    stack label, restart after reboots, and delete-before-replace (the name is fixed)."""
    assert container.inputs["name"] == docker_name(STACK, docker_object)
    assert label_values(container) == {STACK_LABEL: STACK}
    assert container.inputs.get("restart") == "unless-stopped"
    assert container.delete_before_replace is True
    if hostname is not None:
        assert container.inputs["hostname"] == hostname


def assert_bird_uploads(container: Registered, secret: bool) -> None:
    """The rendered BIRD files land in /etc/bird, readable by root alone and secret in the
    state exactly when they carry a secret."""
    files = uploaded(container)
    for path, content in BIRD_FILES.items():
        entry = files[f"/etc/bird/{path}"]
        assert entry["content"] == content
        assert upload_secret(container, entry["file"]) is secret
        assert entry.get("permissions") == ("0600" if secret else None)


# --- the HA agent's settings: one JSON file the container receives ------------------------


def agent_settings(container: Registered) -> dict:
    """The HA agent's config as uploaded into the container (/etc/bgp4mesh/agent.json); {}
    for no agent. Nothing of it travels as environment variables any more."""
    assert not [k for k in env_of(container) if k.startswith(("BORDER_HEALTH", "HEALTH_", "FAILOVER_", "EGRESS_"))]
    entry = uploaded(container).get(f"{AGENT_DIR}/{AGENT_FILE}")
    return json.loads(entry["content"]) if entry else {}


def router_agent(mesh: RouterMesh) -> dict:
    return json.loads(mesh.agent.to_json())


def node_agent(config) -> dict:
    return json.loads(config.to_json())


# --- hand-built arguments --------------------------------------------------------------------


def local_host() -> HostContext:
    return HostContext(Host(name="local"), Images())


def mesh_access(underlay: Optional[str] = UNDERLAY) -> MeshAccess:
    connection = {"api_url": "https://nm.lab", "master_key": pulumi.Output.secret("MASTER"), "ca_pem": CA_PEM}
    return MeshAccess(network=MESH_NETWORK, ca_certificate=CA_PEM, connection=connection, underlay_network=underlay, offline=True)


def gate(name: str = "earlier-member-ready") -> pulumi.Resource:
    """Stands for another member's readiness gate, which a join must wait for."""
    return command.local.Command(name, create="true")


# --- BorderRouter ------------------------------------------------------------------------------

LINKED_SESSIONS = [
    Session(upstream="isp-a", peer="10.10.1.1", asn=64501, local_address="10.10.1.2", link_network="bgp4mesh-blue-link-isp-a"),
    Session(upstream="isp-b", peer="10.10.2.1", asn=64502, local_address="10.10.2.2", link_network="bgp4mesh-blue-link-isp-b"),
]
HOST_SESSIONS = [Session(upstream="transit", peer="198.51.100.1", asn=64511, local_address="198.51.100.2")]
TWO_GATEWAYS = [("203.0.113.1", "10.20.0.1", "2001:db8:20::1"), ("203.0.113.2", "10.20.0.2", "2001:db8:20::2")]
MESH_RANGE6 = "2001:db8:113::/64"


def router_mesh(gateways=TWO_GATEWAYS, maintenance: bool = False, join_after=(), exporter: Optional[str] = None) -> RouterMesh:
    return RouterMesh(
        join=mesh_access(), pinned="203.0.113.1", endpoint="172.31.0.10", join_after=list(join_after),
        agent=router_config(["peer_isp_a", "peer_isp_b"], list(gateways), "203.0.113.1", "203.0.113.0/24",
                            Failover(interval_ms=300, timeout_ms=150, down_after=3, up_after=4), MESH_RANGE6),
        maintenance=maintenance,
        edge_rules=EDGE_RULES,
        exporter=exporter,
    )


def declare_router(mesh: Optional[Callable[[], RouterMesh]] = None, sessions=LINKED_SESSIONS, secret_files: bool = True, **extra) -> Declaration:
    """One BorderRouter "edge-1" (with `mesh()` when given: it may declare gates); `extra`: its optional args."""

    def program() -> None:
        args = BorderRouterArgs(
            stack=STACK, router_id="192.0.2.1", asn=64500, sessions=sessions, bird_files=BIRD_FILES,
            secret_files=secret_files, image="bgp4mesh/border:local", host=local_host(), **extra,
        )
        if mesh is not None:
            args["mesh"] = mesh()
        BorderRouter("edge-1", args)

    return declare(program)


@pytest.fixture(scope="module")
def meshed_router() -> Declaration:
    return declare_router(lambda: router_mesh(join_after=[gate()]))


@pytest.fixture(scope="module")
def plain_router() -> Declaration:
    return declare_router()


def test_border_router_children_are_its_own(meshed_router, plain_router):
    comp = component(meshed_router, "BorderRouter", "edge-1")
    assert_family(
        meshed_router, comp,
        {(CONTAINER, "edge-1-router"), (VOLUME, "edge-1-identity"), (LOCAL_COMMAND, "edge-1-maintenance"), *join_family(meshed_router, "edge-1")},
        outside={"docker-local", "earlier-member-ready"},
    )
    plain = component(plain_router, "BorderRouter", "edge-1")
    assert_family(plain_router, plain, {(CONTAINER, "edge-1-router")}, outside={"docker-local"})


def test_border_router_registers_its_outputs(meshed_router, plain_router):
    sessions = [{"upstream": "isp-a", "peer": "10.10.1.1", "asn": 64501}, {"upstream": "isp-b", "peer": "10.10.2.1", "asn": 64502}]
    expected = {"container_name": docker_name(STACK, "edge-1"), "router_id": "192.0.2.1", "asn": 64500, "upstream_sessions": sessions}
    meshed = meshed_router.outputs_of(component(meshed_router, "BorderRouter", "edge-1"))
    assert meshed == {**expected, "mesh_ip": "203.0.113.1"}  # the member's address, here the pinned one
    plain = plain_router.outputs_of(component(plain_router, "BorderRouter", "edge-1"))
    assert plain == expected  # mesh_ip is None without a mesh, and the engine receives no None


def test_border_router_container_sits_on_its_peering_links(plain_router):
    router = plain_router.one(CONTAINER)
    assert_docker_object(router, "edge-1", hostname="edge-1")
    assert attached(router) == [("bgp4mesh-blue-link-isp-a", "10.10.1.2"), ("bgp4mesh-blue-link-isp-b", "10.10.2.2")]
    assert router.inputs.get("networkMode") is None
    assert router.inputs["sysctls"] == ROUTER_SYSCTLS
    assert env_of(router) == {"ROUTES_FROM_BGP_ONLY": "1"}  # BGP's default route replaces Docker's
    assert set(router.inputs["capabilities"]["adds"]) == {"NET_ADMIN", "NET_RAW"}


@pytest.mark.parametrize("secret", [True, False])
def test_border_router_bird_files_are_secret_only_when_they_carry_one(secret):
    router = declare_router(secret_files=secret).one(CONTAINER)
    assert_bird_uploads(router, secret)
    assert set(uploaded(router)) == {f"/etc/bird/{p}" for p in BIRD_FILES}


def test_border_router_on_a_host_keeps_the_host_network_and_routes():
    """No lab link: BIRD runs in the host's namespace, where runc refuses per-container
    sysctls and Docker's routes are the host's own."""
    router = declare_router(sessions=HOST_SESSIONS).one(CONTAINER)
    assert router.inputs.get("networkMode") == "host"
    assert not router.inputs.get("networksAdvanced")
    assert not router.inputs.get("sysctls")
    assert "ROUTES_FROM_BGP_ONLY" not in env_of(router)


def test_border_router_without_mesh_is_bird_alone(plain_router):
    router = plain_router.one(CONTAINER)
    assert not [k for k in env_of(router) if k.startswith("NETCLIENT")]
    assert agent_settings(router) == {}
    assert not router.inputs.get("devices") and not router.inputs.get("volumes")
    assert "/etc/bgp4mesh/ca.pem" not in uploaded(router) and RULES_PATH not in uploaded(router)
    for absent in (COMPONENT + "MeshJoin", KEY, MEMBER, LOCAL_COMMAND, VOLUME):
        assert not plain_router.of_type(absent), absent


def test_border_router_with_mesh_is_a_netclient_host_too(meshed_router):
    router = meshed_router.one(CONTAINER)
    assert attached(router)[-1] == (UNDERLAY, "172.31.0.10")  # the links first, then the underlay at its endpoint
    assert len(attached(router)) == 3
    env = env_of(router)
    assert {k: env[k] for k in env if k.startswith("NETCLIENT")} == {
        "NETCLIENT": "1", "NETCLIENT_NAME": "edge-1", "NETCLIENT_PORT": "51821", "NETCLIENT_OFFLINE": "1", "NETCLIENT_ENDPOINT": "172.31.0.10",
    }
    assert router.inputs["devices"] == [{"hostPath": "/dev/net/tun", "containerPath": "/dev/net/tun", "permissions": "rwm"}]
    identity = meshed_router.one(VOLUME)
    assert identity.inputs["name"] == docker_name(STACK, "edge-1-netclient") and label_values(identity) == {STACK_LABEL: STACK}
    assert router.inputs["volumes"] == [{"volumeName": docker_name(STACK, "edge-1-netclient"), "containerPath": "/etc/netclient"}]
    files = uploaded(router)
    assert files["/etc/bgp4mesh/ca.pem"]["content"] == CA_PEM
    assert files[RULES_PATH]["content"] == EDGE_RULES
    assert_bird_uploads(router, secret=True)
    assert MOCK_TOKEN not in repr(router.inputs), "the enrollment token never reaches the container's configuration"


@pytest.mark.parametrize("gateways", [TWO_GATEWAYS, TWO_GATEWAYS[:1]], ids=["two-routers", "one-router"])
def test_border_router_health_agent_settings(gateways):
    mesh = router_mesh(gateways=gateways)
    router = declare_router(lambda: mesh).one(CONTAINER)
    settings = agent_settings(router)
    assert settings == router_agent(mesh)
    several = len(gateways) > 1  # one router: no iBGP to forward inbound to, in either family
    assert settings["router"]["gateways"] == ([{"mesh": m, "ibgp": i, "ibgp6": i6} for m, i, i6 in gateways] if several else [])
    assert (settings["router"]["mesh_range"], settings["router"]["mesh_range6"]) == (("203.0.113.0/24", MESH_RANGE6) if several else ("", ""))


@pytest.mark.parametrize("maintenance, switch", [(True, "on"), (False, "off")])
def test_border_router_maintenance_switch_follows_the_config(maintenance, switch):
    declared = declare_router(lambda: router_mesh(maintenance=maintenance))
    command_ = declared.named("edge-1-maintenance", LOCAL_COMMAND)
    assert shlex.split(command_.inputs["create"]) == ["docker", "exec", docker_name(STACK, "edge-1"), "border-health", "maintenance", switch]
    assert command_.inputs["triggers"] == ["edge-1-router-id"]  # again for every new container


LG_JSON = '{"port": 8095, "allow": ["198.51.100.0/24"]}'
EXPORTERS = {"BIRD_EXPORTER_LISTEN": "172.31.0.10:9324", "EXPORTER_LISTEN": "172.31.0.10:9586"}


def test_border_router_exporters_listen_where_prometheus_scrapes():
    """BIRD's exporter and the member exporter on the addresses the plan scrapes; the
    looking glass's config where the image looks for it."""
    declared = declare_router(lambda: router_mesh(exporter=EXPORTERS["EXPORTER_LISTEN"]),
                              bird_exporter=EXPORTERS["BIRD_EXPORTER_LISTEN"], looking_glass=LG_JSON)
    router = declared.one(CONTAINER)
    assert {k: v for k, v in env_of(router).items() if k in EXPORTERS} == EXPORTERS
    assert uploaded(router)[LG_CONFIG]["content"] == LG_JSON


def test_border_router_runs_no_exporter_or_looking_glass_unasked(meshed_router):
    router = meshed_router.one(CONTAINER)
    assert not set(env_of(router)) & set(EXPORTERS)
    assert LG_CONFIG not in uploaded(router)
    bird_only = declare_router(bird_exporter="10.10.1.2:9324", looking_glass=None).one(CONTAINER)
    assert env_of(bird_only) == {"ROUTES_FROM_BGP_ONLY": "1", "BIRD_EXPORTER_LISTEN": "10.10.1.2:9324"}
    assert LG_CONFIG not in uploaded(bird_only)


# --- MeshNode ----------------------------------------------------------------------------------

NODE_GATEWAYS = ["203.0.113.1", "203.0.113.2"]
EGRESS_RANGES = ["203.0.113.0/24", "198.18.0.0/24"]
NODE_FAILOVER = Failover(interval_ms=250, timeout_ms=100, down_after=2, up_after=5)


def declare_node(
    underlay: Optional[str] = UNDERLAY, endpoint: Optional[str] = "172.31.0.20", pinned: Optional[str] = "203.0.113.20", **extra
) -> Declaration:
    """One MeshNode "web-1" joining after another member's gate; `extra`: its optional args."""

    def program() -> None:
        args = MeshNodeArgs(
            stack=STACK, node=NodeSpec(name="web-1", ip=pinned), image="bgp4mesh/netclient:local", join=mesh_access(underlay),
            endpoint=endpoint, host=local_host(), join_after=[gate()], **extra,
        )
        MeshNode("web-1", args)

    return declare(program)


@pytest.fixture(scope="module")
def lab_node() -> Declaration:
    return declare_node(agent=node_config(NODE_GATEWAYS, EGRESS_RANGES, NODE_FAILOVER), edge_rules=EDGE_RULES)


def test_mesh_node_children_are_its_own(lab_node):
    comp = component(lab_node, "MeshNode", "web-1")
    assert_family(
        lab_node, comp,
        {(CONTAINER, "web-1-netclient"), (VOLUME, "web-1-identity"), *join_family(lab_node, "web-1")},
        outside={"docker-local", "earlier-member-ready"},
    )


@pytest.mark.parametrize("pinned, address", [("203.0.113.20", "203.0.113.20"), (None, ComponentMocks.ASSIGNED_ADDRESS)])
def test_mesh_node_registers_the_address_its_member_holds(pinned, address):
    declared = declare_node(pinned=pinned)
    assert declared.one(MEMBER).inputs.get("pinned_address") == pinned
    outputs = declared.outputs_of(component(declared, "MeshNode", "web-1"))
    assert outputs == {"container_name": docker_name(STACK, "web-1"), "mesh_ip": address, "node_id": "node-of-web-1"}


def test_mesh_node_container_joins_on_the_underlay(lab_node):
    node = lab_node.one(CONTAINER)
    assert_docker_object(node, "web-1", hostname="web-1")
    assert attached(node) == [(UNDERLAY, "172.31.0.20")]
    assert node.inputs.get("networkMode") is None
    assert node.inputs["sysctls"] == {"net.ipv4.conf.all.src_valid_mark": "1"}
    assert node.inputs["devices"] == [{"hostPath": "/dev/net/tun", "containerPath": "/dev/net/tun", "permissions": "rwm"}]
    assert node.inputs["volumes"] == [{"volumeName": docker_name(STACK, "web-1-netclient"), "containerPath": "/etc/netclient"}]
    files = uploaded(node)
    assert set(files) == {"/etc/bgp4mesh/ca.pem", RULES_PATH, f"{AGENT_DIR}/{AGENT_FILE}"}
    assert (files["/etc/bgp4mesh/ca.pem"]["content"], files[RULES_PATH]["content"]) == (CA_PEM, EDGE_RULES)
    env = env_of(node)
    assert {k: v for k, v in env.items() if k.startswith("NETCLIENT")} == {
        "NETCLIENT_NAME": "web-1", "NETCLIENT_PORT": "51821", "NETCLIENT_OFFLINE": "1", "NETCLIENT_ENDPOINT": "172.31.0.20",
    }
    assert MOCK_TOKEN not in repr(node.inputs), "the enrollment token never reaches the container's configuration"


def test_mesh_node_egress_failover_settings(lab_node):
    assert agent_settings(lab_node.one(CONTAINER)) == node_agent(node_config(NODE_GATEWAYS, EGRESS_RANGES, NODE_FAILOVER))


@pytest.mark.parametrize("extra", [{}, {"agent": None}], ids=["no-agent-arg", "agent-none"])
def test_mesh_node_runs_no_agent_without_its_config(extra):
    node = declare_node(**extra).one(CONTAINER)
    assert agent_settings(node) == {}
    assert RULES_PATH not in uploaded(node)  # no edge rules given, none uploaded


def test_mesh_node_on_a_real_host_shares_the_host_network():
    """No underlay (a real host) and no known endpoint (behind NAT: STUN finds it)."""
    node = declare_node(underlay=None, endpoint=None).one(CONTAINER)
    assert node.inputs.get("networkMode") == "host"
    assert not node.inputs.get("networksAdvanced") and not node.inputs.get("sysctls")
    assert "NETCLIENT_ENDPOINT" not in env_of(node)


@pytest.mark.parametrize("extra, env", [({"exporter": "172.31.0.20:9586"}, {"EXPORTER_LISTEN": "172.31.0.20:9586"}), ({}, {}), ({"exporter": None}, {})])
def test_mesh_node_exporter_listens_only_where_asked(extra, env):
    node = declare_node(**extra).one(CONTAINER)
    assert {k: v for k, v in env_of(node).items() if k in EXPORTERS} == env


def test_mesh_node_join_waits_for_its_join_after(lab_node):
    earlier = lab_node.named("earlier-member-ready").urn
    assert earlier in lab_node.one(KEY).dependencies
    assert earlier in lab_node.named("web-1-join", LOCAL_COMMAND).dependencies


# --- MeshJoin ----------------------------------------------------------------------------------


def declare_join(join_after: bool = True, pinned: Optional[str] = "203.0.113.30") -> Declaration:
    """A MeshJoin "app-1" making the container "app" a member, after a gate when `join_after`."""

    def program() -> None:
        container = docker.Container("app", name=docker_name(STACK, "app"), image="bgp4mesh/netclient:local")
        args = MeshJoinArgs(
            access=mesh_access(), host_name="app", pinned=pinned, container=container, host=local_host(),
            join_after=[gate()] if join_after else [],
        )
        owner = pulumi.ComponentResource(COMPONENT + "MeshNode", "app-1")
        joined = MeshJoin("app-1", args, owner)
        owner.register_outputs({"address": joined.address, "node_id": joined.node_id})

    return declare(program)


@pytest.fixture(scope="module")
def joined() -> Declaration:
    return declare_join()


def test_mesh_join_children_are_its_owners_and_keep_their_former_urns(joined):
    """No MeshJoin component (it carried nothing); each resource is aliased to where it
    lived under one, so a stack made before keeps them instead of replacing them."""
    owner = component(joined, "MeshNode", "app-1")
    assert_family(joined, owner, join_family(joined, "app-1"), outside={"app", "docker-local", "earlier-member-ready"})
    assert not joined.of_type(COMPONENT + "MeshJoin")
    former = owner.urn.rpartition("::")[0] + "$" + COMPONENT + "MeshJoin::app-1"
    for child in joined.children(owner):
        assert child.former_parents == [former], child.name


def test_mesh_join_registers_the_member_address_and_node(joined):
    outputs = joined.outputs_of(component(joined, "MeshNode", "app-1"))
    assert outputs == {"address": "203.0.113.30", "node_id": "node-of-app"}


def test_mesh_join_key_is_single_use_and_for_this_host_only(joined):
    key = joined.one(KEY).inputs
    assert key["uses"] == 1 and key["valid_for_seconds"] == MEMBER_KEY_SECONDS
    assert not key.get("unlimited") and key.get("expires_at") is None
    assert key["for_host"] == "app"
    assert key["networks"] == [MESH_NETWORK]
    assert key["tags"] == [member_key_tag(MESH_NETWORK, "app")]


@pytest.mark.parametrize("join_after", [True, False])
def test_mesh_join_key_is_made_only_when_the_member_is_about_to_join(join_after):
    """The key lives seconds before its one use: made after the container and the
    members it must join after, not before."""
    declared = declare_join(join_after=join_after)
    expected = {declared.named("app", CONTAINER).urn}
    if join_after:
        expected.add(declared.named("earlier-member-ready").urn)
    assert declared.one(KEY).dependencies == expected


def test_mesh_join_hands_the_token_over_on_stdin_only(joined):
    join = joined.named("app-1-join", LOCAL_COMMAND)
    assert shlex.split(join.inputs["create"]) == ["docker", "exec", "-i", docker_name(STACK, "app"), "netclient-join", MESH_NETWORK]
    assert join.inputs["stdin"] == MOCK_TOKEN and is_secret(join.raw_inputs["stdin"])
    assert MOCK_TOKEN not in repr({k: v for k, v in join.inputs.items() if k != "stdin"})
    assert join.inputs["triggers"] == ["app-id"]  # a new container joins again
    assert {joined.named("earlier-member-ready").urn, joined.one(KEY).urn} <= join.dependencies


def test_mesh_join_member_follows_the_join_and_the_gate_checks_its_address(joined):
    member = joined.one(MEMBER)
    assert member.inputs["host_name"] == "app" and member.inputs["network"] == MESH_NETWORK
    assert member.inputs["pinned_address"] == "203.0.113.30"
    assert joined.named("app-1-join", LOCAL_COMMAND).urn in member.dependencies
    applied = joined.named("app-1-address-applied", LOCAL_COMMAND)
    assert shlex.split(applied.inputs["create"]) == ["docker", "exec", docker_name(STACK, "app"), "netclient-converge", "address:203.0.113.30"]
    assert applied.inputs["triggers"] == ["app-id"]


def test_mesh_join_without_a_pin_is_its_own_gate():
    """No pin to wait for: the join waits until the container holds the address Netmaker
    gave, and no separate gate command is made (one resource fewer per such member)."""
    free = declare_join(pinned=None)
    join = free.named("app-1-join", LOCAL_COMMAND)
    assert shlex.split(join.inputs["create"])[-2:] == [MESH_NETWORK, f"addressed:{MESH_NETWORK}"]
    assert [r.name for r in free.of_type(LOCAL_COMMAND) if r.name.startswith("app-1")] == ["app-1-join"]
    assert free.one(MEMBER).inputs.get("pinned_address") is None
    assert join.urn in free.one(MEMBER).dependencies


# --- MockIsp -----------------------------------------------------------------------------------

EXCHANGE = "bgp4mesh-blue-exchange"


def declare_isp(name: str = "isp-a", link: str = "bgp4mesh-blue-link-isp-a", secret_files: bool = True, **extra) -> Declaration:
    """A MockIsp at 10.10.1.1 on `link`; `extra` may add its exchange."""

    def program() -> None:
        args = MockIspArgs(
            stack=STACK, asn=64501, address="10.10.1.1", router_id="10.10.1.1", loopbacks=["192.0.2.1/32", "198.51.100.1/32"],
            bird_files=BIRD_FILES, secret_files=secret_files, image="bgp4mesh/bird:local", link_network=link, **extra,
        )
        MockIsp(name, args)

    return declare(program)


@pytest.fixture(scope="module")
def isp() -> Declaration:
    return declare_isp(exchange=(EXCHANGE, "172.30.0.11"))


def test_mock_isp_children_and_outputs(isp):
    comp = component(isp, "MockIsp", "isp-a")
    assert_family(isp, comp, {(CONTAINER, "isp-a-bird")}, outside=set())
    expected = {"container_name": docker_name(STACK, "isp-a"), "peering_address": "10.10.1.1", "router_id": "10.10.1.1", "asn": 64501}
    assert isp.outputs_of(comp) == expected


def test_mock_isp_container_on_its_link_and_the_exchange(isp):
    bird = isp.one(CONTAINER)
    assert_docker_object(bird, "isp-a", hostname="isp-a")
    assert attached(bird) == [("bgp4mesh-blue-link-isp-a", "10.10.1.1"), (EXCHANGE, "172.30.0.11")]
    assert env_of(bird) == {"ISP_ADDRESSES": "192.0.2.1/32 198.51.100.1/32", "ROUTES_FROM_BGP_ONLY": "1"}
    assert bird.inputs["sysctls"] == ROUTER_SYSCTLS
    assert set(bird.inputs["capabilities"]["adds"]) == {"NET_ADMIN", "NET_RAW"}
    assert_bird_uploads(bird, secret=True)


def test_mock_isp_bird_exporter_listens_on_its_link():
    isp = declare_isp(bird_exporter="10.10.1.1:9324").one(CONTAINER)
    assert env_of(isp)["BIRD_EXPORTER_LISTEN"] == "10.10.1.1:9324"


def test_mock_isp_files_without_a_secret_are_plain():
    assert_bird_uploads(declare_isp(secret_files=False).one(CONTAINER), secret=False)


def test_the_probe_is_a_mock_isp_on_one_network_only():
    """The lab probe: a MockIsp whose only network is the exchange, passed as its link."""
    probe = declare_isp(name="probe", link=EXCHANGE).one(CONTAINER)
    assert_docker_object(probe, "probe", hostname="probe")
    assert attached(probe) == [(EXCHANGE, "10.10.1.1")]


# --- RtrCache ----------------------------------------------------------------------------------

VRPS = '{"roas": [{"prefix": "203.0.113.0/24", "maxLength": 24, "asn": "AS64500"}]}'


@pytest.fixture(scope="module")
def rtr() -> Declaration:
    def program() -> None:
        args = RtrCacheArgs(stack=STACK, address="172.31.0.50", port=3323, network=UNDERLAY, vrps=VRPS, refresh=7, image="bgp4mesh/rtr:local")
        RtrCache("rtr-1", args)

    return declare(program)


def test_rtr_cache_children_and_outputs(rtr):
    comp = component(rtr, "RtrCache", "rtr-1")
    assert_family(rtr, comp, {(CONTAINER, "rtr-1-stayrtr")}, outside=set())
    assert rtr.outputs_of(comp) == {"container_name": docker_name(STACK, "rtr-1"), "endpoint": "172.31.0.50:3323"}


def test_rtr_cache_serves_the_vrps_over_rtr_version_1(rtr):
    cache = rtr.one(CONTAINER)
    assert_docker_object(cache, "rtr-1", hostname="rtr-1")
    assert attached(cache) == [(UNDERLAY, "172.31.0.50")]
    flags = cache.inputs["command"]
    value = lambda flag: flags[flags.index(flag) + 1]  # noqa: E731
    assert (value("-bind"), value("-cache"), value("-refresh")) == ("172.31.0.50:3323", VRP_PATH, "7")
    assert value("-protocol") == "1"  # BIRD 2.0.12 speaks RTR version 1 (stayrtr offers 2 by default)
    assert "-checktime=false" in flags  # the hand-written file has no build time to check
    assert uploaded(cache) == {VRP_PATH: {"file": VRP_PATH, "content": VRPS}}
    assert upload_secret(cache, VRP_PATH) is False
    assert not cache.inputs.get("envs")


# --- Monitoring --------------------------------------------------------------------------------

MONITORING_FILES = {"prometheus.yml": "scrape_configs: []\n", "alertmanager.yml": "route: {receiver: api-only}\n"}
LIVE_FILES = {"/etc/prometheus/targets/member.json": '[{"targets": ["172.31.0.20:9586"], "labels": {"member": "node1"}}]\n',
              "/etc/prometheus/rules/alert-rules.yml": "groups: []\n"}
CONSOLE_PAGE = {"bgp4mesh.html": "{{ template \"head\" . }}"}
CONTROL_JSON = '{"netmaker": {"master_key": "MASTER"}}'
CONTROL_CONFIG = "/etc/bgp4mesh/control-exporter.json"
LINKS = [MonitoringLink(network="bgp4mesh-blue-link-isp-a", address="10.10.1.253"), MonitoringLink(network="bgp4mesh-blue-link-isp-b", address="10.10.2.253")]


LAB_MONITORING = dict(underlay=UNDERLAY, address="172.31.0.8", links=LINKS, web="0.0.0.0:9090", url="http://172.31.0.8:9090")


def declare_monitoring(**extra) -> Declaration:
    def program() -> None:
        args = MonitoringArgs(
            stack=STACK, image="bgp4mesh/monitoring:local", files=MONITORING_FILES, consoles=CONSOLE_PAGE, host=local_host(),
            **{**LAB_MONITORING, "live_files": LIVE_FILES, **extra},
        )
        Monitoring("monitoring", args)

    return declare(program)


@pytest.fixture(scope="module")
def monitored() -> Declaration:
    return declare_monitoring(secret_files={CONTROL_CONFIG: pulumi.Output.secret(CONTROL_JSON)})


def test_monitoring_children_and_outputs(monitored):
    comp = component(monitored, "Monitoring", "monitoring")
    assert_family(monitored, comp, {(CONTAINER, "monitoring-prometheus"), (LOCAL_COMMAND, "monitoring-update")}, outside={"docker-local"})
    assert monitored.outputs_of(comp) == {"container_name": docker_name(STACK, "monitoring"), "prometheus_url": "http://172.31.0.8:9090"}


def test_monitoring_scrapes_from_the_underlay_and_every_isp_link(monitored):
    prometheus = monitored.one(CONTAINER)
    assert_docker_object(prometheus, "monitoring", hostname="monitoring")
    assert attached(prometheus) == [(UNDERLAY, "172.31.0.8"), ("bgp4mesh-blue-link-isp-a", "10.10.1.253"), ("bgp4mesh-blue-link-isp-b", "10.10.2.253")]
    assert not prometheus.inputs.get("ports"), "nothing is published on the host"
    assert not prometheus.inputs.get("capabilities") and prometheus.inputs.get("envs") == ["PROMETHEUS_LISTEN=0.0.0.0:9090"]
    assert prometheus.inputs.get("networkMode") in (None, "")


def test_monitoring_on_a_real_host_shares_its_network_and_serves_on_loopback():
    declared = declare_monitoring(underlay=None, address="203.0.113.20", links=[], web="127.0.0.1:9090", url="http://127.0.0.1:9090")
    prometheus = declared.one(CONTAINER)
    assert prometheus.inputs.get("networkMode") == "host" and attached(prometheus) == []
    assert prometheus.inputs.get("envs") == ["PROMETHEUS_LISTEN=127.0.0.1:9090"] and not prometheus.inputs.get("ports")
    assert declared.outputs_of(component(declared, "Monitoring", "monitoring"))["prometheus_url"] == "http://127.0.0.1:9090"


def test_monitoring_runs_the_rendered_configs_and_console_pages(monitored):
    files = uploaded(monitored.one(CONTAINER))
    assert {path: f["content"] for path, f in files.items() if path.startswith("/etc/prometheus/")} == {
        **{f"/etc/prometheus/{k}": v for k, v in MONITORING_FILES.items()}, "/etc/prometheus/consoles/bgp4mesh.html": CONSOLE_PAGE["bgp4mesh.html"],
    }
    assert upload_secret(declare_monitoring().one(CONTAINER), "/etc/prometheus/prometheus.yml") is False  # nothing secret in them


def test_monitoring_control_exporter_config_is_secret(monitored):
    prometheus = monitored.one(CONTAINER)
    entry = uploaded(prometheus)[CONTROL_CONFIG]
    assert entry["content"] == CONTROL_JSON and entry["permissions"] == "0600"
    assert upload_secret(prometheus, CONTROL_CONFIG) is True
    assert CONTROL_CONFIG not in uploaded(declare_monitoring().one(CONTAINER))  # no config, no exporter
    plain = declare_monitoring(secret_files={CONTROL_CONFIG: CONTROL_JSON}).one(CONTAINER)  # secret even when handed in plain
    assert upload_secret(plain, CONTROL_CONFIG) is True and uploaded(plain)[CONTROL_CONFIG]["permissions"] == "0600"


def test_monitoring_targets_and_rules_go_into_the_running_container():
    """What changes with the members is written by monitoring-update (stdin, no upload), so
    a new member updates that command alone and the container with its samples stays; a
    new container gets them again."""
    import json

    declared = declare_monitoring()
    update = declared.named("monitoring-update", LOCAL_COMMAND)
    assert shlex.split(update.inputs["create"]) == ["docker", "exec", "-i", docker_name(STACK, "monitoring"), "monitoring-update"]
    assert json.loads(update.inputs["stdin"]) == LIVE_FILES
    assert not set(LIVE_FILES) & set(uploaded(declared.one(CONTAINER)))
    assert update.inputs["triggers"][0] == "monitoring-prometheus-id"
    other = declare_monitoring(live_files={**LIVE_FILES, "/etc/prometheus/targets/bird.json": "[]\n"}).named("monitoring-update", LOCAL_COMMAND)
    assert other.inputs["triggers"][1] != update.inputs["triggers"][1]
    assert declared.one(CONTAINER).inputs == declare_monitoring(live_files={}).one(CONTAINER).inputs


"""Unit tier: the real __main__ program under Pulumi's mock monitor (pulumi/examples
testing-unit-py style). It asserts what the program declares for each stack."""

import copy
import hashlib
import json
from collections import Counter

import pytest

from bgp4mesh.stack import raw_from_file
from components.docker_parts import IMAGES_DIR, context_digest
from pulumi.runtime.rpc import is_rpc_secret as rpc_secret
from tests.program_mocks import RecordingMocks, run_program, run_stack, unwrap, with_operator_key
from tests import plans

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"


@pytest.fixture(scope="module")
def dev():
    return run_stack("dev")


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """Run a stack of remote hosts under the mocks: a test operator key, and the SSH
    pre-flight answered as if every host were there (tests/test_ssh.py runs it for real)."""
    from bgp4mesh import ssh

    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\ntest\n-----END OPENSSH PRIVATE KEY-----\n")
    monkeypatch.setattr(ssh, "check", lambda host: None)
    return lambda stack, observe=None, raw=None: run_stack(stack, with_operator_key(raw or raw_from_file(stack)[0], str(key)), observe=observe)


def container(mocks, docker_name):
    return next(r for r in mocks.of_type(CONTAINER) if r.inputs["name"] == docker_name)


def upload_is_secret(resource, path: str) -> bool:
    """Whether the upload of `path` reaches the engine secret: the list, the entry or
    its content may carry the secret marker."""
    uploads = resource.raw_inputs["uploads"]
    if rpc_secret(uploads):
        return True
    entry = next(u for u in uploads if unwrap(u)["file"] == path)
    return rpc_secret(entry) or rpc_secret(entry["content"])


def test_every_lab_network_is_internal_and_gateway_avoids_configured_addresses(dev):
    mocks, _, _ = dev
    nets = mocks.of_type(NETWORK)
    assert nets, "dev declares lab networks"
    assert all(n.inputs["internal"] is True for n in nets)
    link = next(n for n in nets if n.inputs["name"] == "bgp4mesh-dev-link-isp")
    # Dual-stack (the upstream has link6): the IPv6 gateway is link6's highest address nobody uses.
    assert link.inputs["ipamConfigs"] == [
        {"subnet": "172.30.0.0/24", "gateway": "172.30.0.254"},
        {"subnet": "2001:db8:ac1e::/64", "gateway": "2001:db8:ac1e:0:ffff:ffff:ffff:fffe"},
    ]
    assert link.inputs["ipv6"] is True
    underlay = next(n for n in nets if n.inputs["name"] == "bgp4mesh-dev-underlay")
    assert underlay.inputs["ipamConfigs"] == [{"subnet": "172.31.0.0/24", "gateway": "172.31.0.254"}]


def test_mock_isp_container(dev):
    mocks, _, _ = dev
    isp = container(mocks, "bgp4mesh-dev-isp")
    assert isp.inputs["networksAdvanced"][0]["ipv4Address"] == "172.30.0.1"
    assert isp.inputs["networksAdvanced"][0]["ipv6Address"] == "2001:db8:ac1e::1"
    assert set(isp.inputs["capabilities"]["adds"]) >= {"NET_ADMIN", "NET_RAW"}
    assert isp.inputs["sysctls"]["net.ipv4.ip_forward"] == "1"
    assert isp.inputs["sysctls"]["net.ipv6.conf.all.forwarding"] == "1"
    addresses = "198.51.100.1/32 203.0.113.1/32 192.0.2.1/32 2001:db8:5100::1/128 2001:db8:2030::1/128 2001:db8:1920::1/128"
    assert f"ISP_ADDRESSES={addresses}" in isp.inputs["envs"]
    conf = next(u for u in isp.inputs["uploads"] if u["file"] == "/etc/bird/bird.conf")["content"]
    assert "65001" in conf and "172.30.0.100" in conf and "2001:db8:ac1e::100" in conf
    assert isp.inputs["image"] == "sha256:id-of-bgp4mesh/bird:local"


def test_border_router_container(dev):
    mocks, outputs, _ = dev
    border = container(mocks, "bgp4mesh-dev-border")
    link = [n for n in border.inputs["networksAdvanced"] if n["name"] == "bgp4mesh-dev-link-isp"]
    assert link and link[0]["ipv4Address"] == "172.30.0.100" and link[0]["ipv6Address"] == "2001:db8:ac1e::100"
    assert set(border.inputs["capabilities"]["adds"]) >= {"NET_ADMIN", "NET_RAW"}
    assert border.inputs["sysctls"]["net.ipv4.ip_forward"] == "1"
    conf = next(u for u in border.inputs["uploads"] if u["file"] == "/etc/bird/bird.conf")["content"]
    assert "44.30.127.0/24" in conf
    assert outputs["border_routers"]["border"]["upstream_sessions"] == [  # a session per family
        {"upstream": "isp", "peer": "172.30.0.1", "asn": 65001}, {"upstream": "isp", "peer": "2001:db8:ac1e::1", "asn": 65001}]


def test_images_are_built_locally_not_pulled(dev):
    mocks, _, _ = dev
    images = {i.inputs["name"]: i for i in mocks.of_type("docker:index/remoteImage:RemoteImage")}
    assert set(images) == {f"bgp4mesh/{k}:local" for k in ("bird", "border", "netclient", "mosquitto", "netmaker", "tls", "rtr", "monitoring")}
    for name, image in images.items():
        kind = name.split("/")[1].split(":")[0]
        assert image.inputs["build"]["context"] == str(IMAGES_DIR / kind)
        assert image.inputs["triggers"]["context"] == context_digest(IMAGES_DIR / kind)
        assert image.inputs["keepLocally"] is True
    # The border builds FROM the other two and is rebuilt when either changes.
    border = images["bgp4mesh/border:local"]
    assert border.inputs["build"]["buildArgs"] == {"NETCLIENT_IMAGE": "bgp4mesh/netclient:local", "BIRD_IMAGE": "bgp4mesh/bird:local"}
    assert {border.inputs["triggers"][k] for k in ("netclient", "bird")} == {
        "sha256:id-of-bgp4mesh/netclient:local", "sha256:id-of-bgp4mesh/bird:local"}
    # Containers run the image id: a rebuilt image replaces them.
    assert container(mocks, "bgp4mesh-dev-border").inputs["image"] == "sha256:id-of-bgp4mesh/border:local"


def test_a_changed_build_context_changes_the_trigger(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    before = context_digest(tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_bytes(b"v1")
    assert context_digest(tmp_path) != before
    after = context_digest(tmp_path)
    (tmp_path / "bin" / "tool").write_bytes(b"v2")
    assert context_digest(tmp_path) != after


def test_components_use_type_tokens_and_parent_children(dev):
    mocks, _, _ = dev
    # The mock monitor records custom resources; a child's URN carries its parent's type.
    from pulumi.runtime.settings import get_monitor

    urns = list(get_monitor().resources)
    assert any("bgp4mesh:index:BorderRouter$docker:index/container:Container::border-router" in u for u in urns)
    assert any("bgp4mesh:index:MockIsp$docker:index/container:Container::isp-bird" in u for u in urns)


def _networks(c, version: int = 4) -> dict[str, str]:
    """The container's address on each lab network, in the family (none there: left out)."""
    key = "ipv4Address" if version == 4 else "ipv6Address"
    return {n["name"].removeprefix("bgp4mesh-lab-"): n[key] for n in c.inputs["networksAdvanced"] if n.get(key)}


def test_lab_stack_is_highly_available():
    """Two border routers with one upstream each, iBGP over the underlay, two mock ISPs and
    the probe on the exchange, one egress per router (CE) and failover settings everywhere;
    dual stack: every one of those networks and sessions in IPv6 too, at the same slots."""
    mocks, outputs, _ = run_stack("lab")
    nets = {n.inputs["name"].removeprefix("bgp4mesh-lab-"): n.inputs for n in mocks.of_type(NETWORK)}
    for name, six in (("link-isp-a", "2001:db8:ac1e:10::/64"), ("link-isp-b", "2001:db8:ac1e:11::/64"),
                      ("exchange", "2001:db8:ac1e:12::/64"), ("underlay", "2001:db8:ac1f:10::/64")):
        assert nets[name]["ipv6"] is True and [c["subnet"] for c in nets[name]["ipamConfigs"]][1:] == [six], name
    a, b = container(mocks, "bgp4mesh-lab-border-a"), container(mocks, "bgp4mesh-lab-border-b")
    assert _networks(a) == {"link-isp-a": "172.30.16.100", "underlay": "172.31.16.10"}
    assert _networks(b) == {"link-isp-b": "172.30.17.100", "underlay": "172.31.16.11"}
    assert _networks(a, 6) == {"link-isp-a": "2001:db8:ac1e:10::100", "underlay": "2001:db8:ac1f:10::a"}
    assert _networks(b, 6) == {"link-isp-b": "2001:db8:ac1e:11::100", "underlay": "2001:db8:ac1f:10::b"}
    isp_a, isp_b = container(mocks, "bgp4mesh-lab-isp-a"), container(mocks, "bgp4mesh-lab-isp-b")
    assert _networks(isp_a) == {"link-isp-a": "172.30.16.1", "exchange": "172.30.18.1"}
    assert _networks(isp_b) == {"link-isp-b": "172.30.17.1", "exchange": "172.30.18.2"}
    assert _networks(isp_a, 6) == {"link-isp-a": "2001:db8:ac1e:10::1", "exchange": "2001:db8:ac1e:12::1"}
    assert _networks(isp_b, 6) == {"link-isp-b": "2001:db8:ac1e:11::1", "exchange": "2001:db8:ac1e:12::2"}
    assert "ISP_ADDRESSES=198.51.100.1/32 2001:db8:5100::1/128" in isp_a.inputs["envs"]
    assert "ISP_ADDRESSES=203.0.113.1/32 2001:db8:2030::1/128" in isp_b.inputs["envs"]
    probe = container(mocks, "bgp4mesh-lab-probe")
    assert _networks(probe) == {"exchange": "172.30.18.3"} and _networks(probe, 6) == {"exchange": "2001:db8:ac1e:12::3"}
    assert "ISP_ADDRESSES=192.0.2.1/32 2001:db8:1920::1/128" in probe.inputs["envs"]
    assert outputs["probe"] == {"container": "bgp4mesh-lab-probe", "address": "192.0.2.1", "asn": 65010}
    gateways = [{"mesh": "44.30.127.1", "ibgp": "172.31.16.10", "ibgp6": "2001:db8:ac1f:10::a"},
                {"mesh": "44.30.127.2", "ibgp": "172.31.16.11", "ibgp6": "2001:db8:ac1f:10::b"}]
    assert _agent(a)["router"] == {"bgp_protocols": ["peer_isp_a"], "gateways": gateways, "self_ip": "44.30.127.1",
                                   "mesh_range": "44.30.127.0/24", "mesh_range6": "2001:db8:4430::/64"}
    assert _agent(b)["router"]["self_ip"] == "44.30.127.2" and _agent(b)["router"]["bgp_protocols"] == ["peer_isp_b"]
    assert _agent(b)["router"]["gateways"] == gateways and _agent(b)["router"]["mesh_range6"] == "2001:db8:4430::/64"
    assert {u["file"] for u in a.inputs["uploads"]} >= {"/etc/bird/bird.conf", "/etc/bird/bird-drained.conf"}
    for node in ("node1", "node2"):
        assert _agent(container(mocks, f"bgp4mesh-lab-{node}"))["node"] == {
            "gateways": ["44.30.127.1", "44.30.127.2"],
            "ranges": ["198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "2001:db8:5100::/48", "2001:db8:2030::/48", "2001:db8:1920::/48"],
            "internet6": False}  # egress ranges, no internet gateway
    egress = {r.name: r.inputs for r in mocks.resources if r.name.endswith("-egress")}
    assert {n: (e["gatewayHostName"] if "gatewayHostName" in e else e["gateway_host_name"], e["metric"]) for n, e in egress.items()} == {
        "border-a-egress": ("border-a", 256), "border-b-egress": ("border-b", 257)}
    assert [(s["upstream"], s["peer"]) for s in outputs["border_routers"]["border-a"]["upstream_sessions"]] == [
        ("isp-a", "172.30.16.1"), ("isp-a", "2001:db8:ac1e:10::1")]  # a session per family
    assert set(outputs["mesh_nodes_ipv6"]) == set(outputs["mesh_nodes"]) == {"node1", "node2"}


def test_maintenance_changes_only_its_command():
    """Draining must not restart the router: the switch reaches it through a command, and
    no container (nor its uploads or environment) differs."""
    raw = copy.deepcopy(raw_from_file("lab")[0])
    before, _, _ = run_stack("lab", copy.deepcopy(raw))
    raw["border_routers"][0]["maintenance"] = True
    after, outputs, _ = run_stack("lab", raw)
    was = {r.name: r.inputs for r in before.resources}
    assert set(was) == {r.name for r in after.resources}
    changed = {r.name for r in after.resources if r.inputs != was[r.name]}
    assert changed == {"border-a-maintenance"}, changed
    assert after.named("border-a-maintenance").inputs["create"].endswith("border-health maintenance on")
    assert before.named("border-a-maintenance").inputs["create"].endswith("border-health maintenance off")
    assert outputs["border_routers"]["border-a"]["maintenance"] is True


def _agent(resource) -> dict:
    """The HA agent's config uploaded into a container (bgp4mesh/agent_config.py), or {}."""
    return next((json.loads(u["content"]) for u in resource.inputs["uploads"] if u["file"] == "/etc/bgp4mesh/agent.json"), {})


def test_one_border_router_runs_no_failover(dev):
    mocks, _, _ = dev
    assert _agent(container(mocks, "bgp4mesh-dev-node1")) == {}
    router = _agent(container(mocks, "bgp4mesh-dev-border"))["router"]
    assert router["bgp_protocols"] and router["gateways"] == [] and router["self_ip"] == ""


def test_prod_uses_remote_hosts_and_no_lab_networks(remote):
    mocks, _, _ = remote("prod")
    # No lab networks: only the control host's private bridge that keeps netmaker's
    # plain-HTTP API off the public interface.
    assert [n.inputs["name"] for n in mocks.of_type(NETWORK)] == ["bgp4mesh-prod-netmaker"]
    assert not any(n.inputs.get("internal") for n in mocks.of_type(NETWORK))
    providers = {r.name: r.inputs.get("host") for r in mocks.resources if r.typ == "pulumi:providers:docker"}
    assert providers["docker-edge1"] == "ssh://root@edge1.example.net:22"
    border = container(mocks, "bgp4mesh-prod-border")
    assert border.inputs.get("networkMode") == "host"
    assert not any(c.inputs["name"].endswith("-isp") for c in mocks.of_type(CONTAINER))


def test_invalid_config_declares_nothing():
    raw = copy.deepcopy(raw_from_file("dev")[0])
    raw["asn"] = 23456
    mocks = RecordingMocks()
    with pytest.raises(Exception) as info:
        run_program("dev", mocks, raw)
    assert "bgp4mesh:asn = 23456" in str(info.value) and "AS_TRANS" in str(info.value)
    assert mocks.resources == []


def test_no_credential_is_a_stack_output(dev):
    _, outputs, _ = dev
    assert not {"netmaker_master_key", "enrollment_token"} & set(outputs)


def test_enrollment_token_only_on_the_join_commands_stdin(dev):
    mocks, _, _ = dev
    members = [c for c in mocks.of_type(CONTAINER) if c.inputs["name"] in ("bgp4mesh-dev-border", "bgp4mesh-dev-node1", "bgp4mesh-dev-node2")]
    assert len(members) == 3
    for c in members:
        assert not any("TOKEN" in e for e in c.inputs["envs"]), c.inputs["envs"]
        assert "TOKEN" not in str(c.inputs.get("uploads"))
    joins = [r for r in mocks.of_type("command:local:Command") if r.name.endswith("-join")]
    assert sorted(j.name for j in joins) == ["border-join", "node1-join", "node2-join"]
    for j in joins:
        assert j.inputs["stdin"] == "TOKEN" and rpc_secret(j.raw_inputs["stdin"])
        assert " netclient-join bgp4mesh" in j.inputs["create"] and not j.inputs.get("update")


def test_every_member_joins_with_a_one_use_key_of_its_own(dev):
    """No shared, unlimited or long-lived key: one key per member (border routers and
    nodes), for that member's host, used once, tagged for it alone."""
    from components.mesh_join import member_key_tag

    mocks, _, _ = dev
    keys = {r.name: r.inputs for r in mocks.of_type("dynamic/bgp4mesh:EnrollmentKey")}
    members = ["border", "node1", "node2"]
    assert sorted(keys) == sorted(f"{m}-key" for m in members)
    for m in members:
        key = keys[f"{m}-key"]
        assert key["uses"] == 1 and key["for_host"] == m and not key.get("unlimited") and not key.get("expires_at")
        assert key["valid_for_seconds"] == 600 and key["tags"] == [member_key_tag("bgp4mesh", m)] and key["networks"] == ["bgp4mesh"]
    assert len({k["tags"][0] for k in keys.values()}) == len(members)


def test_member_key_tags_are_unique_and_fit_netmaker():
    from components.mesh_join import member_key_tag

    assert member_key_tag("bgp4mesh", "node1") == "node1@bgp4mesh"
    long = [member_key_tag("n" * 32, f"member-{i}-{'x' * 20}") for i in range(50)]
    assert len(set(long)) == 50 and all(3 <= len(t) <= 32 for t in long)
    assert member_key_tag("a", "b") == "b@a"


def _with_password(stack: str) -> dict:
    raw = copy.deepcopy(raw_from_file(stack)[0])
    raw["upstreams"][0]["password"] = "md5-Secret-xyz"
    return raw


@pytest.mark.parametrize(
    "raw_of, secret_keys",
    [(_with_password, {"upstreams"}), (lambda s: raw_from_file(s)[0], {"policy"}), (lambda s: raw_from_file(s)[0], {"asn"})],
    ids=["password-in-upstreams", "policy-secret", "asn-secret"],
)
def test_secret_config_stays_secret_in_every_rendered_file(raw_of, secret_keys):
    mocks, _, _ = run_stack("dev", raw_of("dev"), secret_keys)
    for name in ("bgp4mesh-dev-border", "bgp4mesh-dev-isp"):
        assert upload_is_secret(container(mocks, name), "/etc/bird/bird.conf"), f"{name}: bird.conf must be secret when {secret_keys} is"


def test_password_reaches_bird_only_as_a_secret():
    mocks, _, _ = run_stack("dev", _with_password("dev"))  # a plain value: the model still treats it as secret
    border = container(mocks, "bgp4mesh-dev-border")
    bird = next(u for u in border.inputs["uploads"] if u["file"] == "/etc/bird/bird.conf")
    assert upload_is_secret(border, "/etc/bird/bird.conf") and 'password "md5-Secret-xyz";' in bird["content"]
    for r in mocks.resources:  # nowhere else, and never outside a secret
        if r is not border and r.name != "isp-bird":
            assert "md5-Secret-xyz" not in str(r.inputs), r.name


def test_without_secrets_rendered_files_stay_readable_in_previews(dev):
    mocks, _, _ = dev
    assert not upload_is_secret(container(mocks, "bgp4mesh-dev-border"), "/etc/bird/bird.conf")


def test_every_fixed_name_resource_is_deleted_before_it_is_replaced():
    seen = {}

    def observe(args):
        seen[(args.type_, args.name)] = (args.props, args.opts)

    run_stack("dev", observe=observe)
    named = {k: v for k, v in seen.items() if k[0].startswith("docker:index/") and k[0] != "docker:index/remoteImage:RemoteImage" and v[0].get("name")}
    assert {k[0] for k in named} == {"docker:index/container:Container", "docker:index/network:Network", "docker:index/volume:Volume"}
    assert len(named) >= 12
    late = [k for k, (_, opts) in named.items() if not opts.delete_before_replace]
    assert not late, f"fixed-name resources replaced create-before-delete (name conflict): {late}"


def test_mesh_nodes_declared_with_tun_identity_and_static_endpoint(dev):
    mocks, outputs, _ = dev
    node = container(mocks, "bgp4mesh-dev-node1")
    assert node.inputs["networksAdvanced"] == [{"name": "bgp4mesh-dev-underlay", "ipv4Address": "172.31.0.20"}]
    assert node.inputs["devices"][0]["hostPath"] == "/dev/net/tun"
    assert node.inputs["volumes"][0]["containerPath"] == "/etc/netclient"
    assert "NETCLIENT_ENDPOINT=172.31.0.20" in node.inputs["envs"]
    assert set(outputs["mesh_nodes"]) == {"node1", "node2"}
    egress = next(r for r in mocks.resources if r.name == "border-egress")
    assert egress.inputs["ranges"][:2] == ["198.51.100.0/24", "203.0.113.0/24"] and egress.inputs["nat"] is False
    assert egress.inputs["ranges"] == raw_from_file("dev")[0]["mesh"]["egress_ranges"]  # exactly the mesh's egress ranges


def test_members_without_a_pin_join_after_every_pinned_member_holds_its_address():
    """Netmaker hands a joining node the lowest free address; were node2 to join while
    node1 is still on its way to 44.30.127.10, it could take that address first."""
    deps = {}

    def observe(args):
        if args.type_ == "command:local:Command" and args.name.endswith("-join"):
            deps[args.name] = {d._name for d in (args.opts.depends_on or [])}

    raw = copy.deepcopy(raw_from_file("dev")[0])
    raw["mesh"]["nodes"].append({"name": "node3", "ip": "44.30.127.3"})
    run_stack("dev", raw, observe=observe)
    pinned_gates = {"border-address-applied", "node1-address-applied", "node3-address-applied"}
    assert deps["node2-join"] == pinned_gates  # node2 has no pinned address
    assert deps["border-join"] == set()
    # .1 and .3 are among the addresses handed out at join: had border been handed .3 and
    # node3 .1, each would wait for the other's address forever
    assert deps["node3-join"] == {"border-address-applied"}
    # node1's .10 is not: it joins once the low pins are held, so it is never handed one
    assert deps["node1-join"] == {"node3-address-applied"}


def test_members_without_a_pin_join_in_bounded_waves_each_gated_by_its_own_join():
    """mesh.join_parallel chains: the i-th member without a pin joins once the (i-K)-th's
    join (which is its gate: no address-applied command for it) is done."""
    deps = {}

    def observe(args):
        if args.type_ == "command:local:Command" and args.name.endswith("-join"):
            deps[args.name] = {d._name for d in (args.opts.depends_on or [])}

    raw = copy.deepcopy(raw_from_file("dev")[0])
    raw["mesh"]["nodes"] += [{"name": f"free{i}"} for i in range(5)]
    raw["mesh"]["join_parallel"] = 2
    mocks, _, _ = run_stack("dev", raw, observe=observe)
    free = ["node2"] + [f"free{i}" for i in range(5)]
    assert deps["node2-join"] == deps["free0-join"] == {"border-address-applied", "node1-address-applied"}
    for i in range(2, len(free)):
        assert deps[f"{free[i]}-join"] == {f"{free[i - 2]}-join"}
    gates = {r.name for r in mocks.of_type("command:local:Command") if r.name.endswith("-address-applied")}
    assert gates == {"border-address-applied", "node1-address-applied"}


def _signature(run, stack: str) -> dict:
    """What the stack declares per role: each component instance (its whole subtree) by its
    type, each host's own resources (provider, preparation, images) by the host's roles,
    and the rest as the stack's. Per role, the set of distinct type counts its instances have."""

    from bgp4mesh.stack import validate

    seen: dict[int, tuple] = {}
    run(stack, observe=lambda a: seen.__setitem__(id(a.resource), (a.type_, a.name, a.opts.parent)))
    cfg = validate(raw_from_file(stack)[0])
    host_roles = {h.name: tuple(sorted(r.split(" ")[0] for r in plans.host(cfg, h).roles)) for h in cfg.hosts}

    def role(entry) -> tuple[str, str]:
        typ, name, parent = entry
        top = (typ, name)
        while parent is not None and id(parent) in seen:
            typ, name, parent = seen[id(parent)]
            top = (typ, name)
        if top[0].startswith("bgp4mesh:index:"):
            return top[0], top[1]
        host = next((h for h in host_roles if top[1] in (f"docker-{h}", f"{h}-host-prep") or top[1].startswith(f"{h}-image-")), None)
        return (f"host{host_roles[host]}", host) if host else ("stack", "")

    instances: dict[tuple, Counter] = {}
    for entry in seen.values():
        instances.setdefault(role(entry), Counter())[entry[0]] += 1
    out: dict[str, set] = {}
    for (kind, _), types in instances.items():
        out.setdefault(kind, set()).add(frozenset(types.items()))
    return out


def test_staging_and_prod_take_the_same_code_path(remote):
    """Staging proves prod only if it declares what prod declares: the same resource types,
    the same number of each per role, with only values differing."""
    staging, prod = _signature(remote, "staging"), _signature(remote, "prod")
    assert set(staging) == set(prod)
    assert all(prod[role] <= staging[role] for role in prod), "prod declares something staging never exercises"
    assert {"bgp4mesh:index:BorderRouter", "bgp4mesh:index:MeshNode", "bgp4mesh:index:NetmakerServer"} <= set(staging)
    for role, shapes in staging.items():
        # a node with a pinned address has one command more (its gate after the pin);
        # staging has one of each kind, prod only one without
        pinned = [dict(shape) for shape in shapes]
        alike = len(shapes) == 1 or (
            role == "bgp4mesh:index:MeshNode" and len(shapes) == 2
            and abs(pinned[0].pop("command:remote:Command") - pinned[1].pop("command:remote:Command")) == 1 and pinned[0] == pinned[1]
        )
        assert alike, f"instances of {role} differ: {shapes}"
    host_types = {t for role, shapes in staging.items() if role.startswith("host") for shape in shapes for t, _ in shape}
    assert "command:remote:Command" in host_types  # host preparation over SSH


# ---- images pinned by digest --------------------------------------------------------------

DIGEST = "sha256:" + "0123456789abcdef" * 4
TEST_PEM = "-----BEGIN CERTIFICATE-----\nMIIBdGVzdA==\n-----END CERTIFICATE-----\n"


def _pulled(mocks) -> dict[str, str]:
    """Resource name -> the reference each RemoteImage pulls (none is built on a remote host)."""
    images = mocks.of_type("docker:index/remoteImage:RemoteImage")
    assert not any(i.inputs.get("build") for i in images)
    return {i.name: i.inputs["name"] for i in images}


def test_a_pinned_image_is_pulled_by_its_digest(remote):
    raw = copy.deepcopy(raw_from_file("prod")[0])
    raw["images"]["digests"] = {"border": DIGEST}
    raw["netmaker"]["upstream_images"]["tls"] = f"caddy:2.8.4@{DIGEST}"
    mocks, _, _ = remote("prod", raw=raw)
    pulled = _pulled(mocks)
    assert pulled["edge1-image-border"] == f"registry.example.net/bgp4mesh/border:1.0.0@{DIGEST}"
    assert pulled["control-image-tls"] == f"caddy:2.8.4@{DIGEST}"
    assert pulled["site-a-image-netclient"] == "registry.example.net/bgp4mesh/netclient:1.0.0"  # not pinned: by tag
    assert container(mocks, "bgp4mesh-prod-border").inputs["image"] == f"sha256:id-of-{pulled['edge1-image-border']}"


def _sim_info(digests: dict) -> dict:
    """What harness/sim writes to staging.json, as far as the staging config reads it."""
    from harness import sim

    return {"hosts": {h: {"host_key": "ssh-ed25519 " + "A" * 68} for h in sim.HOSTS}, "operator_key": "/unused", "image_tag": "0123abcd",
            "acme_listener_ca_pem": TEST_PEM, "acme_root_pem": TEST_PEM, "digests": digests}


def test_staging_pulls_every_image_by_the_digest_the_registry_serves(remote):
    """harness/staging.py pins each image by what the simulated registry answered for it
    (here a fake answer: one digest per published name), so nothing is pulled by tag."""
    from bgp4mesh.stack import validate
    from harness import sim, staging

    published = [*sim.UPSTREAM, *(f"{sim.REGISTRY}/bgp4mesh/{kind}:0123abcd" for kind in sim.PUBLISHED)]
    digests = {name: "sha256:" + hashlib.sha256(name.encode()).hexdigest() for name in published}
    raw = {key.split(":", 1)[1]: value for key, value in staging.config(_sim_info(digests)).items()}
    assert validate(raw).tag_only_pulls() == {}
    pulled = _pulled(remote("staging", raw=raw)[0])
    pinned = {f"{name}@{digest}" for name, digest in digests.items()}
    assert set(pulled.values()) <= pinned, set(pulled.values()) - pinned
    assert pulled["edge-image-border"] == f"{sim.REGISTRY}/bgp4mesh/border:0123abcd@{digests[f'{sim.REGISTRY}/bgp4mesh/border:0123abcd']}"
    assert {"control-image-netmaker", "control-image-mosquitto", "control-image-tls", "node-a-image-netclient", "node-b-image-netclient"} <= set(pulled)


def test_staging_config_refuses_an_image_the_simulation_did_not_publish():
    from harness import sim, staging

    with pytest.raises(sim.SimError, match="which the simulation does not publish"):
        staging.config(_sim_info({}))
    info = _sim_info({})
    del info["digests"]
    with pytest.raises(sim.SimError, match="run ./scripts/sim up"):
        staging.config(info)


# ---- monitoring on real hosts ---------------------------------------------------------------


def _upload(resource, path: str) -> str:
    return next(u["content"] for u in resource.inputs["uploads"] if u["file"] == path)


def test_staging_with_monitoring_runs_prometheus_with_the_control_hosts_network_and_exporters_on_the_members(remote):
    from bgp4mesh.control_exporter import CONFIG_PATH
    from harness import sim, staging

    published = [*sim.UPSTREAM, *(f"{sim.REGISTRY}/bgp4mesh/{kind}:0123abcd" for kind in sim.PUBLISHED)]
    digests = {name: "sha256:" + hashlib.sha256(name.encode()).hexdigest() for name in published}
    raw = {key.split(":", 1)[1]: value for key, value in staging.config(_sim_info(digests)).items()} | {"monitoring": {"scrape_interval": 10}}
    mocks, outputs, _ = remote("staging", raw=raw)
    monitoring = container(mocks, "bgp4mesh-staging-monitoring")
    image = f"{sim.REGISTRY}/bgp4mesh/monitoring:0123abcd"
    assert _pulled(mocks)["control-image-monitoring"] == f"{image}@{digests[image]}"  # on the control host, pinned
    assert monitoring.inputs["networkMode"] == "host" and not monitoring.inputs.get("networksAdvanced")
    assert monitoring.inputs["envs"] == ["PROMETHEUS_LISTEN=127.0.0.1:9090"] and not monitoring.inputs.get("ports")
    assert unwrap(outputs["monitoring"])["prometheus"] == "http://127.0.0.1:9090"
    control = json.loads(_upload(monitoring, CONFIG_PATH))
    assert (control["broker"]["host"], control["broker"]["port"]) == ("127.0.0.1", 1883)
    assert control["netmaker"]["api_url"] == "https://nm.staging.test"
    update = next(r for r in mocks.resources if r.name == "monitoring-update")  # the targets go into the running container
    assert json.loads(json.loads(update.inputs["stdin"])["/etc/prometheus/targets/bird.json"])[0]["targets"] == ["203.0.113.10:9324"]
    mq = container(mocks, "bgp4mesh-staging-netmaker-mq")
    assert mq.inputs["ports"] == [{"internal": 1883, "external": 1883, "ip": "127.0.0.1"}]  # the monitoring listener, loopback alone
    assert "MONITOR_USERNAME=bgp4mesh-monitor" in mq.inputs["envs"]
    conf = _upload(mq, "/mosquitto/config/mosquitto.conf")  # the pulled eclipse-mosquitto
    assert "listener 1883\nprotocol mqtt" in conf and "password_file /mosquitto/config/clients-password.txt" in conf
    assert 'mosquitto_passwd /mosquitto/config/clients-password.txt "$MONITOR_USERNAME"' in _upload(mq, "/mosquitto/config/bgp4mesh-start.sh")
    envs = lambda name: sorted(e for e in container(mocks, f"bgp4mesh-staging-{name}").inputs["envs"] if "EXPORTER_LISTEN" in e)  # noqa: E731
    assert envs("border") == ["BIRD_EXPORTER_LISTEN=203.0.113.10:9324", "EXPORTER_LISTEN=203.0.113.10:9586"]
    assert envs("node-a") == ["EXPORTER_LISTEN=203.0.113.30:9586"] and envs("node-b") == []  # behind NAT: not scraped
    prep = {r.name: r.inputs["stdin"] for r in mocks.resources if r.name.endswith("-host-prep")}
    assert 'ip saddr 203.0.113.20 tcp dport 9586 accept' in prep["node-a-host-prep"]
    assert "9090" not in prep["control-host-prep"]


@pytest.mark.parametrize("stack", ["dev", "lab"])
def test_netmaker_objects_are_deleted_with_the_servers_database(stack, monkeypatch):
    """A destroy must not need an answering Netmaker (tests/test_live_failed_up.py): every
    Netmaker object registers `deleted_with` the server's data volume, and nothing else does."""
    from pulumi.runtime.mocks import MockMonitor

    registered = {}
    original = MockMonitor.RegisterResource

    def record(self, request):
        registered[request.name] = (request.type, request.deletedWith)
        return original(self, request)

    monkeypatch.setattr(MockMonitor, "RegisterResource", record)
    run_stack(stack)
    volume = next(n for n, (t, _) in registered.items() if n == "netmaker-data" and t == "docker:index/volume:Volume")
    with_store = {n for n, (_, w) in registered.items() if w}
    netmaker_objects = {n for n, (t, _) in registered.items() if t.startswith("pulumi-python:dynamic/bgp4mesh:")}
    assert netmaker_objects and with_store == netmaker_objects, with_store ^ netmaker_objects
    assert {w.rsplit("::", 1)[1] for n, (_, w) in registered.items() if w} == {volume}
    assert "mesh-network" in netmaker_objects
    assert {n.rsplit("-", 1)[1] for n in netmaker_objects} >= {"key", "member", "network"}

"""Stack config validation: each rule rejects bad input with one message that
names the key, the value and the rule; good stacks load."""

import copy
import subprocess
import sys

import pytest

from bgp4mesh.config import MESH_FAMILIES
from bgp4mesh.problems import ConfigError
from bgp4mesh.stack import PROJECT_DIR, raw_from_file, validate
from tests import plans

DEV, _ = raw_from_file("dev")


def with_change(path: str, value, base=DEV):
    """A copy of the dev config with one key (dotted path, [i] for lists) set."""
    raw = copy.deepcopy(base)
    parts = path.replace("]", "").replace("[", ".").split(".")
    target = raw
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return raw


DELETE = object()


def rejected(raw) -> str:
    with pytest.raises(ConfigError) as info:
        validate(raw)
    return str(info.value)


SHIPPED = sorted(p.name.split(".")[1] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def test_the_shipped_stacks_are_found():
    assert {"dev", "lab", "prod", "staging", "staging-ha"} <= set(SHIPPED)


@pytest.mark.parametrize("stack", SHIPPED)
def test_shipped_stacks_are_valid(stack):
    cfg = validate(*raw_from_file(stack))
    assert cfg.asn == (64500 if stack in ("prod", "staging", "staging-ha") else 65000)  # prod: a documentation ASN
    assert cfg.mesh.range.subnet_of(cfg.prefixes[0])


@pytest.mark.parametrize(
    "value, rule",
    [
        (0, "RFC 7607"),
        (23456, "AS_TRANS"),
        (4294967296, "32 bits"),
        ("sixty-five", "whole number"),
        (65535, "RFC 7300"),
    ],
)
def test_bad_own_asn(value, rule):
    msg = rejected(with_change("asn", value))
    assert "bgp4mesh:asn" in msg and str(value) in msg and rule in msg


def test_bad_upstream_asn_names_the_list_position():
    msg = rejected(with_change("upstreams[0].asn", 23456))
    assert "bgp4mesh:upstreams[0].asn = 23456" in msg and "AS_TRANS" in msg


def test_asn_given_as_text_with_prefix_is_read():
    assert validate(with_change("asn", "AS65000")).asn == 65000


@pytest.mark.parametrize(
    "value, rule",
    [
        ("44.30.127.1/24", "host bits are set; the network is 44.30.127.0/24"),
        ("44.30.127.0/25", "longer than /24"),
        ("44.30.300.0/24", "not a valid IP prefix"),
        ("44.30.127.0", "needs its length"),
    ],
)
def test_bad_prefix(value, rule):
    msg = rejected(with_change("prefixes[0]", value))
    assert "prefixes[0]" in msg and rule in msg and value.split("/")[0] in msg


def test_mesh_range_must_be_inside_an_announced_prefix():
    msg = rejected(with_change("mesh.range", "44.30.128.0/24"))
    assert "mesh.range = 44.30.128.0/24" in msg and "not inside any announced prefix" in msg


def test_overlapping_ranges():
    msg = rejected(with_change("lab.underlay", "172.30.0.0/23"))
    assert "overlaps" in msg and "lab.underlay" in msg and "upstreams[0].link" in msg
    msg = rejected(with_change("prefixes", ["44.30.0.0/16", "44.30.127.0/24"]))
    assert "overlap" in msg


@pytest.mark.parametrize("name", ["Border", "-x", "x-", "a" * 33, "has_underscore", "1node", ""])
def test_invalid_names(name):
    msg = rejected(with_change("mesh.nodes[0].name", name))
    assert "mesh.nodes[0].name" in msg and "1-32 characters" in msg


def test_duplicate_names():
    msg = rejected(with_change("mesh.nodes[1].name", "node1"))
    assert "bgp4mesh:mesh.nodes[1].name = 'node1': already used by mesh.nodes[0].name" in msg
    msg = rejected(with_change("mesh.nodes[1].name", "isp"))
    assert "bgp4mesh:mesh.nodes[1].name = 'isp': already used by upstreams[0].name" in msg


def test_neighbor_must_be_in_link_subnet():
    msg = rejected(with_change("upstreams[0].neighbor", "172.30.9.1"))
    assert "bgp4mesh:upstreams[0].neighbor = 172.30.9.1: not inside link 172.30.0.0/24" in msg
    assert "{" not in msg  # the field, not a dump of the upstream


def test_rules_of_a_section_name_their_field():
    msg = rejected(with_change("policy.timers.keepalive", 4))
    assert "bgp4mesh:policy.timers.keepalive = 4: must be at most a third of hold 9" in msg
    msg = rejected(with_change("policy.bogon_exempt_asns[0]", {"first": 65534, "last": 64512}))
    assert "bgp4mesh:policy.bogon_exempt_asns[0].last = 64512: ends before first 65534" in msg
    msg = rejected(with_change("netmaker", {"tls": "acme"}))
    assert "bgp4mesh:netmaker.acme_email: tls 'acme' needs acme_email" in msg


def test_every_problem_is_reported_at_once():
    raw = with_change("mesh.egress_ranges", ["44.30.127.0/24"])
    raw = with_change("mesh.nodes[1].name", "node1", raw)
    raw = with_change("mesh.nodes[0].ip", "44.30.126.1", raw)
    raw = with_change("upstreams[0].mock.router_id", "172.30.0.100", raw)
    msg = rejected(raw)
    for key in ("mesh.egress_ranges[0]", "mesh.nodes[1].name", "mesh.nodes[0].ip", "upstreams[0].mock.router_id"):
        assert f"bgp4mesh:{key} = " in msg
    # Field rules of different sections, too.
    raw = with_change("policy.timers.hold", 1)
    raw = with_change("upstreams[0].limit_action", "explode", raw)
    raw = with_change("mesh.nodes[0].name", "Node", raw)
    assert rejected(raw).count("\n  bgp4mesh:") == 3


def test_secret_values_are_never_shown():
    msg = rejected(with_change("upstreams[0].password", 'hunter2"quote'))
    assert "bgp4mesh:upstreams[0].password = [secret]" in msg and "hunter2" not in msg
    with pytest.raises(ConfigError) as info:
        validate(with_change("asn", "secret-asn"), {"asn"})
    assert "bgp4mesh:asn = [secret]" in str(info.value) and "secret-asn" not in str(info.value)


def test_router_id_must_be_ipv4():
    msg = rejected(with_change("border_routers[0].router_id", "2001:db8::1"))
    assert "border_routers[0].router_id = '2001:db8::1'" in msg and "IPv4" in msg


@pytest.mark.parametrize(
    "ip, rule",
    [
        ("44.30.126.5", "outside mesh.range"),
        ("44.30.127.0", "network or broadcast"),
        ("44.30.127.255", "network or broadcast"),
        ("44.30.127.1", "already pinned by border_routers[0].mesh_ip"),
    ],
)
def test_bad_pinned_mesh_ip(ip, rule):
    msg = rejected(with_change("mesh.nodes[0].ip", ip))
    assert f"mesh.nodes[0].ip = {ip}" in msg and rule in msg


@pytest.mark.parametrize("path", ["asnn", "mesh.nodez", "upstreams[0].max_prefix", "policy.bogon"])
def test_unknown_keys_are_rejected(path):
    raw = copy.deepcopy(DEV)
    parts = path.replace("]", "").replace("[", ".").split(".")
    target = raw
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[parts[-1]] = 1
    msg = rejected(raw)
    assert f"bgp4mesh:{path}: unknown key" in msg


def test_mock_isp_needs_a_lab_stack():
    msg = rejected(with_change("lab", DELETE))
    assert "mock ISP needs a lab stack" in msg


def test_check_cli_exit_codes(tmp_path):
    good = subprocess.run([sys.executable, "-m", "bgp4mesh", "check", "--stack", "dev"], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert "AS 65000 announcing 44.30.127.0/24" in good.stdout
    assert "session isp (mock, BIRD peer_isp): 172.30.0.100 -> 172.30.0.1 AS 65001" in good.stdout
    assert "node1: 44.30.127.10" in good.stdout
    bad = subprocess.run([sys.executable, "-m", "bgp4mesh", "check", "--stack", "nope"], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert bad.returncode == 2 and "Pulumi.nope.yaml" in bad.stderr


def test_render_cli_writes_what_each_router_container_gets(tmp_path):

    from bgp4mesh.stack import load_file

    proc = subprocess.run([sys.executable, "-m", "bgp4mesh", "render", "--stack", "dev", "--out", str(tmp_path)], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    cfg = load_file("dev")
    assert (tmp_path / "border" / "bird.conf").read_text() == plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    assert (tmp_path / "isp" / "bird.conf").read_text() == plans.isp(cfg, cfg.upstreams[0])["bird.conf"]


# ---- high availability --------------------------------------------------------------

LAB, _ = raw_from_file("lab")


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("upstreams[1].prepend", 11, "bgp4mesh:upstreams[1].prepend = 11: "),
        ("upstreams[0].local_pref", -1, "bgp4mesh:upstreams[0].local_pref = -1: "),
        ("upstreams[0].bfd.interval_ms", 5, "bgp4mesh:upstreams[0].bfd.interval_ms = 5: "),
        ("upstreams[0].bfd.multiplier", 0, "bgp4mesh:upstreams[0].bfd.multiplier = 0: "),
        ("upstreams[0].bfd.mode", "off", "bgp4mesh:upstreams[0].bfd.mode = 'off': "),
        ("policy.drain_prepend", 11, "bgp4mesh:policy.drain_prepend = 11: "),
        ("border_routers[0].maintenance", "maybe", "bgp4mesh:border_routers[0].maintenance = 'maybe': "),
        ("mesh.failover", {"down_after": 0}, "bgp4mesh:mesh.failover.down_after = 0: "),
        ("mesh.failover", {"interval_ms": 10}, "bgp4mesh:mesh.failover.interval_ms = 10: "),
    ],
)
def test_ha_fields_are_checked(path, value, message):
    assert message in rejected(with_change(path, value, LAB))


def test_several_routers_need_pinned_mesh_addresses():
    msg = rejected(with_change("border_routers[1].mesh_ip", DELETE, LAB))
    assert "bgp4mesh:border_routers[1].mesh_ip: pin it" in msg


def test_routers_on_real_hosts_need_an_ibgp_address_and_a_lab_takes_none():
    msg = rejected(with_change("border_routers[0].ibgp_address", "172.31.16.50", LAB))
    assert "bgp4mesh:border_routers[0].ibgp_address = 172.31.16.50: a lab's border routers peer over the underlay" in msg
    raw = copy.deepcopy(LAB)
    for key in ("lab",):
        del raw[key]
    for u in raw["upstreams"]:
        del u["mock"]
    msg = rejected(raw)
    assert "bgp4mesh:border_routers[0].ibgp_address: required with several border routers" in msg
    assert "bgp4mesh:border_routers[1].ibgp_address: required" in msg
    raw["border_routers"][0]["ibgp_address"] = raw["border_routers"][1]["ibgp_address"] = "10.9.0.1"
    msg = rejected(raw)
    assert "bgp4mesh:border_routers[1].ibgp_address = 10.9.0.1: already the iBGP address of border_routers[0]" in msg


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("lab.probe.asn", 65000, "bgp4mesh:lab.probe.asn = 65000: already our own ASN"),
        ("lab.probe.asn", 65002, "bgp4mesh:lab.probe.asn = 65002: already upstream isp-b"),
        ("lab.probe.asn", 64496, "bgp4mesh:lab.probe.asn = 64496: in the bogon ASN set"),
        ("lab.probe.prefix", "10.1.0.0/24", "bgp4mesh:lab.probe.prefix = 10.1.0.0/24: overlaps bogon 10.0.0.0/8"),
        ("lab.probe.prefix", "44.30.127.0/25", "bgp4mesh:lab.probe.prefix = 44.30.127.0/25: overlaps prefixes[0]"),
        ("lab.exchange", DELETE, "bgp4mesh:lab.probe: needs lab.exchange"),
        ("lab.exchange", "172.30.16.0/24", "bgp4mesh:lab.exchange = 172.30.16.0/24: overlaps upstreams[0].link"),
        ("lab.exchange", "172.30.18.0/30", "bgp4mesh:lab.exchange = 172.30.18.0/30: too small"),
        ("border_routers[1].name", "probe", "bgp4mesh:border_routers[1].name = 'probe': the lab probe's container name"),
    ],
)
def test_probe_and_exchange_rules(path, value, message):
    assert message in rejected(with_change(path, value, LAB))


# ---- images pinned by digest ------------------------------------------------------------

PROD, _ = raw_from_file("prod")
DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("ref", [f"caddy:2.8.4@{DIGEST}", f"caddy@{DIGEST}", f"registry.example.net:5000/mirror/caddy:2.8.4@{DIGEST}", "caddy:2.8.4"])
def test_an_upstream_image_may_be_pinned_by_digest(ref):
    cfg = validate(with_change("netmaker.upstream_images.tls", ref, PROD))
    assert cfg.netmaker.pull_image("tls") == ref


def test_our_images_may_be_pinned_by_digest():
    cfg = validate(with_change("images.digests", {"border": DIGEST, "netclient": DIGEST}, PROD))
    assert cfg.images.reference("border") == f"registry.example.net/bgp4mesh/border:1.0.0@{DIGEST}"
    assert cfg.images.reference("bird") == "registry.example.net/bgp4mesh/bird:1.0.0"


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("netmaker.upstream_images.tls", "caddy:2.8.4@sha256:abc", "bgp4mesh:netmaker.upstream_images.tls = 'caddy:2.8.4@sha256:abc': a digest is 'sha256:' and 64 lowercase hex digits"),
        ("netmaker.upstream_images.tls", f"caddy@{DIGEST.upper()}", "bgp4mesh:netmaker.upstream_images.tls = 'caddy@SHA256:0123456789ABCDEF0123456789A'... (77 characters): a digest is"),
        ("netmaker.upstream_images.tls", f"caddy:2.8.4@{DIGEST.replace('sha256', 'sha512')}", "a digest is 'sha256:' and 64"),
        ("netmaker.upstream_images.mosquitto", f"eclipse-mosquitto@{DIGEST}0", "bgp4mesh:netmaker.upstream_images.mosquitto = 'eclipse-mosquitto@sha256:0123456789abcde'... (90 characters): a digest is"),
        ("netmaker.upstream_images.netmaker", "gravitl/netmaker@", "bgp4mesh:netmaker.upstream_images.netmaker = 'gravitl/netmaker@': a digest is"),
        ("netmaker.upstream_images.tls", "caddy", "bgp4mesh:netmaker.upstream_images.tls = 'caddy': an image like caddy:2.8.4, pinned by digest as"),
        ("netmaker.upstream_images.tls", f"Caddy@{DIGEST}", "an image like caddy:2.8.4, pinned by digest as"),
        ("netmaker.upstream_images.tls", f"caddy:2.8.4 @{DIGEST}", "an image like caddy:2.8.4, pinned by digest as"),
        ("images.digests", {"border": "sha256:xyz"}, "bgp4mesh:images.digests.border = 'sha256:xyz': a digest is 'sha256:' and 64 lowercase hex digits"),
        ("images.digests", {"border": DIGEST[7:]}, "bgp4mesh:images.digests.border = '0123456789abcdef0123456789abcdef01234567'... (64 characters): a digest is"),
        ("images.digests", {"router": DIGEST}, "bgp4mesh:images.digests.router: unknown key"),
        ("images.digests", ["border"], "bgp4mesh:images.digests = [...] (a list of 1 items): Input should be a valid dictionary or instance of OwnDigests"),
    ],
)
def test_malformed_digests_are_rejected_naming_the_key(path, value, message):
    assert message in rejected(with_change(path, value, PROD))


def test_digests_need_a_registry_to_pull_from():
    msg = rejected(with_change("images", {"digests": {"border": DIGEST}}, DEV))
    assert "bgp4mesh:images.digests: pins images pulled from `registry`" in msg


def test_tag_only_pulls_name_each_key_and_image():
    assert validate(DEV).tag_only_pulls() == {}  # a lab builds its images here
    assert validate(PROD).tag_only_pulls() == {
        "images.digests.border": "registry.example.net/bgp4mesh/border:1.0.0",
        "images.digests.netclient": "registry.example.net/bgp4mesh/netclient:1.0.0",
        "images.digests.monitoring": "registry.example.net/bgp4mesh/monitoring:1.0.0",  # prod ships with monitoring
        "netmaker.upstream_images.netmaker": PROD["netmaker"]["upstream_images"]["netmaker"],
        "netmaker.upstream_images.mosquitto": PROD["netmaker"]["upstream_images"]["mosquitto"],
        "netmaker.upstream_images.tls": PROD["netmaker"]["upstream_images"]["tls"],
    }
    pinned = with_change("images.digests", {"border": DIGEST, "netclient": DIGEST, "monitoring": DIGEST}, PROD)
    pinned["netmaker"]["upstream_images"] = {k: f"{ref}@{DIGEST}" for k, ref in PROD["netmaker"]["upstream_images"].items()}
    assert validate(pinned).tag_only_pulls() == {}


# ---- monitoring on real hosts ---------------------------------------------------------------


def test_monitoring_on_real_hosts_runs_on_the_control_host_and_its_image_is_pulled_like_ours():
    cfg = validate({**copy.deepcopy(PROD), "monitoring": {}})
    unmonitored = {k: v for k, v in copy.deepcopy(PROD).items() if k != "monitoring"}
    assert cfg.monitoring.host is None and cfg.netmaker.host == "control"
    assert cfg.tag_only_pulls()["images.digests.monitoring"] == "registry.example.net/bgp4mesh/monitoring:1.0.0"
    pinned = validate({**with_change("images.digests", {"monitoring": DIGEST}, PROD), "monitoring": {}})
    assert pinned.images.reference("monitoring") == f"registry.example.net/bgp4mesh/monitoring:1.0.0@{DIGEST}"
    assert "images.digests.monitoring" not in pinned.tag_only_pulls() and "images.digests.monitoring" not in validate(unmonitored).tag_only_pulls()


@pytest.mark.parametrize(
    "monitoring, control_endpoint, message",
    [
        ({"host": "nowhere"}, "192.0.2.30", "bgp4mesh:monitoring.host = 'nowhere': no such host (hosts: control, edge1, site-a)"),
        ({"host": "edge1"}, "192.0.2.30", "bgp4mesh:monitoring.host = 'edge1': must be Netmaker's host control: the control-plane exporter "
                                          "reads the broker over plain MQTT, which only that host reaches (clients get wss:// through the front"),
        ({}, None, "bgp4mesh:netmaker.host: host control runs the monitoring and needs an `endpoint`: every member's exporters answer that address alone"),
        ({"host": "control"}, None, "bgp4mesh:monitoring.host: host control runs the monitoring and needs an `endpoint`"),
    ],
)
def test_monitoring_on_real_hosts_is_refused_where_it_cannot_read_the_broker_or_be_told_apart(monitoring, control_endpoint, message):
    raw = {**with_change("hosts[1].endpoint", control_endpoint, PROD), "monitoring": monitoring}
    assert message in rejected(raw)


# ---- RPKI ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("rpki.invalid", "drop", "bgp4mesh:rpki.invalid = 'drop': "),
        ("rpki.retry", 0, "bgp4mesh:rpki.retry = 0: "),
        ("rpki.caches", [{"address": "172.31.0.5", "port": 70000}], "bgp4mesh:rpki.caches[0].port = 70000: "),
        ("rpki.caches", [{"address": "cache.example"}], "bgp4mesh:rpki.caches[0].address = 'cache.example': must be an IP address"),
        ("rpki.caches", [{"address": "172.31.0.5"}, {"address": "172.31.0.5", "port": 323}], "bgp4mesh:rpki.caches[1] = '172.31.0.5 port 323': the same cache as caches[0]"),
        ("rpki.caches", [{"address": "10.0.0.5"}], "bgp4mesh:rpki.caches[0].address = 10.0.0.5: a lab runs this cache on the underlay"),
        ("rpki.caches", [{"address": "172.31.0.10"}], "bgp4mesh:rpki.caches[0].address = 172.31.0.10: already the underlay address of border router border"),
        ("rpki.caches", [{"address": "172.31.0.254"}], "already the underlay address of the Docker bridge gateway"),
        ("rpki.severity", "high", "bgp4mesh:rpki.severity"),
        ("lab.roas", [{"prefix": "192.0.2.0/24", "max_length": 23, "asn": 64999}], "bgp4mesh:lab.roas[0].max_length = 23: must be from 24 to 32 for 192.0.2.0/24"),
        ("lab.roas", [{"prefix": "192.0.2.1/24", "asn": 64999}], "bgp4mesh:lab.roas[0].prefix = '192.0.2.1/24': host bits are set"),
        ("lab.roas", [{"prefix": "192.0.2.0/24", "asn": 23456}], "bgp4mesh:lab.roas[0].asn = 23456: "),
        ("lab.roa_refresh", 0, "bgp4mesh:lab.roa_refresh = 0: "),
        ("mesh.nodes[0].name", "rtr-cache-1", "bgp4mesh:mesh.nodes[0].name = 'rtr-cache-1': the container name of one of the lab's RTR caches"),
    ],
)
def test_rpki_fields_are_checked(path, value, message):
    assert message in rejected(with_change(path, value))


def test_a_labs_default_cache_is_on_its_underlay():
    cfg = validate(DEV)
    assert [(str(c.address), c.port) for c in cfg.rtr_caches] == [("172.31.0.5", 323)]
    assert cfg.rpki.invalid == "reject" and cfg.rpki.retry == 30
    assert [(str(r.prefix), r.longest, r.asn) for r in cfg.lab.roas] == [
        ("44.30.127.0/24", 24, 65000),
        ("192.0.2.0/24", 24, 64999),
        ("2001:db8:4430::/48", 48, 65000),
        ("2001:db8:1920::/48", 48, 64999),
    ]
    moved = validate(with_change("lab", {"underlay": "172.31.8.0/24"}))  # the engine test's day-two stack
    assert [str(c.address) for c in moved.rtr_caches] == ["172.31.8.5"]
    listed = validate(with_change("rpki.caches", [{"address": "172.31.0.6", "port": 8282}, {"address": "172.31.0.7"}]))
    assert [(str(c.address), c.port) for c in listed.rtr_caches] == [("172.31.0.6", 8282), ("172.31.0.7", 323)]


def test_a_roa_without_max_length_allows_no_more_specific():
    cfg = validate(with_change("lab.roas", [{"prefix": "192.0.2.0/24", "asn": "AS64999"}]))
    assert (cfg.lab.roas[0].longest, cfg.lab.roas[0].asn) == (24, 64999)


def test_roas_need_rpki_and_real_hosts_need_listed_caches():
    assert "bgp4mesh:lab.roas: served by the lab's RTR caches, which exist only with bgp4mesh:rpki" in rejected(with_change("rpki", DELETE))
    raw = copy.deepcopy(PROD)
    raw["rpki"] = {"invalid": "reject"}
    assert "bgp4mesh:rpki.caches: list at least one RTR cache" in rejected(raw)
    raw["rpki"]["caches"] = [{"address": "2001:db8::5", "port": 3323}]
    assert [(str(c.address), c.port) for c in validate(raw).rtr_caches] == [("2001:db8::5", 3323)]


# ---- a hardened BGP edge: session authentication and limits -----------------------------

NAKED = "bgp4mesh:upstreams[0]: neither a TCP-MD5 password nor GTSM"


def test_a_real_upstream_needs_a_password_or_gtsm_unless_it_says_unauthenticated():
    naked = with_change("upstreams[0].ttl_security", False, PROD)
    assert NAKED in rejected(naked)
    assert "pulumi config set --secret --path 'bgp4mesh:upstreams[0].password'" in rejected(naked)
    validate(with_change("upstreams[0].password", "md5-secret", naked))
    validate(with_change("upstreams[0].unauthenticated", True, naked))
    validate(with_change("upstreams[0].ttl_security", True, naked))
    # a `secure:` value in the stack file counts as a password (its placeholder)
    assert validate(with_change("upstreams[0].password", "[secret]", naked)).upstreams[0].password is not None


def test_a_lab_upstream_may_run_without_either():
    validate(with_change("upstreams[0].ttl_security", False))
    assert not any(u.password or u.ttl_security for u in validate(raw_from_file("lab")[0]).upstreams)


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("upstreams[0].max_received", 9, "bgp4mesh:upstreams[0].max_received = 9: below max_prefixes 10"),
        ("upstreams[0].max_received", 0, "bgp4mesh:upstreams[0].max_received = 0:"),
        ("policy.ibgp_max_received", 5, None),
        ("policy.kernel_table", 44, "bgp4mesh:policy.kernel_table = 44: the HA routers' table"),
        ("policy.kernel_table", 254, "bgp4mesh:policy.kernel_table = 254: the kernel's main table"),
        ("policy.kernel_table", 0, "bgp4mesh:policy.kernel_table = 0:"),
        ("policy.ibgp_limit_action", "drop", "bgp4mesh:policy.ibgp_limit_action = 'drop'"),
    ],
)
def test_edge_fields_are_checked(path, value, message):
    if message is None:  # alone it is fine; below ibgp_max_prefixes it is not
        validate(with_change(path, value))
        raw = with_change("policy.ibgp_max_prefixes", 6, with_change(path, value))
        assert "bgp4mesh:policy.ibgp_max_received = 5: below ibgp_max_prefixes 6" in rejected(raw)
        return
    assert message in rejected(with_change(path, value))


def test_check_refuses_ipv6_values_the_program_would_drop():
    """A v6 own prefix with no IPv6 session to announce it over is refused with its key, not
    accepted and silently left out; so is a v6 mesh or egress range exactly while the mesh
    does not carry IPv6 (config.MESH_FAMILIES)."""
    raw = plans.ipv4_only(DEV)  # no IPv6 session
    raw["prefixes"] = ["44.30.127.0/24", "2a0e:4430::/48"]
    raw["mesh"] = {**raw["mesh"], "range6": "2a0e:4430::/64", "egress_ranges": [*raw["mesh"]["egress_ranges"], "2001:db8::/32"]}
    with pytest.raises(ConfigError) as exc:
        validate(raw)
    message = str(exc.value)
    assert "bgp4mesh:prefixes[1] = 2a0e:4430::/48: no upstream has an IPv6 session" in message, message
    for key in ("bgp4mesh:mesh.range6", "bgp4mesh:mesh.egress_ranges[2]"):
        refused = f"{key} = " in message and "the mesh carries IPv4 only so far" in message.split(key, 1)[1].split("\n")[0]
        assert refused == (6 not in MESH_FAMILIES), message
    assert "prefixes[0]" not in message


V6_SESSION = {"link6": "2001:db8:30::/64", "neighbor6": "2001:db8:30::1", "local_address6": "2001:db8:30::100"}


def test_an_ipv6_session_announces_the_ipv6_prefixes():
    raw = plans.ipv4_only(DEV)
    assert validate(raw).upstreams[0].families == (4,)
    raw["prefixes"] = ["44.30.127.0/24", "2a0e:4430::/48"]
    raw["upstreams"][0].update(V6_SESSION)
    cfg = validate(raw)
    assert cfg.upstreams[0].families == (4, 6)
    raw["prefixes"] = ["44.30.127.0/24"]
    with pytest.raises(ConfigError, match=r"upstreams\[0\]\.link6 = 2001:db8:30::/64: an IPv6 session with nothing to announce"):
        validate(raw)


@pytest.mark.parametrize(
    "change, key, rule",
    [
        ({"neighbor6": "2001:db8:31::1"}, "neighbor6", "not inside link6 2001:db8:30::/64"),
        ({"local_address6": None}, "local_address6", "required with link6 2001:db8:30::/64"),
        ({"local_address6": "2001:db8:30::1"}, "local_address6", "same address as neighbor6"),
        ({"neighbor6": "2001:db8:30::"}, "neighbor6", "the network or broadcast address of link6"),
        ({"link6": None}, "neighbor6", "needs link6"),
        ({"neighbor6": "172.30.0.1"}, "neighbor6", "must be an IPv6 address"),
        ({"link6": "172.30.0.0/24"}, "link6", "must be an IPv6 prefix"),
    ],
)
def test_check_catches_bad_ipv6_session_input_with_key_paths(change, key, rule):
    raw = plans.ipv4_only(DEV)
    raw["prefixes"] = ["44.30.127.0/24", "2a0e:4430::/48"]
    raw["upstreams"][0].update({**V6_SESSION, **change})
    raw["upstreams"][0] = {k: v for k, v in raw["upstreams"][0].items() if v is not None}
    with pytest.raises(ConfigError) as exc:
        validate(raw)
    line = next((x for x in str(exc.value).splitlines() if f"bgp4mesh:upstreams[0].{key}" in x), "")
    assert rule in line, str(exc.value)
    shown = change.get(key)
    assert shown is None or f"= {shown}: " in line or f"= '{shown}': " in line, f"the offending value is named: {line}"


def test_ipv6_sessions_with_several_border_routers_are_refused_until_ipv6_ibgp():
    """The HA lab's IPv6 sessions need IPv6 iBGP between its routers: without
    lab.underlay6 to hold it, check refuses the stack by that key."""
    assert any(u.link6 is not None for u in validate(LAB).upstreams) and len(LAB["border_routers"]) > 1
    raw = copy.deepcopy(LAB)
    del raw["lab"]["underlay6"]
    message = rejected(raw)
    line = next((x for x in message.splitlines() if "bgp4mesh:lab.underlay6" in x), "")
    assert "need IPv6 iBGP" in line, message


def test_an_upstream_states_its_kind_and_a_real_one_has_no_mock_settings():
    raw = copy.deepcopy(DEV)
    assert validate(raw).upstreams[0].kind == "mock"
    raw["upstreams"][0]["kind"] = "real"
    with pytest.raises(ConfigError, match=r"upstreams\[0\]\.mock.*only an upstream of kind mock"):
        validate(raw)
    del raw["upstreams"][0]["mock"]
    raw["upstreams"][0]["kind"] = "mock"
    assert validate(raw).upstreams[0].mock is not None, "a mock without settings gets the defaults"

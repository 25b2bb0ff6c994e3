"""Render tier: every stack's BIRD configs parse with the real bird binary, and
the border's import/export policy behaves as the model says.

Behaviour is checked without any network: the rendered border config is run by
a real BIRD with its BGP and kernel protocols disabled, probe routes (with
chosen AS paths and communities) are fed from a static protocol through a pipe
whose filter is the upstream's own rendered import filter, and the surviving
routes are read back with birdc.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from ipaddress import ip_network
from pathlib import Path

import pytest

from bgp4mesh.bogons import BOGON_ASNS, BOGON_PREFIXES_V4
from bgp4mesh.config import StackConfig
from bgp4mesh.problems import ConfigError
from bgp4mesh import verify
from bgp4mesh.birdc import Target
from bgp4mesh.render import subtract_prefixes, subtract_ranges
from bgp4mesh.naming import bird_protocol, bird_rpki, bird_symbol
from bgp4mesh.stack import PROJECT_DIR, load_file, raw_from_file, validate
from tests.hostile_routes import MockRoute, with_routes
from tests import plans

STACKS = ("dev", "lab", "prod")
PUBLIC_ASN = 64000
"""Outside every bogon ASN range, for stacks whose bogon filter has no exemptions."""


# ---- the bird binary ----------------------------------------------------------


def _find(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)


@pytest.fixture(scope="session")
def bird() -> str:
    path = _find("bird")
    if path is None:
        pytest.fail("the render tier needs the real BIRD 2 binary: install bird2 (apt-get install bird2); not skipping")
    return path


@pytest.fixture(scope="session")
def birdc() -> str:
    path = _find("birdc")
    if path is None:
        pytest.fail("the render tier needs birdc (package bird2); not skipping")
    return path


def bird_parse(bird: str, files: dict[str, str], where: Path) -> subprocess.CompletedProcess:
    where.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        target = where / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return subprocess.run([bird, "-p", "-c", "bird.conf"], cwd=where, capture_output=True, text=True, timeout=30)


def assert_parses(bird: str, files: dict[str, str], where: Path) -> None:
    """Every top-level config among `files` (a border router has a normal and a drained one)."""
    for main in [rel for rel in files if "/" not in rel and rel.endswith(".conf")] or ["bird.conf"]:
        result = bird_parse(bird, {**files, "bird.conf": files[main]}, where)
        assert result.returncode == 0, f"bird -p of {main} failed in {where}:\n{result.stderr}{result.stdout}"


# ---- stacks -------------------------------------------------------------------


def stack_raw(stack: str) -> dict:
    return copy.deepcopy(raw_from_file(stack)[0])


def make(stack: str | dict = "dev", policy: dict | None = None, upstream: dict | None = None, **top):
    """A validated stack config: a stack file (or a raw model) with some keys changed."""
    return validate(changed(stack, policy, upstream, **top))


def changed(stack: str | dict = "dev", policy: dict | None = None, upstream: dict | None = None, **top) -> dict:
    raw = stack_raw(stack) if isinstance(stack, str) else copy.deepcopy(stack)
    if policy:
        raw["policy"] = {**raw.get("policy", {}), **policy}
    if upstream:
        raw["upstreams"][0] = {**raw["upstreams"][0], **upstream}
    raw.update(top)
    return raw


def dev_ipv4() -> dict:
    """The dev stack without its IPv6 (prefix, session, ...): for tests of IPv4 behaviour
    that take the lab's exemptions away (dev's IPv6 block is documentation space, a bogon),
    or that give the stack an IPv6 setup of their own."""
    return plans.ipv4_only(stack_raw("dev"))


def with_ipv6(raw: dict) -> StackConfig:
    """The model of `raw` with an IPv6 session on every upstream (its own /64 link). With
    several border routers `check` refuses IPv6 (no IPv6 iBGP yet), but the templates
    still lay out both families, and these tests keep that true."""
    raw = copy.deepcopy(raw)
    for i, u in enumerate(raw["upstreams"]):
        u.update(link6=f"2001:db8:ffff:{i}::/64", neighbor6=f"2001:db8:ffff:{i}::1", local_address6=f"2001:db8:ffff:{i}::2")
    if len(raw["border_routers"]) == 1:
        return validate(raw)
    return StackConfig.model_validate(raw)


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_file_parses(stack, bird, tmp_path):
    cfg = load_file(stack)
    rendered = plans.all_files(cfg)
    expected = {r.name for r in cfg.border_routers} | {u.name for u in cfg.upstreams if u.kind == "mock"}
    expected |= {"probe"} if cfg.lab and cfg.lab.probe else set()
    assert set(rendered) == expected
    for container, files in rendered.items():
        assert "bird.conf" in files
        assert_parses(bird, files, tmp_path / container)


@pytest.mark.parametrize("stack", STACKS)
def test_rendering_is_deterministic(stack, tmp_path):
    """The same files from separate processes with different hash seeds (set and
    dict order must never leak into a config)."""
    outs = []
    for seed in ("1", "2", "3"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-m", "bgp4mesh", "render", "--stack", stack, "--out", str(out)],
                              cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        outs.append({str(f.relative_to(out)): f.read_text() for f in sorted(out.rglob("*")) if f.is_file()})
    assert outs[0] and outs[0] == outs[1] == outs[2]
    assert outs[0] == {f"{c}/{rel}": text for c, files in plans.all_files(load_file(stack)).items() for rel, text in files.items()}


def test_bird_rejects_a_broken_config(bird, tmp_path):
    """The gate itself works: a config BIRD cannot parse fails bird -p."""
    files = plans.all_files(load_file("dev"))["border"]
    broken = {"bird.conf": files["bird.conf"].replace("import limit", "import limitt")}
    assert bird_parse(bird, broken, tmp_path).returncode != 0


# ---- user names that are BIRD words ----------------------------------------------

ISSUE_WORDS = ["primary", "router", "public", "gateway", "bgp", "static", "path", "local-pref", "community", "filter", "protocol"]


def bird_words(bird: str) -> list[str]:
    """Every word the bird binary knows (its NUL-terminated lower-case strings: the
    keyword table and more), as valid stack names ('_' -> '-')."""
    from bgp4mesh.config import RESERVED_NAMES
    from bgp4mesh.scalars import YAML_BOOL_WORDS, _NAME_RE

    found = {w.decode().replace("_", "-") for w in re.findall(rb"(?<=\0)[a-z][a-z0-9_]{0,31}(?=\0)", Path(bird).read_bytes())}
    return sorted(w for w in found | set(ISSUE_WORDS) if _NAME_RE.fullmatch(w) and w not in YAML_BOOL_WORDS | RESERVED_NAMES)


def test_bird_really_rejects_these_words_as_raw_names(bird, tmp_path):
    """Why no symbol is a raw name: BIRD 2 refuses many words, quoted or not."""
    for word in ("primary", "router", "static"):
        for name in (word, f"'{word}'"):
            text = f"router id 1.1.1.1;\nprotocol device {name} {{\n}}\n"
            assert bird_parse(bird, {"bird.conf": text}, tmp_path / word).returncode != 0, name


def test_every_bird_word_is_a_usable_upstream_name(bird, tmp_path):
    words = bird_words(bird)
    assert len(words) > 300
    raw = stack_raw("dev")
    base = {k: v for k, v in raw["upstreams"][0].items() if k != "mock"}
    raw["upstreams"] = [
        {**base, "name": w, "link": "10.0.0.0/16", "neighbor": f"10.0.{i // 250}.{i % 250 + 1}", "local_address": "10.0.255.254",
         "link6": "2001:db8:ac1e::/64", "neighbor6": f"2001:db8:ac1e::{i + 1:x}", "local_address6": "2001:db8:ac1e::ffff"}
        for i, w in enumerate(words)
    ]
    cfg = validate(raw)
    text = plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    # Both sessions of each upstream, the IPv4 one and the IPv6 one.
    assert set(blocks(text, "bgp")) == {bird_protocol(w, v) for w in words for v in (4, 6)}
    assert_parses(bird, {"bird.conf": text}, tmp_path)


@pytest.mark.parametrize("word", ISSUE_WORDS)
def test_bird_words_as_router_and_upstream_names_parse_on_both_sides(word, bird, tmp_path):
    raw = stack_raw("dev")
    raw["border_routers"][0]["name"] = word
    raw["upstreams"][0]["name"] = f"{word}-isp"
    cfg = validate(raw)
    for name, files in plans.all_files(cfg).items():
        assert_parses(bird, files, tmp_path / name)
    isp = plans.isp(cfg, cfg.upstreams[0])["bird.conf"]
    assert f"protocol bgp {bird_protocol(word)} {{" in isp


def test_bird_symbols_are_one_to_one():
    assert bird_protocol("isp-a") == "peer_isp_a" and bird_symbol("import_v4", "isp-a") == "import_v4_isp_a"
    names = ["a-b", "ab", "a-bb", "ab-b", "a--b"]
    assert len({bird_protocol(n) for n in names}) == len(names)


# ---- text-level policy --------------------------------------------------------


def blocks(text: str, kind: str) -> dict[str, str]:
    """{name: body} of every `protocol <kind> <name> { ... }` (brace-matched)."""
    out = {}
    for m in re.finditer(rf"^protocol {kind} '?([\w.-]+)'? \{{\n", text, re.M):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out[m.group(1)] = text[m.end() : i - 1]
    return out


def define_set(text: str, name: str) -> list[str] | None:
    m = re.search(rf"^define {name} = \[(.*?)\];", text, re.M | re.S)
    return None if m is None else [x.strip() for x in m.group(1).split(",") if x.strip()]


@pytest.mark.parametrize("stack", STACKS)
def test_border_sessions_follow_the_model(stack):
    cfg = load_file(stack)
    t = cfg.policy.timers
    owned = sorted({p.version for p in cfg.prefixes})
    for router in cfg.border_routers:
        text = plans.border(cfg, router)["bird.conf"]
        assert f"router id {router.router_id};" in text
        for v in (4, 6):
            mine = [p for p in cfg.prefixes if p.version == v]
            assert define_set(text, f"OWN_PREFIXES_v{v}") == ([str(p) for p in mine] if mine else None)
            assert define_set(text, f"OWN_SPACE_v{v}") == ([f"{p}+" for p in mine] if mine else None)
        # Origin: a static route, never the mesh interface; unreachable in the kernel.
        assert "protocol direct" not in text
        for v in owned:
            own = blocks(text, "static")[f"own_v{v}"]
            assert [f"route {p} unreachable;" for p in cfg.prefixes if p.version == v] == re.findall(r"route .*;", own)
        sessions = {name: body for name, body in blocks(text, "bgp").items() if not name.startswith("ibgp")}
        # One session per upstream and address family, each carrying its own family only.
        assert set(sessions) == {bird_protocol(u.name, v) for u in cfg.upstreams_of(router) for v in u.families}
        for u in cfg.upstreams_of(router):
            for v in u.families:
                body = sessions[bird_protocol(u.name, v)]
                local, neighbor = (u.local_address, u.neighbor) if v == 4 else (u.local_address6, u.neighbor6)
                other = 6 if v == 4 else 4
                assert f"local as {cfg.asn};" in body
                assert f"source address {local};" in body
                assert f"neighbor {neighbor} as {u.asn};" in body
                assert f"  ipv{v} {{" in body and f"ipv{other} {{" not in body
                assert f"import limit {u.max_prefixes} action {u.limit_action};" in body
                assert f"receive limit {u.receive_limit} action {u.limit_action};" in body
                assert ("ttl security on;" in body) == u.ttl_security
                assert f"import filter {bird_symbol(f'import_v{v}', u.name)};" in body
                assert f"import_v{other}" not in body and f"export_own_v{other}" not in body
                assert f'description "{u.name} AS{u.asn}{"" if v == 4 else " (IPv6)"}";' in body
                assert f"export filter {bird_symbol(f'export_v{v}', u.name) if u.prepend else f'export_own_v{v}'};" in body
                assert "import all" not in body and "export all" not in body
                assert f"enforce first as {'on' if cfg.policy.enforce_first_as else 'off'};" in body
                assert f"import keep filtered {'on' if cfg.policy.keep_filtered else 'off'};" in body
                assert f"hold time {t.hold};" in body and f"keepalive time {t.keepalive};" in body
                assert f"connect retry time {t.connect_retry};" in body
                assert f"connect delay time {t.connect_delay};" in body
                assert f"error wait time {t.error_wait_min}, {t.error_wait_max};" in body
                assert ("password" in body) == (u.password is not None)
        # v4-only stacks render no IPv6 at all.
        assert ("ipv6" in text) == (6 in owned)


def test_export_filter_names_only_own_prefixes_from_the_static_protocol():
    text = plans.all_files(load_file("dev"))["border"]["bird.conf"]
    m = re.search(r"^filter export_own_v4 \{\n(.*?)^\}", text, re.M | re.S)
    assert m, text
    lines = [line.strip() for line in m.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines == ['if source = RTS_STATIC && proto = "own_v4" && net ~ OWN_PREFIXES_v4 then accept;', "reject;"]


@pytest.mark.parametrize("action", ["warn", "block", "restart", "disable"])
def test_limit_action_is_the_configured_one(action, bird, tmp_path):
    cfg = make(upstream={"limit_action": action, "max_prefixes": 1234, "max_received": 2000})
    files = plans.border(cfg, cfg.border_routers[0])
    assert f"import limit 1234 action {action};" in files["bird.conf"]
    assert f"receive limit 2000 action {action};" in files["bird.conf"]
    assert_parses(bird, files, tmp_path)


def test_bogon_filter_off_renders_no_bogon_sets(bird, tmp_path):
    cfg = make(policy={"bogon_filter": False})
    text = plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    assert "BOGON" not in text and "reject_bogon" not in text
    # Still always: own space, AS_TRANS, path length, prefix length.
    for step in ("reject_own_v4();", "reject_as_trans();", "reject_long_as_path();", "reject_prefix_length_v4();"):
        assert step in text
    assert_parses(bird, {"bird.conf": text}, tmp_path)


def test_bogon_filter_on_without_exemptions_has_the_full_nlnog_lists():
    cfg = make(dev_ipv4(), asn=PUBLIC_ASN, upstream={"asn": 6939}, policy={"bogon_exempt_asns": [], "bogon_exempt_prefixes": []})
    text = plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    assert define_set(text, "BOGON_PREFIXES_v4") == [f"{p}+" for p in BOGON_PREFIXES_V4]
    assert define_set(text, "BOGON_ASNS") == [str(a) if a == b else f"{a}..{b}" for a, b in BOGON_ASNS]
    filt = re.search(r"^filter import_v4_isp \{\n(.*?)^\}", text, re.M | re.S).group(1)
    steps = [line.strip() for line in filt.splitlines()]
    # The order of the import steps.
    assert steps == [
        "reject_own_v4();",
        "reject_bogon_prefixes_v4();",
        "reject_bogon_asns();",
        "reject_prefix_length_v4();",  # the upstream has accept_default: true
        "reject_long_as_path();",
        "reject_as_trans();",
        "check_rpki_v4();",  # the dev stack validates origins (rpki)
        "bgp_local_pref = 100;",
        "honor_graceful_shutdown();",
        "accept;",
    ]


def test_lab_exemptions_leave_the_sets():
    cfg = load_file("dev")
    text = plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    bogons = define_set(text, "BOGON_PREFIXES_v4")
    for exempt in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"):
        assert not any(b.startswith(exempt) for b in bogons)
    assert "10.0.0.0/8+" in bogons
    asns = define_set(text, "BOGON_ASNS")
    assert "64512..65534" not in asns and "23456" in asns and "64496..64511" in asns


def test_default_route_step_follows_accept_default():
    on = make(upstream={"accept_default": True})
    off = make(upstream={"accept_default": False})
    assert "  reject_default_v4();" not in plans.border(on, on.border_routers[0])["bird.conf"]
    assert "  reject_default_v4();" in plans.border(off, off.border_routers[0])["bird.conf"]


def test_switches_follow_the_policy(bird, tmp_path):
    cfg = make(
        policy={
            "honor_graceful_shutdown": False,
            "export_to_kernel": False,
            "enforce_first_as": False,
            "keep_filtered": False,
            "max_as_path_length": 7,
            "max_prefix_length_v4": 22,
            "min_prefix_length_v4": 9,
        },
        prefixes=["44.30.124.0/22", *(p for p in stack_raw("dev")["prefixes"] if ":" in p)],
        mesh={**stack_raw("dev")["mesh"], "range": "44.30.127.0/24"},
    )
    text = plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    assert "graceful_shutdown" not in text and "65535, 0" not in text
    # nothing learned goes to the kernel; the own prefixes' unreachable route still does
    assert "RTS_BGP then accept" not in blocks(text, "kernel")["kernel_v4"]
    assert 'if source = RTS_STATIC && proto = "own_v4" then accept;' in blocks(text, "kernel")["kernel_v4"]
    assert "enforce first as off;" in text and "import keep filtered off;" in text
    assert "bgp_path.len > 7 then" in text
    assert "net.len > 22 || (net.len < 9 && net != 0.0.0.0/0)" in text
    assert_parses(bird, {"bird.conf": text}, tmp_path)


def test_kernel_exports_only_bgp_routes():
    text = plans.all_files(load_file("dev"))["border"]["bird.conf"]
    kernel = blocks(text, "kernel")["kernel_v4"]
    assert "import none;" in kernel and "learn off;" in kernel
    assert "if source = RTS_BGP then accept;" in kernel and "reject;" in kernel


def test_password_is_rendered_on_both_sides(bird, tmp_path):
    cfg = make(upstream={"password": "s3cr3t-\\x"})
    files = plans.all_files(cfg)
    assert 'password "s3cr3t-\\x";' in files["border"]["bird.conf"]
    assert 'password "s3cr3t-\\x";' in files["isp"]["bird.conf"]
    for name, f in files.items():
        assert_parses(bird, f, tmp_path / name)


@pytest.mark.parametrize("bad", ['a"b', '"', "a\nb", "tab\there", "x" * 81, "", "pässword", "\x7f", "é" * 41])
def test_unrepresentable_password_is_refused_by_the_model(bad):
    """Passwords BIRD or a peer cannot take never reach a template; the message
    names the key and the rule but never the value."""
    with pytest.raises(ConfigError, match=r"bgp4mesh:upstreams\[0\]\.password = \[secret\]: ") as info:
        make(upstream={"password": bad})
    assert len(bad) < 3 or bad not in str(info.value)


def test_longest_password_renders_and_parses(bird, tmp_path):
    cfg = make(upstream={"password": "x" * 79 + "!"})
    for name, files in plans.all_files(cfg).items():
        assert_parses(bird, files, tmp_path / name)


def test_ipv6_prefixes_add_the_ipv6_bits(bird, tmp_path):
    v4 = make(dev_ipv4())
    assert "ipv6" not in plans.border(v4, v4.border_routers[0])["bird.conf"]
    cfg = with_ipv6(changed(dev_ipv4(), prefixes=["44.30.127.0/24", "2a0e:4430::/48"]))
    text = plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    assert define_set(text, "OWN_PREFIXES_v6") == ["2a0e:4430::/48"]
    assert "protocol static own_v6" in text and "protocol kernel kernel_v6" in text
    assert "import filter import_v6_isp;" in text and "export filter export_own_v6;" in text
    assert "net.len > 48 || (net.len < 12 && net != ::/0)" in text
    assert_parses(bird, {"bird.conf": text}, tmp_path / "border")
    isp = plans.isp(cfg, cfg.upstreams[0])
    assert "ipv6 {" in isp["bird.conf"]
    assert_parses(bird, isp, tmp_path / "isp")


# ---- set arithmetic ------------------------------------------------------------


def test_subtract_prefixes():
    nets = [ip_network(p) for p in ("10.0.0.0/8", "192.0.2.0/24")]
    assert subtract_prefixes(nets, []) == ["10.0.0.0/8+", "192.0.2.0/24+"]
    assert subtract_prefixes(nets, [ip_network("192.0.2.0/24")]) == ["10.0.0.0/8+"]
    assert subtract_prefixes(nets, [ip_network("192.0.0.0/16")]) == ["10.0.0.0/8+"]
    # An exemption inside a bogon: the path down to it is exact, the rest P+.
    assert subtract_prefixes([ip_network("10.0.0.0/8")], [ip_network("10.128.0.0/9")]) == ["10.0.0.0/8", "10.0.0.0/9+"]
    assert subtract_prefixes([ip_network("10.0.0.0/8")], [ip_network("10.64.0.0/10")]) == [
        "10.0.0.0/8",
        "10.0.0.0/9",
        "10.0.0.0/10+",
        "10.128.0.0/9+",
    ]


def test_subtract_ranges():
    assert subtract_ranges([(0, 0), (64512, 65534)], [(64512, 65534)]) == [(0, 0)]
    assert subtract_ranges([(64512, 65534)], [(65000, 65001)]) == [(64512, 64999), (65002, 65534)]
    assert subtract_ranges([(64512, 65534)], [(64000, 64600), (65500, 70000)]) == [(64601, 65499)]
    assert subtract_ranges([(1, 10)], []) == [(1, 10)]


# ---- mock ISP -------------------------------------------------------------------


def test_mock_isp_test_addresses_are_the_first_of_each_announced_prefix():
    isp = plans.of(load_file("dev")).isps[0]
    assert isp.loopbacks == (
        "198.51.100.1/32",
        "203.0.113.1/32",
        "192.0.2.1/32",
        "2001:db8:5100::1/128",
        "2001:db8:2030::1/128",
        "2001:db8:1920::1/128",
    )
    assert isp.test_address == "198.51.100.1" == isp.test_address_of(4)
    assert isp.test_address_of(6) == "2001:db8:5100::1"
    assert plans.of(load_file("prod")).isps == ()


LAB_EXCHANGE = {
    4: {"isp-a": "172.30.18.1", "isp-b": "172.30.18.2", "probe": "172.30.18.3"},
    6: {"isp-a": "2001:db8:ac1e:12::1", "isp-b": "2001:db8:ac1e:12::2", "probe": "2001:db8:ac1e:12::3"},
}
"""The lab's exchange (lab.exchange, lab.exchange6): each peer at the same slot in both."""
CHANNEL = {4: "ipv4 {", 6: "ipv6 {"}
DEFAULT = {4: "0.0.0.0/0", 6: "::/0"}


def test_isp_follows_the_model():
    """Each mock ISP, in each family: its border router (with BFD and the drain honored),
    the other ISP and the probe on the exchange; it passes on everything it knows, like
    transit, each session carrying its own family's routes only."""
    cfg = load_file("lab")
    for u in cfg.upstreams:
        assert u.families == (4, 6)
        text = plans.isp(cfg, u)["bird.conf"]
        assert f"router id {u.neighbor};" in text and "protocol bfd {" in text
        sessions = blocks(text, "bgp")
        other = next(x for x in cfg.upstreams if x.name != u.name)
        assert set(sessions) == {bird_protocol(n, v) for v in (4, 6) for n in (u.router, other.name, "probe")}
        for v, (neighbor, local) in {4: (u.neighbor, u.local_address), 6: (u.neighbor6, u.local_address6)}.items():
            exchange = LAB_EXCHANGE[v]
            for name in (u.router, other.name, "probe"):
                body = sessions[bird_protocol(name, v)]
                assert CHANNEL[v] in body and CHANNEL[10 - v] not in body, body
            body = sessions[bird_protocol(u.router, v)]
            assert f"local as {u.asn};" in body and f"source address {neighbor};" in body
            assert f"neighbor {local} as {cfg.asn};" in body
            assert "import filter { honor_graceful_shutdown(); accept; };" in body and "export all;" in body
            assert "min rx interval 100 ms;" in body and "multiplier 3;" in body
            assert f"neighbor {exchange[other.name]} as {other.asn};" in sessions[bird_protocol(other.name, v)]
            assert f"source address {exchange[u.name]};" in sessions[bird_protocol("probe", v)]
            assert f"neighbor {exchange['probe']} as 65010;" in sessions[bird_protocol("probe", v)]
            routes = re.findall(r"route (\S+) blackhole", blocks(text, "static")[f"announce_v{v}"])
            assert routes == [str(p) for p in u.mock.announce if p.version == v] + [DEFAULT[v]]
            assert len(routes) == 2, "one test prefix of each family, and the default"
            assert "if source = RTS_BGP then accept;" in blocks(text, "kernel")[f"kernel_v{v}"]


def test_probe_follows_the_model():
    cfg = load_file("lab")
    text = plans.all_files(cfg)["probe"]["bird.conf"]
    assert "router id 172.30.18.3;" in text
    assert re.findall(r"route (\S+) blackhole", blocks(text, "static")["announce_v4"]) == ["192.0.2.0/24"]
    assert re.findall(r"route (\S+) blackhole", blocks(text, "static")["announce_v6"]) == ["2001:db8:1920::/48"]  # lab.probe.prefix6
    sessions = blocks(text, "bgp")
    assert set(sessions) == {bird_protocol(n, v) for n in ("isp-a", "isp-b") for v in (4, 6)}
    for body in sessions.values():
        assert "import all;" in body and "export where source = RTS_STATIC;" in body  # a customer: no transit
    for v in (4, 6):
        for isp, asn in (("isp-a", 65001), ("isp-b", 65002)):
            body = sessions[bird_protocol(isp, v)]
            assert f"neighbor {LAB_EXCHANGE[v][isp]} as {asn};" in body and f"source address {LAB_EXCHANGE[v]['probe']};" in body
            assert CHANNEL[v] in body and CHANNEL[10 - v] not in body, body


def test_isp_router_id_and_no_default():
    cfg = make(upstream={"mock": {"router_id": "10.9.9.9", "announce": ["198.51.100.0/24"], "default_route": False}})
    text = plans.isp(cfg, cfg.upstreams[0])["bird.conf"]
    assert "router id 10.9.9.9;" in text and "0.0.0.0/0" not in text


HOSTILE = [
    MockRoute("44.30.127.0/24"),
    MockRoute("44.30.127.0/25"),
    MockRoute("44.30.127.16/28"),
    MockRoute("10.0.0.0/8"),
    MockRoute("1.0.0.0/24", [23456]),
    MockRoute("1.0.1.0/24", list(range(1000, 1100))),
    MockRoute("1.0.2.0/24", [64496]),
]


def test_hostile_extra_routes_render_and_parse(bird, tmp_path):
    cfg = load_file("dev")
    files = {"bird.conf": with_routes(plans.isp(cfg, cfg.upstreams[0])["bird.conf"], HOSTILE + [MockRoute(f"11.0.{i}.0/24") for i in range(12)])}
    text = files["bird.conf"]
    extra = blocks(text, "static")["extra_v4"]
    assert "route 44.30.127.0/25 blackhole;" in extra and "route 11.0.11.0/24 blackhole;" in extra
    assert "bgp_path.prepend(23456);" in extra
    assert extra.count("bgp_path.prepend(") == 1 + 100 + 1
    # Prepends go on in reverse so the border sees the path in the given order.
    long_route = re.search(r"route 1\.0\.1\.0/24 blackhole \{(.*?)\};", extra, re.S).group(1)
    assert [int(a) for a in re.findall(r"prepend\((\d+)\)", long_route)] == list(range(1099, 999, -1))
    assert_parses(bird, files, tmp_path)


def test_mock_route_validation():
    assert MockRoute("1.2.3.0/24").path == ()
    assert MockRoute(ip_network("1.2.3.0/24"), [1, 2]).path == (1, 2)
    with pytest.raises(ValueError):
        MockRoute("1.2.3.4/24")
    with pytest.raises(ValueError):
        MockRoute("1.2.3.0/24", [2**32])
    with pytest.raises(ValueError, match="twice"):
        with_routes("", [MockRoute("1.2.3.0/24"), MockRoute("1.2.3.0/24", [5])])


def test_isp_extra_prepends_behave(bird, birdc):
    """The mock ISP's extra routes carry exactly the requested path inside BIRD
    (BGP adds the ISP's own ASN in front on export)."""
    cfg = load_file("dev")
    text = with_routes(plans.isp(cfg, cfg.upstreams[0])["bird.conf"], [MockRoute("1.0.0.0/24", [23456]), MockRoute("1.0.1.0/24", [7, 8, 9])])
    with RunningBird(bird, birdc, text) as b:
        out = b.query("show route protocol extra_v4 all")
    paths = dict(re.findall(r"^(\S+/\d+)\s.*?BGP\.as_path: ([\d ]+)$", out, re.M | re.S))
    assert paths == {"1.0.0.0/24": "23456", "1.0.1.0/24": "7 8 9"}, out


# ---- behaviour: the import filter in a running BIRD -----------------------------


class RunningBird:
    """A real BIRD running a rendered config with BGP, BFD and kernel protocols
    disabled (no sockets, no kernel routes), for filter behaviour tests."""

    def __init__(self, bird: str, birdc: str, text: str, harness: str = ""):
        self.bird, self.birdc = bird, birdc
        self.text = re.sub(r"^(protocol (?:bgp \S+|kernel \S+|rpki \S+|bfd) \{\n)", r"\1  disabled;\n", text, flags=re.M) + harness

    def __enter__(self) -> "RunningBird":
        self.dir = Path(tempfile.mkdtemp(prefix="b4m-bird-", dir="/tmp"))  # short unix socket path
        (self.dir / "bird.conf").write_text(self.text)
        self.sock = str(self.dir / "s")
        self.proc = subprocess.Popen(
            [self.bird, "-f", "-c", "bird.conf", "-s", self.sock],
            cwd=self.dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bird exited: {self.proc.stdout.read()}")
            if os.path.exists(self.sock) and "up" in self.query("show protocols", check=False):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("bird did not come up")
        return self

    def query(self, command: str, check: bool = True) -> str:
        r = subprocess.run([self.birdc, "-s", self.sock, *command.split()], capture_output=True, text=True, timeout=10)
        if check:
            assert r.returncode == 0, r.stderr + r.stdout
        return r.stdout

    def settled(self, command: str) -> str:
        """The answer once two reads in a row agree (route propagation is async)."""
        last = None
        for _ in range(50):
            out = self.query(command)
            if out == last:
                return out
            last = out
            time.sleep(0.1)
        return out

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log = self.proc.stdout.read()
        shutil.rmtree(self.dir, ignore_errors=True)


def _probe_route(prefix: str, path: list[int], gshut: bool) -> str:
    stmts = [f"bgp_path.prepend({a});" for a in reversed(path)]
    if gshut:
        stmts.append("bgp_community.add((65535, 0));")
    return f"  route {prefix} blackhole {{ {' '.join(stmts)} }};\n" if stmts else f"  route {prefix} blackhole;\n"


def import_verdicts(bird, birdc, cfg, probes, upstream=None, harness: str = "") -> dict[str, str]:
    """Feed probe routes through the upstream's rendered import filter (`harness`: more
    config, e.g. ROAs).

    probes: (prefix, path as received -- neighbour ASN first, gshut?) tuples.
    Returns {prefix: "accept" | "accept lp0" | "reject"}."""
    router = cfg.border_routers[0]
    upstream = upstream or cfg.upstreams_of(router)[0]
    text = plans.border(cfg, router)["bird.conf"]
    by_family: dict[str, list] = {}
    for prefix, path, gshut in probes:
        by_family.setdefault("v4" if ip_network(prefix).version == 4 else "v6", []).append((prefix, path, gshut))
    for tag, routes in by_family.items():
        fam = "ipv4" if tag == "v4" else "ipv6"
        harness += f"\n{fam} table probe_in_{tag};\n{fam} table probe_out_{tag};\n"
        harness += f"protocol static probe_{tag} {{\n  {fam} {{ table probe_in_{tag}; }};\n"
        harness += "".join(_probe_route(*r) for r in routes) + "}\n"
        harness += (
            f"protocol pipe probe_pipe_{tag} {{\n  table probe_in_{tag};\n  peer table probe_out_{tag};\n"
            f"  import none;\n  export filter {bird_symbol(f'import_{tag}', upstream.name)};\n}}\n"
        )
    verdicts = {p: "reject" for p, _, _ in probes}
    with RunningBird(bird, birdc, text, harness) as b:
        for tag in by_family:
            out = b.settled(f"show route table probe_out_{tag} all")
            for m in re.finditer(r"^(\S+/\d+)\s+blackhole.*?(?=^\S|\Z)", out, re.M | re.S):
                verdicts[m.group(1)] = "accept lp0" if "BGP.local_pref: 0" in m.group(0) else "accept"
    return verdicts


def long_path(n: int, first: int) -> list[int]:
    return [first] + [1000 + i for i in range(n - 1)]


def test_dev_import_policy_behaviour(bird, birdc):
    """The dev stack: private ASNs and RFC 5737 nets exempt, default accepted."""
    cfg = load_file("dev")
    isp = 65001
    expect = {
        # accepted
        "198.51.100.0/24": ([isp], "accept"),  # exempt test net
        "203.0.113.0/24": ([isp, 64512], "accept"),  # exempt private ASN
        "192.0.2.0/24": ([isp], "accept"),
        "0.0.0.0/0": ([isp], "accept"),  # accept_default
        "8.0.0.0/8": ([isp, 3356], "accept"),  # min length
        "1.1.1.0/24": ([isp, 13335], "accept"),
        "1.0.100.0/24": (long_path(100, isp), "accept"),  # exactly max_as_path_length
        # rejected
        "44.30.127.0/24": ([isp], "reject"),  # own prefix
        "44.30.127.0/25": ([isp], "reject"),  # inside own prefix
        "44.30.127.16/28": ([isp], "reject"),
        "10.0.0.0/8": ([isp], "reject"),  # bogon
        "10.1.0.0/16": ([isp], "reject"),  # inside a bogon
        "192.168.1.0/24": ([isp], "reject"),
        "192.0.2.0/25": ([isp], "reject"),  # exempt from bogons, still too long
        "1.2.3.0/25": ([isp], "reject"),  # longer than /24
        "4.0.0.0/7": ([isp], "reject"),  # shorter than /8
        "1.0.0.0/24": ([isp, 23456], "reject"),  # AS_TRANS
        "1.0.101.0/24": (long_path(101, isp), "reject"),  # longer than 100
        "1.0.2.0/24": ([isp, 64496], "reject"),  # documentation ASN, not exempt
        "1.0.3.0/24": ([isp, 4200000001], "reject"),  # 32-bit private ASN
        "1.0.4.0/24": ([isp, 65536], "reject"),  # documentation 32-bit
    }
    probes = [(p, path, False) for p, (path, _) in expect.items()] + [("1.0.5.0/24", [isp, 3356], True)]
    got = import_verdicts(bird, birdc, cfg, probes)
    want = {p: v for p, (_, v) in expect.items()} | {"1.0.5.0/24": "accept lp0"}
    assert got == want


def test_bogon_filter_off_behaviour(bird, birdc):
    cfg = make(policy={"bogon_filter": False})
    got = import_verdicts(
        bird,
        birdc,
        cfg,
        [
            ("10.0.0.0/8", [65001], False),
            ("1.0.2.0/24", [65001, 64496], False),
            ("1.0.0.0/24", [65001, 23456], False),  # AS_TRANS: always
            ("44.30.127.0/25", [65001], False),  # own space: always
            ("1.2.3.0/25", [65001], False),  # length: always
        ],
    )
    assert got == {
        "10.0.0.0/8": "accept",
        "1.0.2.0/24": "accept",
        "1.0.0.0/24": "reject",
        "44.30.127.0/25": "reject",
        "1.2.3.0/25": "reject",
    }


def test_bogon_filter_without_exemptions_behaviour(bird, birdc):
    """Prod-like: no exemptions, so the lab's test nets and private ASNs are bogons
    (own and upstream ASN public, as the model demands)."""
    cfg = make(dev_ipv4(), asn=PUBLIC_ASN, upstream={"asn": 6939}, policy={"bogon_exempt_asns": [], "bogon_exempt_prefixes": []})
    got = import_verdicts(
        bird,
        birdc,
        cfg,
        [
            ("198.51.100.0/24", [6939], False),
            ("1.1.1.0/24", [6939, 65001], False),
            ("1.1.2.0/24", [6939, 13335], False),
        ],
    )
    assert got == {"198.51.100.0/24": "reject", "1.1.1.0/24": "reject", "1.1.2.0/24": "accept"}


def test_exemption_inside_a_bogon_behaviour(bird, birdc):
    # 2001:db8::/32 stays exempt for dev's own IPv6 block; the probes are IPv4.
    cfg = make(policy={"bogon_exempt_prefixes": ["10.64.0.0/10", "2001:db8::/32"], "bogon_exempt_asns": [{"first": 65000, "last": 65001}]})
    probes = [
        ("10.64.0.0/10", [65001], False),
        ("10.65.1.0/24", [65001], False),
        ("10.0.0.0/8", [65001], False),
        ("10.0.0.0/9", [65001], False),
        ("10.128.0.0/16", [65001], False),
        ("10.1.0.0/16", [65001], False),
        ("1.1.1.0/24", [65001, 65002], False),  # 65002 is not exempt
    ]
    got = import_verdicts(bird, birdc, cfg, probes)
    assert got == {
        "10.64.0.0/10": "accept",
        "10.65.1.0/24": "accept",
        "10.0.0.0/8": "reject",
        "10.0.0.0/9": "reject",
        "10.128.0.0/16": "reject",
        "10.1.0.0/16": "reject",
        "1.1.1.0/24": "reject",
    }


def test_switches_behaviour(bird, birdc):
    cfg = make(
        policy={"honor_graceful_shutdown": False, "max_as_path_length": 3},
        upstream={"accept_default": False},
    )
    got = import_verdicts(
        bird,
        birdc,
        cfg,
        [
            ("0.0.0.0/0", [65001], False),
            ("1.0.0.0/24", [65001, 1, 2], False),
            ("1.0.1.0/24", [65001, 1, 2, 3], False),
            ("1.0.2.0/24", [65001], True),
        ],
    )
    assert got == {"0.0.0.0/0": "reject", "1.0.0.0/24": "accept", "1.0.1.0/24": "reject", "1.0.2.0/24": "accept"}


def test_ipv6_import_behaviour(bird, birdc):
    cfg = with_ipv6(changed(dev_ipv4(), prefixes=["44.30.127.0/24", "2a0e:4430::/48"]))
    got = import_verdicts(
        bird,
        birdc,
        cfg,
        [
            ("2a0e:4430::/48", [65001], False),  # own
            ("2a0e:4430:1::/64", [65001], False),  # inside own
            ("3fff::/20", [65001], False),  # bogon (documentation, RFC 9637)
            ("2001:db8:5100::/48", [65001], False),  # a bogon the lab exempts (2001:db8::/32)
            ("fc00::/8", [65001], False),  # ULA
            ("::/0", [65001], False),  # accept_default
            ("2a00:1450::/32", [65001, 15169], False),
            ("2a00:1450:1::/49", [65001, 15169], False),  # too long
            ("2a00::/11", [65001], False),  # too short
        ],
    )
    assert got == {
        "2a0e:4430::/48": "reject",
        "2a0e:4430:1::/64": "reject",
        "3fff::/20": "reject",
        "2001:db8:5100::/48": "accept",
        "fc00::/8": "reject",
        "::/0": "accept",
        "2a00:1450::/32": "accept",
        "2a00:1450:1::/49": "reject",
        "2a00::/11": "reject",
    }


def test_export_filter_behaviour(bird, birdc):
    """Only the own_v4 static route passes the export filter; a same-space route
    from any other protocol does not."""
    cfg = load_file("dev")
    text = plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    harness = (
        "\nipv4 table probe_export;\n"
        "protocol static probe_other {\n  ipv4;\n  route 1.1.1.0/24 blackhole;\n  route 44.30.127.128/25 blackhole;\n"
        "  route 0.0.0.0/0 blackhole;\n}\n"
        "protocol pipe probe_pipe {\n  table master4;\n  peer table probe_export;\n  import none;\n"
        "  export filter export_own_v4;\n}\n"
    )
    with RunningBird(bird, birdc, text, harness) as b:
        out = b.settled("show route table probe_export")
    assert re.findall(r"^(\S+/\d+)", out, re.M) == ["44.30.127.0/24"], out
    assert "[own_v4 " in out


# ---- high availability: per-upstream policy, BFD, iBGP, the drained config -------------


def test_ha_sessions_follow_the_model():
    """lab: each router's upstream with its local-pref, prepends and BFD intervals, and
    iBGP to the other router over the underlay (direct, next hop self, BFD)."""
    cfg = load_file("lab")
    underlay = {  # lab.underlay and lab.underlay6, each router at the same slot
        4: {"border-a": "172.31.16.10", "border-b": "172.31.16.11"},
        6: {"border-a": "2001:db8:ac1f:10::a", "border-b": "2001:db8:ac1f:10::b"},
    }
    for router in cfg.border_routers:
        text = plans.border(cfg, router)["bird.conf"]
        (u,) = cfg.upstreams_of(router)
        assert u.families == (4, 6) and "protocol bfd {" in text
        sessions = blocks(text, "bgp")
        other = next(r.name for r in cfg.border_routers if r.name != router.name)
        ibgp_name = {4: bird_symbol("ibgp", other), 6: bird_symbol("ibgp6", other)}
        assert set(sessions) == {bird_protocol(u.name, v) for v in (4, 6)} | set(ibgp_name.values())
        for v in (4, 6):
            ebgp = sessions[bird_protocol(u.name, v)]
            assert f"min rx interval {u.bfd.interval_ms} ms;" in ebgp and f"multiplier {u.bfd.multiplier};" in ebgp
            assert "graceful;" not in ebgp
            assert f"import filter {bird_symbol(f'import_v{v}', u.name)};" in ebgp
            filt = re.search(rf"^filter {bird_symbol(f'import_v{v}', u.name)} \{{\n(.*?)^\}}", text, re.M | re.S).group(1)
            assert f"bgp_local_pref = {u.local_pref};" in filt
            assert filt.index("bgp_local_pref") < filt.index("honor_graceful_shutdown();")  # the drain wins
            ibgp = sessions[ibgp_name[v]]
            assert f"neighbor {underlay[v][other]} as {cfg.asn};" in ibgp and f"local as {cfg.asn};" in ibgp
            assert CHANNEL[v] in ibgp and CHANNEL[10 - v] not in ibgp, ibgp
            for line in ("direct;", "next hop self;", f"import filter ibgp_import_v{v};", f"export filter ibgp_export_v{v};", "min rx interval 100 ms;"):
                assert line in ibgp, line
            # iBGP passes on our own prefixes and this router's upstream routes only
            export = re.search(rf"^filter ibgp_export_v{v} \{{\n(.*?)^\}}", text, re.M | re.S).group(1)
            own, *learned = re.findall(r'proto = "(\w+)"', export)
            assert own == f"own_v{v}" and bird_protocol(u.name, v) in learned
            assert set(learned) <= {bird_protocol(u.name, w) for w in (4, 6)}, learned


def test_one_router_renders_no_ibgp_and_no_bfd():
    cfg = load_file("dev")
    files = plans.border(cfg, cfg.border_routers[0])
    for text in files.values():
        assert "ibgp" not in text and "bfd" not in text


@pytest.mark.parametrize("mode", ["on", "graceful"])
def test_bfd_intervals_and_mode_come_from_the_model(mode, bird, tmp_path):
    cfg = make(upstream={"bfd": {"interval_ms": 250, "multiplier": 5, "mode": mode}})
    files = plans.all_files(cfg)
    for name in ("border", "isp"):
        body = blocks(files[name]["bird.conf"], "bgp")[bird_protocol("isp" if name == "border" else "border")]
        assert "min rx interval 250 ms;" in body and "min tx interval 250 ms;" in body and "multiplier 5;" in body
        assert ("graceful;" in body) == (mode == "graceful")
        assert_parses(bird, files[name], tmp_path / name)


def export_view(bird, birdc, text: str, filter_name: str) -> dict[str, str]:
    """{prefix: attributes} of what `filter_name` lets out of master4: the own prefix and
    a route of another protocol (which no export may pass)."""
    harness = (
        "\nipv4 table probe_export;\n"
        "protocol static probe_other {\n  ipv4;\n  route 1.1.1.0/24 blackhole;\n  route 44.30.127.128/25 blackhole;\n}\n"
        f"protocol pipe probe_pipe {{\n  table master4;\n  peer table probe_export;\n  import none;\n  export filter {filter_name};\n}}\n"
    )
    with RunningBird(bird, birdc, text, harness) as b:
        out = b.settled("show route table probe_export all")
    return {m.group(1): m.group(0) for m in re.finditer(r"^(\S+/\d+)\s.*?(?=^\S|\Z)", out, re.M | re.S)}


def as_path(attrs: str) -> str:
    m = re.search(r"BGP\.as_path: ?([\d ]*)$", attrs, re.M)
    return m.group(1).strip() if m else ""


@pytest.mark.parametrize("drained", [False, True], ids=["normal", "drained"])
def test_announcements_carry_prepends_and_the_drain(drained, bird, birdc):
    """What each session sends, in a running BIRD: border-b prepends twice toward isp-b (the
    backup), border-a not at all; drained, both add policy.drain_prepend and 65535:0, on
    iBGP too; a route of any other protocol never leaves."""
    cfg = load_file("lab")
    files = {r.name: plans.border(cfg, r)["bird-drained.conf" if drained else "bird.conf"] for r in cfg.border_routers}
    extra = cfg.policy.drain_prepend if drained else 0
    for router, upstream, prepends in (("border-a", "isp-a", 0), ("border-b", "isp-b", 2)):
        text = files[router]
        session = blocks(text, "bgp")[bird_protocol(upstream)]
        name = re.search(r"export filter (\w+);", session).group(1)
        for filter_name, want_path in ((name, prepends + extra), ("ibgp_export_v4", 0)):
            seen = export_view(bird, birdc, text, filter_name)
            assert set(seen) == {"44.30.127.0/24"}, (router, filter_name, seen)
            assert as_path(seen["44.30.127.0/24"]) == " ".join(["65000"] * want_path), (router, filter_name)
            assert ("(65535,0)" in seen["44.30.127.0/24"]) == drained, (router, filter_name)


def test_local_pref_per_upstream_and_the_drain_behaviour(bird, birdc):
    """Routes from isp-a get local-pref 200 on border-a, from isp-b 100 on border-b; a route
    tagged 65535:0 gets 0 on either, and over iBGP."""
    cfg = load_file("lab")
    for router, upstream, lp in (("border-a", "isp-a", 200), ("border-b", "isp-b", 100)):
        text = plans.border(cfg, next(r for r in cfg.border_routers if r.name == router))["bird.conf"]
        for filt in (bird_symbol("import_v4", upstream), "ibgp_import_v4"):
            harness = (
                "\nipv4 table probe_in;\nipv4 table probe_out;\n"
                "protocol static probe_routes {\n  ipv4 { table probe_in; };\n"
                "  route 1.1.1.0/24 blackhole { bgp_path.prepend(64999); bgp_local_pref = 100; };\n"
                "  route 1.1.2.0/24 blackhole { bgp_path.prepend(64999); bgp_local_pref = 100; bgp_community.add((65535, 0)); };\n}\n"
                f"protocol pipe probe_pipe {{\n  table probe_in;\n  peer table probe_out;\n  import none;\n  export filter {filt};\n}}\n"
            )
            with RunningBird(bird, birdc, text, harness) as b:
                out = b.settled("show route table probe_out all")
            prefs = dict(re.findall(r"^(\S+/\d+)\s.*?BGP\.local_pref: (\d+)", out, re.M | re.S))
            want = lp if filt.startswith("import") else 100  # iBGP keeps what the peer set
            assert prefs == {"1.1.1.0/24": str(want), "1.1.2.0/24": "0"}, (router, filt, out)


# ---- RPKI route origin validation -------------------------------------------------


def with_rpki(stack: str = "dev", **rpki):
    raw = stack_raw(stack)
    raw["rpki"] = {**raw.get("rpki", {}), **rpki}
    return validate(raw)


def test_rpki_follows_the_model(bird, tmp_path):
    """A ROA table per family, one `protocol rpki` per cache (RTR over TCP, the router's own
    retry), every eBGP import filter checking the origin, and the eBGP channels kept in an
    import table so a ROA change re-validates them without a session reset (BIRD 2.0.12
    reloads a BGP channel automatically only from its import table)."""
    rpki = {"caches": [{"address": "172.31.0.5"}, {"address": "172.31.0.6", "port": 8282}], "retry": 7}
    cfg = with_rpki(**rpki)
    text = plans.border(cfg, cfg.border_routers[0])["bird.conf"]
    assert "roa4 table roa_v4;" in text and "roa6 table roa_v6;" in text  # dev is dual-stack
    caches = blocks(text, "rpki")
    assert set(caches) == {bird_rpki(0), bird_rpki(1)} == {"rpki_cache_1", "rpki_cache_2"}
    assert "remote 172.31.0.5 port 323;" in caches["rpki_cache_1"] and "remote 172.31.0.6 port 8282;" in caches["rpki_cache_2"]
    assert all("roa4 { table roa_v4; };" in c and "roa6 { table roa_v6; };" in c and "retry keep 7;" in c for c in caches.values())
    for v in (4, 6):
        check = re.search(rf"^function check_rpki_v{v}\(\) \{{\n(.*?)^\}}", text, re.M | re.S).group(1)
        assert f"roa_check(roa_v{v}, net, bgp_path.last) = ROA_INVALID" in check and "reject;" in check
        channel = blocks(text, "bgp")[bird_protocol("isp", v)]
        assert "import table on;" in channel and "rpki reload on;" in channel
    v4_only = make(dev_ipv4(), rpki={**stack_raw("dev")["rpki"], **rpki})
    assert "roa4 table roa_v4;" in plans.border(v4_only, v4_only.border_routers[0])["bird.conf"]
    assert "roa6" not in plans.border(v4_only, v4_only.border_routers[0])["bird.conf"]
    assert_parses(bird, plans.border(cfg, cfg.border_routers[0]), tmp_path)


def test_rpki_off_renders_none_of_it():
    cfg = load_file("prod")
    for text in plans.border(cfg, cfg.border_routers[0]).values():
        assert "roa" not in text and "rpki" not in text and "import table" not in text


def test_rpki_ipv6_and_ibgp(bird, tmp_path):
    """IPv6 prefixes get a roa6 table; iBGP channels validate nothing and keep no import
    table (it breaks recursive next hops); the drained file validates the same."""
    raw = stack_raw("lab")
    raw["prefixes"] = ["44.30.127.0/24", "2a0e:4430::/48"]
    raw["rpki"] = {}
    cfg = with_ipv6(raw)
    files = plans.border(cfg, cfg.border_routers[0])
    for text in files.values():
        assert "roa6 table roa_v6;" in text and "roa6 { table roa_v6; };" in blocks(text, "rpki")["rpki_cache_1"]
        assert "remote 172.31.16.5 port 323;" in text  # the lab's own cache: lab.underlay + 5
        ibgp = blocks(text, "bgp")[bird_symbol("ibgp", "border-b")]
        assert "import table" not in ibgp and "rpki" not in ibgp
        assert "check_rpki_v6();" in re.search(r"^filter import_v6_isp_a \{\n(.*?)^\}", text, re.M | re.S).group(1)
    assert_parses(bird, files, tmp_path)


ROAS = (
    "\nprotocol static roas_v4 {\n  roa4 { table roa_v4; };\n"
    "  route 192.0.2.0/24 max 24 as 64999;\n  route 44.30.127.0/24 max 24 as 65000;\n  route 1.1.0.0/16 max 20 as 13335;\n}\n"
)
"""What a cache would have served (a static protocol of the ROA table; the rpki protocols are off)."""
ROV_PROBES = [
    ("192.0.2.0/24", [65001], False),  # a ROA for another origin: invalid
    ("198.51.100.0/24", [65001], False),  # no ROA: not found
    ("1.1.0.0/20", [65001, 13335], False),  # valid, up to max length
    ("1.1.1.0/24", [65001, 13335], False),  # longer than max length: invalid
    ("1.1.0.0/16", [65001, 64999], False),  # covered, wrong origin: invalid
]


@pytest.mark.parametrize("invalid", ["reject", "accept"])
def test_origin_validation_behaviour(invalid, bird, birdc):
    """RFC 6811 in a running BIRD: invalid routes are rejected (or, with invalid: accept, kept
    and logged); not found and valid ones are accepted. The dev stack's own ROAs decide."""
    got = import_verdicts(bird, birdc, with_rpki(invalid=invalid), ROV_PROBES, harness=ROAS)
    invalids = {"192.0.2.0/24", "1.1.1.0/24", "1.1.0.0/16"}
    assert got == {p: "reject" if p in invalids and invalid == "reject" else "accept" for p, _, _ in ROV_PROBES}


def test_no_roas_fail_open(bird, birdc):
    """Every cache gone and its ROAs expired: an empty ROA table makes every route not found,
    so nothing is rejected for its origin."""
    got = import_verdicts(bird, birdc, load_file("dev"), ROV_PROBES)
    assert set(got.values()) == {"accept"}


class LocalBird(Target):
    """A birdc target on a RunningBird's socket instead of a container."""

    def __init__(self, running: "RunningBird"):
        super().__init__("local")
        self.running = running

    def run(self, *cmd: str, timeout: float = 20, input=None) -> subprocess.CompletedProcess:
        assert cmd[0] == "birdc", cmd
        return subprocess.run([self.running.birdc, "-s", self.running.sock, *cmd[1:]], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("own_roa, want", [("65000", "valid"), (None, "not found"), ("64999", "invalid")])
def test_verify_reads_the_routers_roa_state(own_roa, want, bird, birdc, monkeypatch):
    """verify's RPKI checks against a real BIRD: the own prefix's state from `eval roa_check`
    (FAIL only when invalid), and with no cache answering, fail open said plainly."""
    cfg = load_file("dev")  # dual-stack: an own prefix of each family, a ROA table of each
    roas = (
        f"\nprotocol static roas_v4 {{\n  roa4 {{ table roa_v4; }};\n  route 44.30.127.0/24 max 24 as {own_roa};\n}}\n"
        f"\nprotocol static roas_v6 {{\n  roa6 {{ table roa_v6; }};\n  route 2001:db8:4430::/48 max 48 as {own_roa};\n}}\n"
        if own_roa
        else ""
    )
    with RunningBird(bird, birdc, plans.border(cfg, cfg.border_routers[0])["bird.conf"], roas) as b:
        monkeypatch.setattr(verify, "target", lambda *a, **k: LocalBird(b))
        caches, own = verify.rpki_checks(plans.of(cfg), "dev")
        assert caches.name == "rpki border: RTR caches answer"
        assert own.name == "rpki border: 44.30.127.0/24, 2001:db8:4430::/48 from AS 65000 not invalid"
        with pytest.raises(verify.CheckFailed, match=rf"fail open: no cache \(rpki_cache_1 down\); {2 if own_roa else 'no'} ROA"):
            caches.run()
        if want == "invalid":
            with pytest.raises(verify.CheckFailed, match="44.30.127.0/24 invalid, 2001:db8:4430::/48 invalid"):
                own.run()
        else:
            assert own.run() == f"44.30.127.0/24 {want}, 2001:db8:4430::/48 {want}"


def test_vrps_are_the_labs_roas():
    vrps = json.loads(plans.vrps(load_file("dev")))
    assert vrps == {
        "roas": [
            {"prefix": "44.30.127.0/24", "maxLength": 24, "asn": 65000},
            {"prefix": "192.0.2.0/24", "maxLength": 24, "asn": 64999},
            {"prefix": "2001:db8:4430::/48", "maxLength": 48, "asn": 65000},
            {"prefix": "2001:db8:1920::/48", "maxLength": 48, "asn": 64999},
        ]
    }
    assert json.loads(plans.vrps(load_file("prod"))) == {"roas": []}


# ---- the hardened edge: limits, GTSM, the kernel's tables -------------------------


def test_every_session_has_a_receive_and_an_import_limit_ibgp_too(bird, tmp_path):
    """Filtered routes cost memory too (receive limit); iBGP is limited by what another
    router may rightly send, unless the policy says otherwise."""
    cfg = load_file("lab")
    imported, received = cfg.ibgp_limits()
    assert imported == len(cfg.prefixes) + sum(u.max_prefixes for u in cfg.upstreams)
    assert received == len(cfg.prefixes) + sum(u.receive_limit for u in cfg.upstreams)
    for router, files in ((r, plans.border(cfg, r)) for r in cfg.border_routers):
        sessions = blocks(files["bird.conf"], "bgp")
        assert len(sessions) == 4, "an eBGP and an iBGP session in each family"
        for name, body in sessions.items():
            if name.startswith(("ibgp_", "ibgp6_")):
                assert f"receive limit {received} action block;" in body and f"import limit {imported} action block;" in body
            else:
                u = next(u for u in cfg.upstreams_of(router) for v in u.families if bird_protocol(u.name, v) == name)
                assert u.receive_limit == 2 * u.max_prefixes  # the lab sets no max_received
                assert f"receive limit {u.receive_limit} action {u.limit_action};" in body
                assert f"import limit {u.max_prefixes} action {u.limit_action};" in body
        assert_parses(bird, files, tmp_path / router.name)
    tight = make("lab", policy={"ibgp_max_prefixes": 40, "ibgp_max_received": 50, "ibgp_limit_action": "restart"})
    text = plans.border(tight, tight.border_routers[0])["bird.conf"]
    assert "receive limit 50 action restart;" in text and "import limit 40 action restart;" in text


def test_limits_are_visible_in_a_running_bird(bird, birdc):
    """What the live test reads with `birdc show protocols all`: BIRD took both limits."""
    cfg = load_file("dev")
    with RunningBird(bird, birdc, plans.border(cfg, cfg.border_routers[0])["bird.conf"]) as b:
        out = b.query(f"show protocols all {bird_protocol(cfg.upstreams[0].name)}")
    assert re.search(r"Receive limit:\s+20\n\s+Action:\s+block", out), out
    assert re.search(r"Import limit:\s+10\n\s+Action:\s+block", out), out


def test_gtsm_on_both_sides_only_where_the_upstream_says(bird, tmp_path):
    dev = load_file("dev")
    assert dev.upstreams[0].ttl_security
    border = blocks(plans.border(dev, dev.border_routers[0])["bird.conf"], "bgp")[bird_protocol("isp")]
    isp = blocks(plans.isp(dev, dev.upstreams[0])["bird.conf"], "bgp")[bird_protocol("border")]
    assert "ttl security on;" in border and "ttl security on;" in isp
    off = make(upstream={"ttl_security": False})
    assert "ttl security" not in plans.border(off, off.border_routers[0])["bird.conf"]
    assert "ttl security" not in plans.isp(off, off.upstreams[0])["bird.conf"]
    lab = load_file("lab")  # the exchange and the probe never run it
    assert all("ttl security" not in t["bird.conf"] for t in plans.all_files(lab).values())
    assert_parses(bird, plans.isp(dev, dev.upstreams[0]), tmp_path)


def test_real_hosts_keep_bgp_routes_in_a_table_of_their_own(bird, tmp_path):
    """Staging (a real host): BGP to kernel table policy.kernel_table; the own prefixes to
    the main table as unreachable, at a metric every real route beats. A lab's border (its
    own namespace): one kernel protocol on main for both."""
    raw = stack_raw("staging")
    raw["upstreams"][0]["password"] = "x"
    cfg = validate(raw)
    files = plans.border(cfg, cfg.border_routers[0])
    kernels = blocks(files["bird.conf"], "kernel")
    assert set(kernels) == {"kernel_v4", "kernel_own_v4", "kernel_v6", "kernel_own_v6"}  # staging is dual-stack
    for v, own_prefix in ((4, "44.30.127.0/24"), (6, "2001:db8:4430::/48")):
        assert "kernel table 179;" in kernels[f"kernel_v{v}"] and "if source = RTS_BGP then accept;" in kernels[f"kernel_v{v}"]
        assert f"own_v{v}" not in kernels[f"kernel_v{v}"]
        own = kernels[f"kernel_own_v{v}"]
        assert "kernel table" not in own and "metric 4200;" in own and f"table own_kernel_v{v};" in own
        assert f"route {own_prefix} unreachable;" in blocks(files["bird.conf"], "static")[f"own_unreachable_v{v}"]
    assert_parses(bird, files, tmp_path)
    lab = load_file("dev")  # dual-stack: one kernel protocol per family, each on main
    kernels = blocks(plans.border(lab, lab.border_routers[0])["bird.conf"], "kernel")
    assert list(kernels) == ["kernel_v4", "kernel_v6"]
    for v in (4, 6):
        assert "kernel table" not in kernels[f"kernel_v{v}"] and f"  ipv{v} {{" in kernels[f"kernel_v{v}"]
        assert f'proto = "own_v{v}" then accept;' in kernels[f"kernel_v{v}"] and "RTS_BGP then accept;" in kernels[f"kernel_v{v}"]


def test_own_prefixes_are_unreachable_routes_in_a_running_bird(bird, birdc):
    raw = stack_raw("staging")
    raw["upstreams"][0]["password"] = "x"
    cfg = validate(raw)
    with RunningBird(bird, birdc, plans.border(cfg, cfg.border_routers[0])["bird.conf"]) as b:
        origin = b.settled("show route protocol own_v4")
        kernel_copy = b.settled("show route table own_kernel_v4")
    assert re.search(r"^44\.30\.127\.0/24\s+unreachable \[own_v4", origin, re.M), origin
    assert re.search(r"^44\.30\.127\.0/24\s+unreachable \[own_unreachable_v4", kernel_copy, re.M), kernel_copy


@pytest.mark.parametrize("table", [44, 253, 254, 255])
def test_kernel_table_refuses_the_tables_in_use(table):
    with pytest.raises(ConfigError) as err:
        make(policy={"kernel_table": table})
    assert "bgp4mesh:policy.kernel_table" in str(err.value)

"""Hostile input through the CLI: `python -m bgp4mesh check|render` in a subprocess
with a temporary project directory. Every bad input ends with exit 2 and a message
on stderr (never a traceback, never a hang), every message names the key and never
a secret; what `check` accepts, `render`, `bird -p` and `pulumi up` accept too.

Cases are built per failure class, several per class.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bgp4mesh.stack import PROJECT_DIR, load_file

DEV_DOC = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
LAB_DOC = yaml.safe_load((PROJECT_DIR / "Pulumi.lab.yaml").read_text())
TIMEOUT = 20


# ---- helpers ------------------------------------------------------------------------


def cli(*args: str, project: Path, env: dict | None = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BGP4MESH_SECRET_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "bgp4mesh", *args, "--project-dir", str(project)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def project(tmp_path: Path, content: str | bytes | None = None, stack: str = "t") -> Path:
    if content is not None:
        target = tmp_path / f"Pulumi.{stack}.yaml"
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    return tmp_path


def variant(changes: dict, base: dict = DEV_DOC) -> str:
    """The base stack file as YAML with keys changed: 'upstreams[0].neighbor' -> value."""
    doc = copy.deepcopy(base)
    for path, value in changes.items():
        parts = path.replace("]", "").replace("[", ".").split(".")
        target, key = doc["config"], f"bgp4mesh:{parts[0]}"
        for part in parts[1:]:
            target = target[key]
            key = int(part) if part.isdigit() else part
        if value is DELETE:
            del target[key]
        else:
            target[key] = value
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


DELETE = object()


def variant_text(key: str, text: str, base: dict = DEV_DOC) -> str:
    """The base stack file with `key` set to `text` exactly as written in YAML."""
    return variant({key: "PLACEHOLDER-VALUE"}, base).replace("PLACEHOLDER-VALUE", text)


def invalid(proc: subprocess.CompletedProcess, *needles: str) -> str:
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout[:2000]}\nstderr: {err[:2000]}"
    assert "Traceback" not in err, err[:3000]
    assert proc.stdout == "", proc.stdout[:500]
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err[:3000]}"
    return err


def check(tmp_path: Path, content, *needles: str) -> str:
    return invalid(cli("check", "--stack", "t", project=project(tmp_path, content)), *needles)


# ---- class 1: tracebacks -> exit 2 with a message -------------------------------------------

YAML_SYNTAX = [
    "config: [\n",
    "config:\n  bgp4mesh:asn: 65000\n bad: indent\n",
    'config:\n  bgp4mesh:mesh: "unclosed\n',
    "config:\n  bgp4mesh:asn: 1\n  - item\n",
    "config: {a: 1, b}\n}\n",
    "---\nconfig: {}\n---\nconfig: {}\n",
    "config:\n  bgp4mesh:asn: *undefined\n",
    "config:\n  bgp4mesh:asn: !!python/object:os.system 1\n",
    "config:\n  bgp4mesh:asn: \x07\n",
]


@pytest.mark.parametrize("text", YAML_SYNTAX)
def test_yaml_syntax_errors(text, tmp_path):
    err = check(tmp_path, text, "Pulumi.t.yaml")
    assert "line" in err or "not valid YAML" in err


@pytest.mark.parametrize(
    "text",
    [
        "config:\n\tbgp4mesh:asn: 65000\n",
        "config:\n  bgp4mesh:mesh:\n\tnetwork: x\n",
        "config:\n  bgp4mesh:prefixes:\n  \t- 44.30.127.0/24\n",
        "\tconfig: {}\n",
    ],
)
def test_tab_indentation(text, tmp_path):
    check(tmp_path, text, "not valid YAML", "line", "a tab")


@pytest.mark.parametrize(
    "text, needle",
    [
        ("- a\n- b\n", "top level must be a mapping"),
        ("just text\n", "top level must be a mapping"),
        ("42\n", "top level must be a mapping"),
        ("config: [1, 2]\n", "'config:' must be a mapping"),
        ("config: text\n", "'config:' must be a mapping"),
        ("config: 5\n", "'config:' must be a mapping"),
        ("", "required but not set"),
        ("config:\n", "required but not set"),
    ],
)
def test_top_level_or_config_not_a_mapping(text, needle, tmp_path):
    check(tmp_path, text, needle)


@pytest.mark.parametrize(
    "text",
    [
        "config:\n  1: x\n",
        "config:\n  bgp4mesh:mesh: {null: 1}\n",
        "config:\n  bgp4mesh:policy: {yes: 1}\n",
        "config:\n  bgp4mesh:policy: {1.5: 1}\n",
        "config:\n  bgp4mesh:mesh:\n    ? [a, b]\n    : 1\n",
        "config:\n  bgp4mesh:upstreams:\n    - {2024-01-01: x}\n",
    ],
)
def test_non_string_keys(text, tmp_path):
    check(tmp_path, text, "a key must be text", "line")


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe\x00c\x00o",
        b"config:\n  bgp4mesh:asn: \xe9\n",
        "config:\n  bgp4mesh:mesh: {network: caf\xe9}\n".encode("latin-1"),
        b"\x80",
        b"config:\n  bgp4mesh:asn: 65000\n  bgp4mesh:x: \xc3\x28\n",
    ],
)
def test_non_utf8_bytes(data, tmp_path):
    check(tmp_path, data, "not UTF-8", "line")


@pytest.mark.parametrize(
    "text",
    [
        "config:\n  bgp4mesh:mesh: " + "[" * 5000 + "]" * 5000 + "\n",
        "config:\n  bgp4mesh:mesh: " + "[" * 200 + "]" * 200 + "\n",
        "config:\n  bgp4mesh:mesh: " + "{a: " * 100 + "1" + "}" * 100 + "\n",
        "config:\n  bgp4mesh:mesh:\n" + "".join("  " * (i + 2) + "a:\n" for i in range(60)) + "  " * 62 + "1\n",
    ],
)
def test_very_deep_nesting(text, tmp_path):
    err = check(tmp_path, text, "Pulumi.t.yaml")
    assert "nest" in err or "not valid YAML" in err


def _laughs(levels: int, width: int) -> str:
    lines = ["config:", '  bgp4mesh:l0: &l0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"  bgp4mesh:l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    lines.append(f"  bgp4mesh:mesh: {{nodes: *l{levels - 1}}}")
    return "\n".join(lines) + "\n"


ALIAS_BOMBS = [
    _laughs(10, 10),
    _laughs(30, 2),
    _laughs(5, 100),
    "config:\n  bgp4mesh:mesh: &a [*a]\n",
    "config:\n  bgp4mesh:mesh: &a {network: x, nodes: [*a, *a]}\n",
    "config:\n  bgp4mesh:a: &a {k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n  bgp4mesh:b: &b [" + ", ".join(["*a"] * 200) + "]\n"
    "  bgp4mesh:c: &c [" + ", ".join(["*b"] * 200) + "]\n  bgp4mesh:mesh: [*c, *c]\n",
]


@pytest.mark.parametrize("text", ALIAS_BOMBS)
def test_alias_bombs_are_refused_fast(text, tmp_path):
    start = time.monotonic()
    err = check(tmp_path, text, "refused")
    # An alias bomb expands to gigabytes over minutes; a refusal is one interpreter start
    # (about 0.5 s alone, several under a loaded machine's contention).
    assert time.monotonic() - start < 5, "took too long"
    assert "lol" not in err


@pytest.mark.parametrize("stack", ["a" * 101, "a" * 300, "../dev", "x/y", "", "a b", "dév", "dev\n", "-"])
def test_bad_stack_names(stack, tmp_path):
    if stack == "-":
        stack = "a" * 5000
    err = invalid(cli("check", "--stack", stack, project=tmp_path), "stack name")
    assert len(err) < 1000


def _make_kind(kind: str, target: Path) -> None:
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target.symlink_to("/dev/null")
    elif kind == "zero-device":
        target.symlink_to("/dev/zero")
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(target))
        sock.close()
    elif kind == "dangling symlink":
        target.symlink_to(target.parent / "nowhere")
    elif kind == "symlink loop":
        target.symlink_to(target)


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "zero-device", "socket", "dangling symlink", "symlink loop"])
def test_stack_file_that_is_not_a_file(kind, tmp_path):
    _make_kind(kind, tmp_path / "Pulumi.t.yaml")
    proc = cli("check", "--stack", "t", project=tmp_path, timeout=10)  # a FIFO used to hang here
    invalid(proc, "Pulumi.t.yaml")


def test_stack_file_too_large(tmp_path):
    check(tmp_path, b"#" * (17 * 2**20), "larger than")


def _render(tmp_path: Path, out: str, content: str | None = None) -> subprocess.CompletedProcess:
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    project(proj, content if content is not None else variant({}))
    return cli("render", "--stack", "t", "--out", out, project=proj)


@pytest.mark.parametrize(
    "setup, needle",
    [
        ("file", "not a directory"),
        ("below a file", "render --out"),
        ("empty", "must name a directory"),
        ("blank", "must name a directory"),
        ("unwritable", "cannot create"),
        ("unwritable-proc", "cannot create"),
    ],
)
def test_render_out_that_cannot_be_written(setup, needle, tmp_path):
    out = {
        "file": tmp_path / "afile",
        "below a file": tmp_path / "afile" / "sub",
        "empty": "",
        "blank": "  ",
        "unwritable": Path("/proc/version/out"),
        "unwritable-proc": Path("/proc/bgp4mesh-out"),
    }[setup]
    (tmp_path / "afile").write_text("keep me")
    invalid(_render(tmp_path, str(out)), needle)
    assert (tmp_path / "afile").read_text() == "keep me"
    assert not (PROJECT_DIR / "border").exists()


@pytest.mark.parametrize("where", ["border", "isp"])
def test_render_never_writes_through_a_symlinked_router_folder(where, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / where).symlink_to(elsewhere)
    invalid(_render(tmp_path, str(out)), "symlink", where)
    assert list(elsewhere.iterdir()) == []


def test_render_replaces_a_symlinked_file_instead_of_following_it(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim"
    (out / "border").mkdir(parents=True)
    victim.write_text("untouched")
    (out / "border" / "bird.conf").symlink_to(victim)
    proc = _render(tmp_path, str(out))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "untouched"
    assert not (out / "border" / "bird.conf").is_symlink()


def test_render_refuses_a_directory_where_a_file_goes(tmp_path):
    out = tmp_path / "out"
    (out / "border" / "bird.conf").mkdir(parents=True)
    invalid(_render(tmp_path, str(out)), "is a directory")


# ---- class 2: valid for check, broken later --------------------------------------------------


@pytest.mark.parametrize("word", ["primary", "router", "public", "gateway", "bgp", "static"])
def test_bird_keyword_names_check_render_and_parse(word, tmp_path):
    content = variant({"border_routers[0].name": word, "upstreams[0].name": f"{word}-up"})
    proc = _render(tmp_path, str(tmp_path / "out"), content)
    assert proc.returncode == 0, proc.stderr
    bird = shutil.which("bird") or "/usr/sbin/bird"
    for conf in (tmp_path / "out").glob("*/bird.conf"):
        parsed = subprocess.run([bird, "-p", "-c", conf.name], cwd=conf.parent, capture_output=True, text=True, timeout=30)
        assert parsed.returncode == 0, parsed.stderr


@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("upstreams[0].max_prefixes", 2**32, "less than or equal to 4294967295"),
        ("upstreams[0].max_prefixes", 10**30, "less than or equal to 4294967295"),
        ("upstreams[0].max_prefixes", 0, "greater than or equal to 1"),
        ("policy.timers.error_wait_max", 2**32, "less than or equal to 4294967295"),
        ("policy.timers.hold", 65536, "less than or equal to 65535"),
        ("policy.timers.keepalive", 0, "greater than or equal to 1"),
        ("policy.timers.connect_retry", -1, "greater than or equal to 1"),
        ("mesh.wireguard_port", 70000, "less than or equal to 65535"),
        ("policy.max_as_path_length", 256, "less than or equal to 255"),
    ],
)
def test_numbers_out_of_bird_range(key, value, rule, tmp_path):
    check(tmp_path, variant({key: value}), f"bgp4mesh:{key} = ", rule)


@pytest.mark.parametrize("password", ['pa"ss', "", "x" * 81, "ü" * 41, "line\nbreak", "tab\there", 12345])
def test_passwords_bird_or_a_peer_cannot_take(password, tmp_path):
    err = check(tmp_path, variant({"upstreams[0].password": password}), "bgp4mesh:upstreams[0].password = [secret]: ")
    if isinstance(password, str) and len(password) > 3:
        assert password not in err


@pytest.mark.parametrize("network", ["a" * 25, "a" * 32, "network-name-for-the-mesh"])
def test_network_names_beyond_netmaker_limits(network, tmp_path):
    check(tmp_path, variant({"mesh.network": network}), "bgp4mesh:mesh.network", "enrollment-key tag", "at most 24")


def test_network_name_at_the_limit_passes(tmp_path):
    proc = cli("check", "--stack", "t", project=project(tmp_path, variant({"mesh.network": "a" * 24})))
    assert proc.returncode == 0, proc.stderr


def test_one_real_upstream_router_may_serve_several_border_routers_but_not_one_twice(tmp_path):
    """A real ISP's (or an exchange's route server's) address may be the neighbor of each
    border router; a mock ISP is a container at its address, so it may not."""
    doc = yaml.safe_load((PROJECT_DIR / "Pulumi.staging-ha.yaml").read_text())
    assert [u["neighbor"] for u in doc["config"]["bgp4mesh:upstreams"]] == ["192.0.2.9", "192.0.2.9"]
    load_file("staging-ha")  # valid as it is
    check(tmp_path, variant({"upstreams[1].router": "border-a"}, doc), "bgp4mesh:upstreams[1].neighbor = 192.0.2.9: already the neighbor of upstreams[0]")


@pytest.mark.parametrize(
    "key, value",
    [
        ("mesh.nodes[0].name", "node1\n"),
        ("border_routers[0].name", "border\n"),
        ("mesh.network", "bgp4mesh\n"),
        ("upstreams[0].name", "isp\n"),
        ("hosts", [{"name": "local\n"}]),
    ],
)
def test_names_with_a_trailing_newline(key, value, tmp_path):
    check(tmp_path, variant({key: value}), "1-32 characters")


@pytest.mark.parametrize("name", ["netmaker-server", "netmaker-mq", "netmaker-tls", "netmaker", "mq", "tls", "broker"])
def test_names_of_generated_containers(name, tmp_path):
    check(tmp_path, variant({"mesh.nodes[1].name": name}), f"bgp4mesh:mesh.nodes[1].name = '{name}': reserved")


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"mesh.nodes": [{"name": f"n{i}"} for i in range(235)]}, "bgp4mesh:lab.underlay = 172.31.0.0/24: too small"),
        ({"lab.underlay": "172.31.0.0/28"}, "bgp4mesh:lab.underlay = 172.31.0.0/28: too small"),
        ({"lab.underlay": "172.31.0.0/30"}, "too small"),
        ({"upstreams[0].link": "172.30.0.0/30", "upstreams[0].neighbor": "172.30.0.1", "upstreams[0].local_address": "172.30.0.2",
          "border_routers[0].router_id": "172.30.0.2"}, "no free address left for the lab's Docker bridge gateway"),
    ],
)
def test_mesh_and_lab_sizes_the_underlay_cannot_hold(changes, needle, tmp_path):
    check(tmp_path, variant(changes), needle)


@pytest.mark.parametrize(
    "egress, other",
    [
        ("44.0.0.0/8", "44.30.127.0/24"),
        ("0.0.0.0/0", "44.30.127.0/24"),
        ("127.0.0.0/8", "127.0.0.0/8"),
        ("127.1.0.0/16", "127.0.0.0/8"),
        ("126.0.0.0/7", "127.0.0.0/8"),
        ("::/0", "::1/128"),
    ],
)
def test_egress_ranges_netmaker_refuses(egress, other, tmp_path):
    check(tmp_path, variant({"mesh.egress_ranges": [egress]}), f"bgp4mesh:mesh.egress_ranges[0] = {egress}: Netmaker refuses an egress range overlapping {other}")


def test_largest_mesh_the_underlay_holds_passes(tmp_path):
    content = variant({"mesh.nodes": [{"name": f"n{i}"} for i in range(234)]})
    proc = cli("check", "--stack", "t", project=project(tmp_path, content))
    assert proc.returncode == 0, proc.stderr


def _prefixes(n: int) -> list[str]:
    """n own prefixes: dev's own (an IPv4 and an IPv6 block, for its two sessions), then more IPv4."""
    own = DEV_DOC["config"]["bgp4mesh:prefixes"]
    return own + [f"45.{i // 256}.{i % 256}.0/24" for i in range(n - len(own))]


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"prefixes": _prefixes(1000), "mesh.egress_ranges": [f"198.{i // 256}.{i % 256}.0/24" for i in range(1000)],
          "policy.bogon_exempt_prefixes": [f"10.{i // 256}.{i % 256}.0/24" for i in range(999)] + ["2001:db8::/32"]}, None),
        ({"prefixes": _prefixes(1000) + ["45.0.0.0/8"]}, "at most 1000 items"),
        ({"prefixes": _prefixes(999) + ["45.0.0.0/8"]}, "overlaps prefixes[999] = 45.0.0.0/8"),
        ({"mesh.nodes": [{"name": f"n{i}"} for i in range(10_001)]}, "at most 10000 items"),
        ({"upstreams": [dict(DEV_DOC["config"]["bgp4mesh:upstreams"][0], name=f"u{i}") for i in range(1001)]}, "at most 1000 items"),
    ],
)
def test_long_lists_stay_fast_or_are_refused(changes, needle, tmp_path):
    start = time.monotonic()
    proc = cli("check", "--stack", "t", project=project(tmp_path, variant(changes)))
    assert time.monotonic() - start < 10
    if needle is None:
        assert proc.returncode == 0, proc.stderr[:2000]
    else:
        invalid(proc, needle)


# ---- class 3: accepted but wrong ------------------------------------------------------------

NO_EXEMPTIONS = {"policy.bogon_exempt_asns": [], "policy.bogon_exempt_prefixes": [], "asn": 64000, "upstreams[0].asn": 6939}


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"policy.min_prefix_length_v4": 25, "policy.max_prefix_length_v4": 24}, "bgp4mesh:policy.min_prefix_length_v4 = 25: greater than max_prefix_length_v4 24"),
        ({"policy.min_prefix_length_v6": 64, "policy.max_prefix_length_v6": 48}, "bgp4mesh:policy.min_prefix_length_v6 = 64: greater than"),
        ({"prefixes": ["44.30.127.0/24", "::/0"]}, "bgp4mesh:prefixes[1] = ::/0: a default route"),
        ({"prefixes": ["0.0.0.0/0"]}, "bgp4mesh:prefixes[0] = 0.0.0.0/0: a default route"),
        ({"prefixes": ["44.30.127.0/24", "10.0.0.0/16"]}, "bgp4mesh:prefixes[1] = 10.0.0.0/16: overlaps bogon 10.0.0.0/8"),
        ({"prefixes": ["44.30.127.0/24", "3fff::/20"]}, "bgp4mesh:prefixes[1] = 3fff::/20: overlaps bogon 3fff::/20"),
        ({**NO_EXEMPTIONS, "prefixes": ["44.30.127.0/24", "192.0.2.0/24"]}, "bgp4mesh:prefixes[1] = 192.0.2.0/24: overlaps bogon"),
        ({"prefixes": ["44.30.127.0/24", "100.64.0.0/16"]}, "overlaps bogon 100.64.0.0/10"),
        ({"policy.bogon_exempt_asns": []}, "bgp4mesh:asn = 65000: in the bogon ASN set"),
        ({"policy.bogon_exempt_asns": [], "asn": 64000}, "bgp4mesh:upstreams[0].asn = 65001: in the bogon ASN set"),
        ({"asn": 64496}, "bgp4mesh:asn = 64496: in the bogon ASN set"),
        ({"asn": 4200000000}, "bgp4mesh:asn = 4200000000: in the bogon ASN set"),
        ({"mesh.egress_ranges": ["44.30.127.0/24"]}, "bgp4mesh:mesh.egress_ranges[0] = 44.30.127.0/24: equal to or inside own prefix"),
        ({"mesh.egress_ranges": ["198.51.100.0/24", "44.30.127.128/25"]}, "bgp4mesh:mesh.egress_ranges[1] = 44.30.127.128/25: equal to or inside"),
        ({"border_routers[0].router_id": "0.0.0.0"}, "bgp4mesh:border_routers[0].router_id = '0.0.0.0': a router id must not be"),
        ({"border_routers[0].router_id": "224.0.0.5"}, "a router id must not be"),
        ({"border_routers[0].router_id": "127.0.0.1"}, "a router id must not be"),
        ({"border_routers[0].router_id": "255.255.255.255"}, "a router id must not be"),
        ({"upstreams[0].mock.router_id": "127.0.0.2"}, "bgp4mesh:upstreams[0].mock.router_id = '127.0.0.2': a router id must not be"),
        ({"upstreams[0].mock.router_id": "172.30.0.100"}, "bgp4mesh:upstreams[0].mock.router_id = 172.30.0.100: the mock ISP's router id (mock.router_id, by default the neighbor) equals border router border's"),
        ({"border_routers[0].router_id": "172.30.0.1"}, "bgp4mesh:upstreams[0].neighbor = 172.30.0.1: the mock ISP's router id (mock.router_id, by default the neighbor) equals"),
    ],
)
def test_accepted_but_wrong(changes, needle, tmp_path):
    check(tmp_path, variant(changes), needle)


def test_two_upstreams_with_the_same_neighbor(tmp_path):
    changes = {"upstreams[1].link": "172.30.16.0/24", "upstreams[1].neighbor": "172.30.16.1", "upstreams[1].local_address": "172.30.16.101"}
    check(tmp_path, variant(changes, LAB_DOC), "bgp4mesh:upstreams[1].neighbor = 172.30.16.1: already the neighbor of upstreams[0]")


@pytest.mark.parametrize(
    "key, value",
    [
        ("netmaker.acme_email", "noc@example.net\n}\nevil.example {\n"),
        ("netmaker.acme_email", "noc@example.net {"),
        ("netmaker.acme_email", "a b@example.net"),
        ("netmaker.acme_email", "noc@example.net;"),
        ("netmaker.domain", "nm.lab\n}"),
        ("netmaker.domain", "nm.lab;"),
        ("netmaker.domain", "nm..lab"),
        ("netmaker.domain", "nm.lab "),
        ("hosts", [{"name": "local", "docker": "unix:///var/run/docker.sock\nx"}]),
        ("hosts", [{"name": "local", "docker": "ssh://a b"}]),
        ("netmaker.version", "v1.6.0\n"),
    ],
)
def test_values_that_would_inject_config(key, value, tmp_path):
    changes = {key: value, "netmaker.tls": "acme"} if key == "netmaker.acme_email" else {key: value}
    err = check(tmp_path, variant(changes), f"bgp4mesh:{key}")
    # The value is shown escaped on its one line: nothing of it starts a line of its own.
    assert all(line.startswith(("stack ", "  bgp4mesh:")) for line in err.splitlines()), err


@pytest.mark.parametrize(
    "key, value",
    [
        ("asn", "٦٥٠٠٠"),
        ("asn", "AS６５０００"),
        ("upstreams[0].asn", "६५००१"),
        ("netmaker.version", "v١.٦.٠"),
        ("upstreams[0].max_prefixes", "١٠"),
        ("policy.timers.hold", "٩"),
        ("prefixes[0]", "٤٤.30.127.0/24"),
        ("border_routers[0].router_id", "١٧٢.30.0.100"),
    ],
)
def test_unicode_digits_are_not_read_as_ascii(key, value, tmp_path):
    check(tmp_path, variant({key: value}), f"bgp4mesh:{key}")


@pytest.mark.parametrize(
    "key, text",
    [
        ("mesh.network", "yes"),
        ("mesh.nodes[0].name", "no"),
        ("upstreams[0].name", "on"),
        ("border_routers[0].name", "off"),
        ("upstreams[0].max_prefixes", "yes"),
        ("netmaker.domain", "no"),
    ],
)
def test_yaml_booleans_landing_in_names_or_numbers(key, text, tmp_path):
    content = variant_text(key, text)
    check(tmp_path, content, f"bgp4mesh:{key} = True" if text in ("yes", "on") else f"bgp4mesh:{key} = False", "boolean")


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "true", "null"])
def test_boolean_words_quoted_as_names_are_refused_too(word, tmp_path):
    check(tmp_path, variant({"mesh.nodes[1].name": word}), "bgp4mesh:mesh.nodes[1].name", "boolean or null")


# ---- keys: namespaces and duplicates ----------------------------------------------------------


@pytest.mark.parametrize("namespace", ["bgp4mseh", "bgp4mes", "BGP4MESH", "bgp4-mesh", "bgpmesh", "bgp4meshh", "gbp4mesh"])
def test_namespace_typos_are_refused(namespace, tmp_path):
    content = variant({}) + f"  {namespace}:policy: {{bogon_filter: false}}\n"
    check(tmp_path, content, f"'{namespace}:policy'", "typo")


def test_other_namespaces_are_left_alone(tmp_path):
    content = variant({}) + "  docker:host: unix:///x\n  pulumi:tags: {a: b}\n"
    proc = cli("check", "--stack", "t", project=project(tmp_path, content))
    assert proc.returncode == 0, proc.stderr


def test_key_without_a_namespace_is_refused(tmp_path):
    check(tmp_path, variant({}) + "  asn: 65001\n", "'asn'", "not a Pulumi config key")


@pytest.mark.parametrize(
    "text, line",
    [
        (variant({}) + "  bgp4mesh:asn: 65001\n", "line"),
        ("config:\n  bgp4mesh:mesh:\n    network: a\n    network: b\n", "line 4"),
        ("config:\n  bgp4mesh:upstreams:\n    - name: a\n      asn: 1\n      name: b\n", "line 5"),
        ("config:\n  bgp4mesh:policy: {bogon_filter: true, bogon_filter: false}\n", "line 2"),
    ],
)
def test_duplicate_keys_are_refused(text, line, tmp_path):
    check(tmp_path, text, "appears twice", line)


# ---- every error at once, clean key paths, secrets ----------------------------------------------


def test_all_errors_are_reported_at_once(tmp_path):
    cross = {
        "mesh.egress_ranges": ["44.30.127.0/24"],
        "border_routers[0].router_id": "172.30.0.1",
        "mesh.nodes[1].name": "netmaker-server",
        "mesh.nodes[0].ip": "44.30.126.5",
        "prefixes": [*DEV_DOC["config"]["bgp4mesh:prefixes"], "10.0.0.0/16"],
    }
    err = check(tmp_path, variant(cross), "mesh.egress_ranges[0]", "upstreams[0].neighbor", "mesh.nodes[1].name", "mesh.nodes[0].ip", "prefixes[2]")
    assert err.count("\n  bgp4mesh:") == 5
    fields = {"asn": 23456, "upstreams[0].max_prefixes": 0, "mesh.network": "Bad", "policy.timers.hold": 2, "netmaker.version": "1.6"}
    err = check(tmp_path, variant(fields), *(f"bgp4mesh:{k} = " for k in fields))
    assert err.count("\n  bgp4mesh:") == 5


def test_a_rule_on_a_whole_upstream_names_the_field_not_the_object(tmp_path):
    changes = {"upstreams[0].neighbor": "172.30.9.1", "upstreams[0].password": "hunter2-secret"}
    err = check(tmp_path, variant(changes), "bgp4mesh:upstreams[0].neighbor = 172.30.9.1: not inside link 172.30.0.0/24")
    assert "hunter2" not in err and "{" not in err


@pytest.mark.parametrize(
    "key, text",
    [
        ("upstreams[0]", "not a mapping " + "x" * 10_000_000),
        ("mesh.network", "x" * 10_000_000),
        ("upstreams[0].asn", "9" * 10_000_000),
        ("upstreams[0].max_prefixes", "9" * 10_000_000),
        ("mesh.nodes[0].name", "[" + ", ".join(["x" * 1000] * 1000) + "]"),
        ("policy.bogon_exempt_prefixes", "[" + ", ".join(["10.0.0.1/8"] * 50_000) + "]"),
    ],
)
def test_huge_values_are_never_echoed(key, text, tmp_path):
    err = check(tmp_path, variant_text(key, text))
    assert f"bgp4mesh:{key}" in err or "Pulumi.t.yaml line" in err, err
    assert len(err) < 12_000 and err.count("\n") < 110


def test_huge_unknown_key_is_not_echoed(tmp_path):
    content = variant({}).replace("  bgp4mesh:mesh:\n", f"  bgp4mesh:mesh:\n    ? {'k' * 5_000_000}\n    : 1\n")
    err = check(tmp_path, content, "unknown key")
    assert len(err) < 2000


@pytest.mark.parametrize(
    "changes",
    [
        {"upstreams[0].password": 5},
        {"upstreams[0].password": ["hunter2-secret"]},
        {"upstreams[0].password": "hunter2-secret\n"},
        {"upstreams[0].password": "hunter2-secret", "upstreams[0].unknown": 1, "upstreams[0].neighbor": "9.9.9.9"},
        {"upstreams[0].password": "hunter2-secret", "upstreams[0].link": "hunter2-secret"},
    ],
)
def test_passwords_are_never_shown(changes, tmp_path):
    err = check(tmp_path, variant(changes), "bgp4mesh:upstreams[0].")
    assert "hunter2" not in err.replace("link = 'hunter2-secret'", "")


SECURE = {"upstreams[0].password": {"secure": "v1:AAAAencrypted=="}}
ENV = "BGP4MESH_SECRET_UPSTREAMS_0_PASSWORD"


def test_check_accepts_a_secure_value_it_cannot_read(tmp_path):
    proc = cli("check", "--stack", "t", project=project(tmp_path, variant(SECURE)))
    assert proc.returncode == 0, proc.stderr


def test_render_refuses_without_the_secret_and_names_its_variable(tmp_path):
    out = tmp_path / "out"
    invalid(_render(tmp_path, str(out), variant(SECURE)), "upstreams[0].password", ENV)
    assert not out.exists() or not list(out.rglob("bird.conf"))


def test_render_writes_the_secret_from_the_environment_privately(tmp_path):
    out = tmp_path / "out"
    proj = project(tmp_path, variant(SECURE))
    proc = cli("render", "--stack", "t", "--out", str(out), project=proj, env={ENV: "s3cr3t-from-env"})
    assert proc.returncode == 0, proc.stderr
    assert "s3cr3t" not in proc.stdout + proc.stderr
    for conf in (out / "border" / "bird.conf", out / "isp" / "bird.conf"):
        assert 'password "s3cr3t-from-env";' in conf.read_text()
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        assert stat.S_IMODE(conf.parent.stat().st_mode) == 0o700
    assert "[secret]" not in (out / "border" / "bird.conf").read_text()


def test_a_bad_secret_from_the_environment_is_refused_unshown(tmp_path):
    proj = project(tmp_path, variant(SECURE))
    proc = cli("render", "--stack", "t", "--out", str(tmp_path / "out"), project=proj, env={ENV: 'bad"quote-secret'})
    err = invalid(proc, "bgp4mesh:upstreams[0].password = [secret]")
    assert "quote-secret" not in err


def test_default_project_dir_is_still_the_repository():
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    env.pop("BGP4MESH_PROJECT_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "bgp4mesh", "check", "--stack", "dev"], cwd="/", env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0 and "stack dev: valid" in proc.stdout, proc.stderr


# ---- the Pulumi source ----------------------------------------------------------------------------


def test_raw_from_pulumi_reports_secret_keys(monkeypatch):
    from pulumi.runtime import config as rc

    from bgp4mesh.stack import raw_from_pulumi

    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", '["bgp4mesh:mesh"]')
    rc.set_all_config({"bgp4mesh:asn": "65000", "bgp4mesh:upstreams": '[{"password": "x"}]', "bgp4mesh:mesh": "{}", "docker:host": "x"},
                      ["bgp4mesh:upstreams"])
    try:
        raw, secret = raw_from_pulumi()
    finally:
        rc.set_all_config({}, [])
    assert raw == {"asn": 65000, "upstreams": [{"password": "x"}], "mesh": {}}
    assert secret == {"upstreams", "mesh"}


def test_raw_from_pulumi_refuses_a_namespace_typo():
    from pulumi.runtime import config as rc

    from bgp4mesh.problems import ConfigError
    from bgp4mesh.stack import raw_from_pulumi

    rc.set_all_config({"bgp4mesh:asn": "65000", "bgp4mseh:policy": "{}"}, [])
    try:
        with pytest.raises(ConfigError, match="bgp4mseh:policy"):
            raw_from_pulumi()
    finally:
        rc.set_all_config({}, [])


def test_the_c_yaml_loader_is_used_when_present():
    from bgp4mesh import stack

    assert not yaml.__with_libyaml__ or issubclass(stack._Loader, yaml.CSafeLoader)


# ---- images pulled by tag alone: valid, with a warning ----------------------------------------

PROD_DOC = yaml.safe_load((PROJECT_DIR / "Pulumi.prod.yaml").read_text())
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _warnings(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 0, proc.stderr[:2000]
    return [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]


OWN_PULLED = ("border", "netclient", "monitoring")  # prod ships with monitoring


def test_check_warns_for_each_image_prod_pulls_by_tag_alone(tmp_path):
    upstream = PROD_DOC["config"]["bgp4mesh:netmaker"]["upstream_images"]
    warnings = _warnings(cli("check", "--stack", "prod", project=PROJECT_DIR))
    expected = [f"bgp4mesh:images.digests.{k}: registry.example.net/bgp4mesh/{k}:1.0.0 is pulled by tag alone" for k in OWN_PULLED]
    expected += [f"bgp4mesh:netmaker.upstream_images.{k}: {ref} is pulled by tag alone" for k, ref in upstream.items()]
    assert len(warnings) == len(expected) == 6, warnings
    for needle in expected:
        assert any(w.startswith(f"WARNING: {needle}") for w in warnings), (needle, warnings)
    pinned = variant({"images.digests": {k: DIGEST for k in OWN_PULLED},
                      "netmaker.upstream_images": {k: f"{ref}@{DIGEST}" for k, ref in upstream.items()}}, PROD_DOC)
    assert _warnings(cli("check", "--stack", "t", project=project(tmp_path, pinned))) == []
    assert _warnings(cli("check", "--stack", "dev", project=PROJECT_DIR)) == []  # a lab builds its images

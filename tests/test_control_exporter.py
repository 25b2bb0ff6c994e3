"""The control-plane exporter (images/monitoring/control): Netmaker's node and host lists and
the broker's $SYS lines become series; a source that cannot be read says so
(`bgp4mesh_control_scrape_ok 0`) and publishes none of its numbers; the text passes
`promtool check metrics`. Also the config bgp4mesh writes for it (bgp4mesh/control_exporter.py)
and the broker's monitoring user (templates mosquitto.*.j2, netmaker_env, NetmakerServer)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "images" / "monitoring" / "control"))

from bgp4mesh_control import adapters, core, run, schema  # noqa: E402

from bgp4mesh import control_exporter, metrics, monitoring  # noqa: E402
from bgp4mesh import netmaker_env as ne  # noqa: E402
from bgp4mesh.config import Netmaker  # noqa: E402

NOW = 1_800_000_000
NETWORK = "bgp4mesh"
KEY = "master-key-never-in-a-log"

# What mosquitto 2.0.21 answered to the exporter's subscription (mosquitto_sub -F '%t\t%p'),
# captured from the built broker image; the version line is not a number.
SYS_LINES = """$SYS/broker/version\tmosquitto version 2.0.21
$SYS/broker/uptime\t11 seconds
$SYS/broker/clients/connected\t4
$SYS/broker/clients/disconnected\t0
$SYS/broker/subscriptions/count\t13
$SYS/broker/retained messages/count\t52
$SYS/broker/messages/stored\t47
$SYS/broker/messages/received\t310
$SYS/broker/messages/sent\t295
$SYS/broker/publish/messages/received\t40
$SYS/broker/publish/messages/sent\t38
$SYS/broker/publish/messages/dropped\t0
$SYS/broker/bytes/received\t51234
$SYS/broker/bytes/sent\t88123
"""


def host(id_: str, name: str) -> dict:
    """models.ApiHost (v1.6.0), the fields the exporter reads."""
    return {"id": id_, "name": name, "nodes": [f"node-{id_}"], "isstatic": False}


def node(host_id: str, *, checkin: int = NOW - 30, connected: bool = True, **extra) -> dict:
    """models.ApiNode (v1.6.0), the fields the exporter reads."""
    return {"id": f"node-{host_id}", "hostid": host_id, "network": NETWORK, "connected": connected,
            "lastcheckin": checkin, "status": "online", "is_static": False, "pendingdelete": False, **extra}


def series(text: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def promtool_check(text: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: install Debian's prometheus package (scripts/bootstrap does)"
    return subprocess.run([exe, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


# --- one contract ------------------------------------------------------------------------------


def test_the_image_publishes_the_metric_contracts_names_help_and_types():
    published = (core.MEMBER_ONLINE, core.MEMBER_CHECKIN, *(t.metric for t in core.BROKER_TOPICS), core.SCRAPE_OK)
    assert [(m.name, m.labels, m.help, m.kind) for m in published] == \
        [(m.name, m.labels, m.help, m.kind) for m in metrics.CONTROL_EXPORTER]


def test_config_paths_and_port_agree_with_the_monitoring_plan():
    assert control_exporter.SCHEMA_FILE == Path(schema.__file__).resolve()
    assert control_exporter.CONFIG_PATH == schema.CONFIG_PATH == "/etc/bgp4mesh/control-exporter.json"
    assert control_exporter.LISTEN == schema.LISTEN == f"127.0.0.1:{monitoring.CONTROL_EXPORTER_PORT}"
    launcher = (ROOT / "images/monitoring/control/bgp4mesh-control-exporter").read_text()
    assert "/usr/local/lib/bgp4mesh/control" in launcher and os.access(ROOT / "images/monitoring/control/bgp4mesh-control-exporter", os.X_OK)


# --- Netmaker's lists -> series ------------------------------------------------------------------


def test_each_member_is_its_hosts_node_online_by_netmakers_check_in_rule():
    hosts = [host("h1", "border"), host("h2", "node1"), host("h3", "node2"), host("h4", "node3"), host("h5", "node4")]
    nodes = [
        node("h1"),
        node("h2", checkin=NOW - core.LAST_CHECKIN_THRESHOLD),  # exactly at the threshold: still online
        node("h3", checkin=NOW - core.LAST_CHECKIN_THRESHOLD - 1),  # stale, though its stored status says online
        node("h4", connected=False),  # disconnected by the operator
        node("h5", checkin=-62135596800),  # Go's zero time: never checked in
    ]
    got = series(core.exposition(core.netmaker_families(hosts, nodes, NETWORK, NOW)))
    online = {m: got[f'bgp4mesh_netmaker_member_online{{member="{m}",network="{NETWORK}"}}'] for m in ("border", "node1", "node2", "node3", "node4")}
    assert online == {"border": 1, "node1": 1, "node2": 0, "node3": 0, "node4": 0}
    assert got[f'bgp4mesh_netmaker_member_last_checkin_timestamp_seconds{{member="node2",network="{NETWORK}"}}'] == NOW - 601
    assert got[f'bgp4mesh_netmaker_member_last_checkin_timestamp_seconds{{member="node4",network="{NETWORK}"}}'] == 0
    assert got['bgp4mesh_control_scrape_ok{source="netmaker"}'] == 1


def test_static_nodes_unnamed_hosts_and_nodes_being_deleted_are_not_members_online():
    hosts = [host("h1", "border"), {"id": "h2", "name": ""}, host("h3", "gone")]
    nodes = [node("h1"), node("h1", id="ext", is_static=True, connected=True), node("h2"), node("h9"),
             node("h3", pendingdelete=True)]
    picked = core.member_nodes(hosts, nodes)
    assert {m: n["id"] for m, n in picked.items()} == {"border": "node-h1", "gone": "node-h3"}
    assert not core.node_online(picked["gone"], NOW)


def test_two_hosts_of_one_name_give_one_series_the_fresher_node():
    hosts = [host("old", "node1"), host("new", "node1")]
    nodes = [node("old", checkin=NOW - 5000), node("new", checkin=NOW - 10)]
    text = core.exposition(core.netmaker_families(hosts, nodes, NETWORK, NOW))
    assert text.count("bgp4mesh_netmaker_member_online{") == 1
    assert series(text)[f'bgp4mesh_netmaker_member_online{{member="node1",network="{NETWORK}"}}'] == 1


def test_the_member_is_the_node_netmakers_client_finds_for_the_host():
    """The same join bgp4mesh's own client makes (NetmakerClient.find_node_for_host), over
    the same v1.6.0 lists: the exporter's member is the member bgp4mesh pinned and verified."""
    import httpx

    from bgp4mesh.netmaker_api import NetmakerClient

    hosts = [host("h1", "border"), host("h2", "node1")]
    nodes = [node("h2", id="static-1", is_static=True), node("h1"), node("h2")]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=hosts if request.url.path == "/api/hosts" else nodes)

    with NetmakerClient("http://nm.test", KEY, transport=httpx.MockTransport(answer)) as client:
        for name, picked in core.member_nodes(client.list_hosts(), client.list_nodes(NETWORK)).items():
            assert picked == client.find_node_for_host(NETWORK, name)


# --- $SYS -> series ------------------------------------------------------------------------------


def test_sys_lines_become_broker_series_and_the_version_line_is_skipped():
    values = core.parse_sys(SYS_LINES)
    assert "$SYS/broker/version" not in values and values["$SYS/broker/uptime"] == 11
    got = series(core.exposition(core.broker_families(values)))
    assert got["bgp4mesh_broker_clients_connected"] == 4
    assert got["bgp4mesh_broker_retained_messages"] == 52
    assert got["bgp4mesh_broker_received_bytes_total"] == 51234
    assert got['bgp4mesh_control_scrape_ok{source="broker"}'] == 1
    assert len([k for k in got if k.startswith("bgp4mesh_broker_")]) == len(core.BROKER_TOPICS)


def test_a_partial_or_failed_broker_read_says_so():
    partial = "\n".join(SYS_LINES.splitlines()[:4])
    got = series(core.exposition(core.broker_families(core.parse_sys(partial))))
    assert got['bgp4mesh_control_scrape_ok{source="broker"}'] == 0
    assert set(got) == {'bgp4mesh_control_scrape_ok{source="broker"}', "bgp4mesh_broker_uptime_seconds",
                        "bgp4mesh_broker_clients_connected", "bgp4mesh_broker_clients_disconnected"}
    refused = series(core.exposition(core.broker_families(core.parse_sys(""))))
    assert refused == {'bgp4mesh_control_scrape_ok{source="broker"}': 0}


# --- the text format -----------------------------------------------------------------------------


def test_the_whole_scrape_passes_promtool_check_metrics():
    hosts, nodes = [host("h1", "border"), host("h2", "node1")], [node("h1"), node("h2", checkin=NOW - 4000)]
    text = core.exposition(core.netmaker_families(hosts, nodes, NETWORK, NOW) + core.broker_families(core.parse_sys(SYS_LINES)))
    checked = promtool_check(text)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked
    assert text.count("# TYPE bgp4mesh_control_scrape_ok gauge") == 1, "one family however many sources"
    assert "# TYPE bgp4mesh_broker_sent_bytes_total counter" in text


def test_promtool_would_catch_a_broken_exposition():
    """The check above can fail: the same text with a counter named like a gauge is refused."""
    text = core.exposition(core.broker_families(core.parse_sys(SYS_LINES)))
    broken = text.replace("bgp4mesh_broker_sent_bytes_total", "bgp4mesh_broker_sent_bytes")
    assert promtool_check(broken).stdout.strip() or promtool_check(broken).returncode != 0


def test_label_values_are_escaped():
    text = core.exposition(core.netmaker_families([host("h1", 'a"b\\c')], [node("h1")], NETWORK, NOW))
    assert 'member="a\\"b\\\\c"' in text
    assert promtool_check(text).returncode == 0


# --- the exporter against a Netmaker API ----------------------------------------------------------


class FakeApi:
    """Netmaker v1.6.0's two lists over HTTP, with Go's Date header; `fail` answers 500."""

    def __init__(self, hosts: list, nodes: list, now: float):
        self.hosts, self.nodes, self.now, self.fail, self.seen = hosts, nodes, now, False, []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                api.seen.append((self.path, self.headers.get("Authorization")))
                body, code = b'{"Code":500,"Message":"internal","Response":null}', 500
                if not api.fail and self.headers.get("Authorization") == f"Bearer {KEY}":
                    lists = {"/api/hosts": api.hosts, f"/api/nodes/{NETWORK}": api.nodes}
                    body, code = json.dumps(lists.get(self.path)).encode(), 200 if self.path in lists else 404
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def date_time_string(self, timestamp=None) -> str:  # send_response's Date header
                return formatdate(api.now, usegmt=True)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def api():
    fake = FakeApi([host("h1", "border"), host("h2", "node1")], [node("h1"), node("h2")], NOW)
    yield fake
    fake.server.shutdown()


def exporter(url: str) -> run.Exporter:
    return run.Exporter(schema.ControlConfig(netmaker=schema.NetmakerSource(api_url=url, network=NETWORK, master_key=KEY), timeout=2))


def test_a_failed_api_read_publishes_scrape_ok_0_and_no_stale_members(api, capsys):
    scraper = exporter(api.url)
    first = series(scraper.scrape())
    assert first[f'bgp4mesh_netmaker_member_online{{member="node1",network="{NETWORK}"}}'] == 1
    assert first['bgp4mesh_control_scrape_ok{source="netmaker"}'] == 1
    assert api.seen == [("/api/hosts", f"Bearer {KEY}"), (f"/api/nodes/{NETWORK}", f"Bearer {KEY}")]
    api.fail = True
    second = series(scraper.scrape())
    assert second == {'bgp4mesh_control_scrape_ok{source="netmaker"}': 0}, "no number survives a failed read"
    assert "HTTP 500" in capsys.readouterr().err
    api.fail = False
    assert series(scraper.scrape())['bgp4mesh_control_scrape_ok{source="netmaker"}'] == 1


def test_the_check_in_age_is_measured_on_the_servers_clock(api):
    """The server's Date says it is 11 minutes after node1's check-in: offline, whatever
    this machine's clock says."""
    api.now = NOW - 30 + core.LAST_CHECKIN_THRESHOLD + 60
    got = series(exporter(api.url).scrape())
    assert got[f'bgp4mesh_netmaker_member_online{{member="node1",network="{NETWORK}"}}'] == 0


def test_an_unreachable_api_fails_within_the_timeout_and_never_shows_the_key(capsys):
    got = series(exporter("http://127.0.0.1:9").scrape())
    assert got == {'bgp4mesh_control_scrape_ok{source="netmaker"}': 0}
    err = capsys.readouterr().err
    assert "netmaker: GET /api/hosts" in err and KEY not in err
    assert KEY not in repr(schema.NetmakerSource(api_url="https://x", network=NETWORK, master_key=KEY))


# --- the broker adapter --------------------------------------------------------------------------


def test_the_broker_password_is_in_a_private_options_file_never_in_argv():
    broker = adapters.Broker(schema.BrokerSource(host="broker.nm.lab", port=1883, username="bgp4mesh-monitor", password="pw-secret"))
    argv = broker.command(3)
    assert "pw-secret" not in " ".join(argv) and "-P" not in argv and "-u" not in argv
    assert argv[argv.index("-C") + 1] == str(len(core.BROKER_TOPICS)) and argv[argv.index("-W") + 1] == "3"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-t"] == [t.topic for t in core.BROKER_TOPICS]
    options = Path(broker._home) / "mosquitto_sub"
    assert options.read_text() == "-u bgp4mesh-monitor\n-P pw-secret\n"
    assert stat.S_IMODE(os.stat(broker._home).st_mode) == 0o700 and stat.S_IMODE(options.stat().st_mode) == 0o600
    assert "pw-secret" not in repr(broker)


# --- the config bgp4mesh writes ------------------------------------------------------------------

MONITOR = {"username": ne.MONITOR_USERNAME, "password": "monitor-pw"}


def test_the_config_round_trips_through_the_exporters_reader():
    text = control_exporter.control_exporter_config(
        api_url="https://172.31.0.4", ca_pem="-----BEGIN CERTIFICATE-----", master_key=KEY, network=NETWORK,
        broker_endpoint="tcp://broker.nm.lab:1883", broker_monitor=MONITOR)
    config = schema.ControlConfig.from_json(text)
    assert config.netmaker == schema.NetmakerSource(api_url="https://172.31.0.4", network=NETWORK, master_key=KEY,
                                                    ca_pem="-----BEGIN CERTIFICATE-----")
    assert config.broker == schema.BrokerSource(host="broker.nm.lab", port=1883, username=ne.MONITOR_USERNAME, password="monitor-pw")
    assert config.listen == "127.0.0.1:9587"
    without = schema.ControlConfig.from_json(control_exporter.control_exporter_config(
        api_url="https://172.31.0.4", ca_pem="", master_key=KEY, network=NETWORK, broker_endpoint="tcp://b:1883", broker_monitor=None))
    assert without.broker is None


def test_a_broker_only_reachable_over_websockets_is_refused():
    with pytest.raises(ValueError, match="plain MQTT"):
        control_exporter.broker_address("wss://broker.nm.example.net")
    assert control_exporter.broker_address("tcp://broker.nm.lab") == ("broker.nm.lab", 1883)


@pytest.mark.parametrize("change, message", [
    (lambda raw: raw["netmaker"].update(extra=1), "unknown keys"),
    (lambda raw: raw.update(timeout="3"), "timeout must be int"),
    (lambda raw: raw["netmaker"].update(api_url="nm.lab"), "http"),
])
def test_a_bad_config_is_refused_by_key(change, message):
    raw = json.loads(control_exporter.control_exporter_config(
        api_url="https://x", ca_pem="", master_key=KEY, network=NETWORK, broker_endpoint="tcp://b:1883", broker_monitor=MONITOR))
    change(raw)
    with pytest.raises(ValueError, match=message):
        schema.ControlConfig.from_json(json.dumps(raw))


def test_a_missing_config_exits_2_with_the_path(tmp_path, capsys):
    assert run.main([str(tmp_path / "none.json")]) == 2
    assert "none.json" in capsys.readouterr().err


# --- the broker's monitoring user ----------------------------------------------------------------


def _directives(text: str) -> list[list[str]]:
    return [line.split(None, 2) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_monitoring_user_reads_sys_and_nothing_else():
    nm = Netmaker(domain="nm.lab")
    plain = _directives(ne.mosquitto_acl(nm, "netmaker"))
    acl = _directives(ne.mosquitto_acl(nm, "netmaker", ne.MONITOR_USERNAME))
    assert acl[:len(plain)] == plain and acl[len(plain):] == [["user", ne.MONITOR_USERNAME], ["topic", "read", "$SYS/#"]]
    assert not any(d[1:] == ["read", "$SYS/#"] for d in plain), "the shared netclient user never reads $SYS"


def test_the_monitoring_user_is_known_to_the_clients_listeners_only(tmp_path):
    from bgp4mesh.stack import load_plan

    plan = load_plan("dev")
    nm = plan.model.netmaker
    conf = ne.mosquitto_conf(nm, plan.underlay, monitor=True)
    blocks = {b.split("\n", 1)[0]: b for b in conf.split("\nlistener ")[1:]}
    server = next(b for port, b in blocks.items() if port.startswith(str(ne.MQ_SERVER_PORT)))
    clients = blocks[str(ne.MQ_PORT)]
    assert f"password_file {ne.flavor(nm).mosquitto_passwd}" in server and ne.CLIENTS_PASSWD not in server
    assert f"password_file {ne.CLIENTS_PASSWD}" in clients and "acl_file" in clients
    assert ne.mosquitto_conf(nm, plan.underlay) == ne.mosquitto_conf(nm, plan.underlay, monitor=False)
    assert ne.CLIENTS_PASSWD not in ne.mosquitto_conf(nm, plan.underlay)
    pulled = Netmaker(domain="nm.example.net", images="pull")  # eclipse-mosquitto: our start script makes its clients' file
    pulled_clients = {b.split("\n", 1)[0]: b for b in ne.mosquitto_conf(pulled, None, monitor=True).split("\nlistener ")[1:]}[str(ne.MQ_PORT)]
    assert f"password_file {ne.flavor(pulled).clients_passwd}" in pulled_clients and ne.flavor(pulled).clients_passwd != ne.flavor(pulled).mosquitto_passwd
    entry = (ROOT / "images/mosquitto/entrypoint.sh").read_text()
    assert f"clients={ne.CLIENTS_PASSWD}" in entry and f"${{MONITOR_PASSWORD_FILE:-{ne.MONITOR_PASSWORD_FILE}}}" in entry
    assert 'mosquitto_passwd "$clients" "$MONITOR_USERNAME"' in entry, "stdin, never argv"


# --- the components: NetmakerServer's monitoring user and the upload C makes ----------------------

PROGRAM = """
import pulumi
import pulumi_docker as docker
from bgp4mesh.control_exporter import control_exporter_files
from bgp4mesh.stack import plan_stack, raw_from_pulumi
from components.hosts import HostContext
from components.lab import _server_images
from components.netmaker_server import NetmakerServer

stack_plan = plan_stack(raw_from_pulumi()[0])
cfg, plan = stack_plan.model, stack_plan.underlay
host = HostContext(cfg.host(cfg.netmaker.host), cfg.images)
nm = NetmakerServer("netmaker", {"netmaker": cfg.netmaker, "stack": pulumi.get_stack(), "network": "bgp4mesh-dev-underlay",
                                  "underlay": plan, "images": _server_images(stack_plan, host), "monitoring": True})
files = control_exporter_files(api_url=nm.api_url, ca_certificate=nm.ca_certificate, master_key=nm.master_key,
                               network=cfg.mesh.network, broker_endpoint=nm.broker_endpoint, broker_monitor=nm.broker_monitor)
docker.Container("monitoring", name="bgp4mesh-dev-monitoring", image="bgp4mesh/monitoring:local",
                 uploads=[docker.ContainerUploadArgs(file=path, content=content, permissions="0600") for path, content in files.items()])
pulumi.export("broker_monitor", nm.broker_monitor)
"""


@pytest.fixture(scope="module")
def declared(tmp_path_factory):
    from bgp4mesh.stack import raw_from_file
    from tests.program_mocks import RecordingMocks, run_program

    project = tmp_path_factory.mktemp("control-exporter")
    (project / "__main__.py").write_text(PROGRAM)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    mocks = RecordingMocks()
    outputs, secret = run_program("dev", mocks, raw_from_file("dev")[0], project)
    return mocks, outputs, secret


def test_the_broker_gets_the_monitoring_user_as_a_root_only_secret(declared):
    from tests.test_program_unit import upload_is_secret

    mocks, outputs, secret = declared
    mq = next(r for r in mocks.of_type("container:Container") if r.inputs["name"] == "bgp4mesh-dev-netmaker-mq")
    assert f"MONITOR_USERNAME={ne.MONITOR_USERNAME}" in mq.inputs["envs"]
    assert not any(outputs["broker_monitor"]["password"] in e for e in mq.inputs["envs"])
    upload = next(u for u in mq.inputs["uploads"] if u["file"] == ne.MONITOR_PASSWORD_FILE)
    assert upload["permissions"] == "0600" and upload_is_secret(mq, ne.MONITOR_PASSWORD_FILE)
    acl = next(u for u in mq.inputs["uploads"] if u["file"] == "/etc/mosquitto/acl")["content"]
    assert f"user {ne.MONITOR_USERNAME}\ntopic read $SYS/#" in acl
    assert "broker_monitor" in secret and outputs["broker_monitor"]["username"] == ne.MONITOR_USERNAME


def test_the_exporters_config_reaches_the_monitoring_container_secret(declared):
    from tests.test_program_unit import upload_is_secret

    mocks, outputs, _ = declared
    box = next(r for r in mocks.of_type("container:Container") if r.inputs["name"] == "bgp4mesh-dev-monitoring")
    assert upload_is_secret(box, schema.CONFIG_PATH)
    config = schema.ControlConfig.from_json(next(u for u in box.inputs["uploads"] if u["file"] == schema.CONFIG_PATH)["content"])
    assert (config.netmaker.api_url, config.netmaker.network, config.netmaker.ca_pem) == ("https://172.31.0.4", NETWORK, "CERT")
    assert (config.broker.host, config.broker.port) == ("broker.nm.lab", ne.MQ_PORT)
    assert config.broker.password == outputs["broker_monitor"]["password"]

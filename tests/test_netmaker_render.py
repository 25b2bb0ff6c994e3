"""Render tier for the Netmaker control plane: the server env, mosquitto, the TLS
front, the readiness script, and what NetmakerServer declares. No Docker."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bgp4mesh import netmaker_env as ne
from bgp4mesh.addressing import underlay_plan
from bgp4mesh.config import Netmaker
from bgp4mesh.stack import load_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dev():
    cfg = load_file("dev")
    return cfg.netmaker, underlay_plan(cfg)


@pytest.fixture(scope="module")
def env(dev):
    nm, plan = dev
    return ne.server_env(nm, plan, master_key="MASTER", mq_username="nmuser", mq_password="mqpass")


# --- server env ----------------------------------------------------------------------------


def test_env_turns_off_everything_that_calls_the_internet(env):
    assert env["TELEMETRY"] == "off"
    assert env["NETCLIENT_AUTO_UPDATE"] == "disabled"
    assert env["STUN"] == "false"
    assert env["MANAGE_DNS"] == "false"
    assert env["DNS_MODE"] == "off"
    assert env["METRICS_EXPORTER"] == "off"
    assert env["DISABLE_REMOTE_IP_CHECK"] == "on"


def test_public_ip_service_is_the_loopback_responder(env):
    assert env["PUBLIC_IP_SERVICE"] == f"http://127.0.0.1:{ne.PUBLIC_IP_RESPONDER_PORT}/ip"
    entrypoint = (ROOT / "images/netmaker/entrypoint.sh").read_text()
    assert "busybox httpd" in entrypoint and "PUBLIC_IP_RESPONDER_PORT:-8099" in entrypoint
    assert ne.PUBLIC_IP_RESPONDER_PORT == 8099


def test_lab_env_guards_go_http_with_a_dead_proxy_but_not_the_lab(env, dev):
    _, plan = dev
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == ne.DEAD_PROXY
    no_proxy = env["NO_PROXY"].split(",")
    assert {"localhost", "127.0.0.1", "nm.lab", ".nm.lab", str(plan.subnet)} <= set(no_proxy)


def test_every_endpoint_is_set_explicitly_and_inside_the_lab(env, dev):
    _, plan = dev
    tls, server, mq = (str(plan.netmaker[k]) for k in ("tls", "server", "mq"))
    assert env["SERVER_NAME"] == "nm.lab"
    assert env["SERVER_HTTP_HOST"] == "nm.lab"  # goes into enrollment tokens
    assert env["SERVER_API_CONN_STRING"] == "nm.lab:443"
    assert env["SERVER_HOST"] == tls
    assert env["COREDNS_ADDR"] == server
    assert env["SERVER_BROKER_ENDPOINT"] == f"tcp://{mq}:1883"
    assert env["BROKER_ENDPOINT"] == "tcp://broker.nm.lab:1883"
    assert env["API_PORT"] == "8081"
    assert env["DATABASE"] == "sqlite"


def test_credentials_come_from_the_arguments(env):
    assert env["MASTER_KEY"] == "MASTER"
    assert (env["MQ_USERNAME"], env["MQ_PASSWORD"]) == ("nmuser", "mqpass")


def test_env_list_is_sorted_key_value(env):
    items = ne.env_list(env)
    assert items == sorted(items)
    assert "TELEMETRY=off" in items


def test_outside_a_lab_no_proxy_guard_and_names_instead_of_addresses():
    nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net", images="pull")
    env = ne.server_env(nm, None, master_key="k", mq_username="u", mq_password="p")
    assert "HTTPS_PROXY" not in env and "SERVER_HOST" not in env
    assert "PUBLIC_IP_SERVICE" not in env  # the gravitl image has no loopback responder
    assert env["BROKER_ENDPOINT"] == "wss://broker.nm.example.net"
    assert env["SERVER_BROKER_ENDPOINT"] == "tcp://mq:1883"
    assert env["TELEMETRY"] == "off"


# --- mosquitto -------------------------------------------------------------------------------


def _directives(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_mosquitto_has_no_anonymous_access(dev):
    conf = ne.mosquitto_conf(*dev)
    d = _directives(conf)
    assert ["allow_anonymous", "false"] in d
    assert ["allow_anonymous", "true"] not in d
    assert ["password_file", "/run/mosquitto/passwd"] in d
    assert ["per_listener_settings", "false"] in d  # the password file applies to every listener
    assert ["listener", "1883"] in d and ["protocol", "mqtt"] in d
    assert ["protocol", "websockets"] not in d  # lab: plain MQTT only


def test_mosquitto_image_makes_the_password_file_the_config_names(dev):
    entry = (ROOT / "images/mosquitto/entrypoint.sh").read_text()
    assert 'mosquitto_passwd -b -c "$passwd" "$MQ_USERNAME" "$MQ_PASSWORD"' in entry
    assert "passwd=/run/mosquitto/passwd" in entry
    assert ne.flavor(dev[0]).mosquitto_passwd == "/run/mosquitto/passwd"
    fallback = _directives((ROOT / "images/mosquitto/mosquitto.conf").read_text())
    assert ["allow_anonymous", "false"] in fallback


def test_mosquitto_websockets_only_behind_acme():
    nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net")
    d = _directives(ne.mosquitto_conf(nm, None))
    assert ["listener", str(ne.MQ_WS_PORT)] in d and ["protocol", "websockets"] in d
    assert ["allow_anonymous", "false"] in d


# --- TLS front -------------------------------------------------------------------------------


def test_nginx_terminates_tls_and_proxies_to_the_server(dev):
    nm, plan = dev
    path, conf = ne.tls_front_conf(nm, plan)
    assert path == "/etc/nginx/nginx.conf"
    assert f"server {plan.netmaker['server']}:8081;" in conf
    assert "proxy_pass http://netmaker_api;" in conf
    assert "listen 443 ssl;" in conf
    assert f"server_name nm.lab {plan.netmaker['tls']};" in conf
    assert f"ssl_certificate     {ne.CERT_FILE};" in conf
    assert f"ssl_certificate_key {ne.KEY_FILE};" in conf
    assert "proxy_set_header Host $host;" in conf
    assert conf.count("{") == conf.count("}")


def test_caddyfile_for_acme_has_the_email_and_no_manual_cert():
    nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net", images="pull")
    path, conf = ne.tls_front_conf(nm, None)
    assert path == "/etc/caddy/Caddyfile"
    assert "email noc@example.net" in conf
    assert "tls /" not in conf
    assert "nm.example.net {" in conf and "reverse_proxy netmaker:8081" in conf
    assert "broker.nm.example.net {" in conf and f"reverse_proxy @websockets mq:{ne.MQ_WS_PORT}" in conf
    assert conf.count("{") == conf.count("}")


def test_caddyfile_with_private_ca_uses_the_uploaded_cert(dev):
    conf = ne.caddyfile(*dev)
    assert f"tls {ne.CERT_FILE} {ne.KEY_FILE}" in conf
    assert "email" not in conf


def test_control_plane_names(dev):
    cp = ne.control_plane(*dev)
    assert cp.api_url == f"https://{dev[1].netmaker['tls']}"
    assert cp.client_endpoint == "nm.lab:443"
    assert cp.aliases["tls"] == ["nm.lab"]
    assert "broker.nm.lab" in cp.aliases["mq"]


# --- readiness script ------------------------------------------------------------------------


class _FakeNetmaker(http.server.BaseHTTPRequestHandler):
    status = {"db_connected": True, "broker_connected": True}
    settings = {"telemetry": "on", "netclientautoupdate": True, "manage_dns": False, "stun": True, "verbosity": 1}
    puts: list = []

    def log_message(self, *args):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/server/status":
            return self._send(200, type(self).status)
        if self.path == "/api/server/settings":
            if self.headers.get("Authorization") != "Bearer MK":
                return self._send(401, {"Code": 401, "Message": "unauthorized"})
            return self._send(200, {"Code": 200, "Message": "ok", "Response": type(self).settings})
        self._send(404, {})

    def do_PUT(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).puts.append(body)
        type(self).settings = body
        self._send(200, {"Code": 200, "Response": body})


@pytest.fixture()
def fake_server():
    _FakeNetmaker.status = {"db_connected": True, "broker_connected": True}
    _FakeNetmaker.settings = {"telemetry": "on", "netclientautoupdate": True, "manage_dns": False, "stun": True, "verbosity": 1}
    _FakeNetmaker.puts = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeNetmaker)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _run_ready(url: str, timeout: str = "3") -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "NM_API_URL": url,
        "NM_MASTER_KEY": "MK",
        "NM_READY_TIMEOUT": timeout,
        "NM_RUNTIME_SETTINGS": json.dumps(ne.RUNTIME_SETTINGS),
        "NM_HINT": "; see docker logs x",
    }
    return subprocess.run([sys.executable, "-c", ne.READY_SCRIPT], env=env, capture_output=True, text=True, timeout=30)


def test_ready_script_waits_for_status_and_corrects_settings(fake_server):
    proc = _run_ready(f"http://127.0.0.1:{fake_server.server_port}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"]["broker_connected"] is True
    assert out["settings_corrected"] == ["netclientautoupdate", "stun", "telemetry"]
    assert _FakeNetmaker.settings["telemetry"] == "off" and _FakeNetmaker.settings["verbosity"] == 1


def test_ready_script_times_out_with_a_clear_message(fake_server):
    _FakeNetmaker.status = {"db_connected": True, "broker_connected": False}
    proc = _run_ready(f"http://127.0.0.1:{fake_server.server_port}", timeout="1")
    assert proc.returncode == 1
    assert "not ready after 1s" in proc.stderr and "broker_connected" in proc.stderr and "docker logs x" in proc.stderr


def test_ready_script_reports_an_unreachable_server():
    proc = _run_ready("http://127.0.0.1:9", timeout="1")
    assert proc.returncode == 1
    assert "not ready" in proc.stderr and "URLError" in proc.stderr


# --- the component under Pulumi's mock monitor -----------------------------------------------

PROGRAM = """
import pulumi
from bgp4mesh.stack import raw_from_pulumi, validate
from bgp4mesh.addressing import underlay_plan
from components.netmaker_server import NetmakerServer
from components.hosts import HostContext
from components.lab import _server_images

cfg = validate(raw_from_pulumi()[0])
plan = underlay_plan(cfg) if cfg.lab else None
host = HostContext(cfg.host(cfg.netmaker.host), cfg.images)
nm = NetmakerServer("netmaker", {"netmaker": cfg.netmaker, "stack": pulumi.get_stack(),
                                  "network": "bgp4mesh-dev-underlay" if plan else "host", "underlay": plan,
                                  "images": _server_images(cfg, host)})
for key in ("api_url", "client_endpoint", "broker_endpoint", "ca_certificate", "master_key",
            "server_name", "connection", "containers"):
    pulumi.export(key, getattr(nm, key))
"""


def _declare(stack: str, project: Path):
    from harness.live import run_program
    from bgp4mesh.stack import raw_from_file
    from tests.program_mocks import RecordingMocks

    (project / "__main__.py").write_text(PROGRAM)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    mocks = RecordingMocks()
    outputs, secret = run_program(stack, mocks, raw_from_file(stack)[0], project)
    return mocks, outputs, secret


@pytest.fixture(scope="module")
def declared(tmp_path_factory):
    return _declare("dev", tmp_path_factory.mktemp("nmprog"))


@pytest.fixture(scope="module")
def declared_prod(tmp_path_factory):
    return _declare("prod", tmp_path_factory.mktemp("nmprog-prod"))


def test_component_children_and_outputs(declared):
    mocks, outputs, secret = declared
    names = {r.name for r in mocks.resources}
    assert {"netmaker-mq", "netmaker-server", "netmaker-tls", "netmaker-ready", "netmaker-data",
            "netmaker-master-key", "netmaker-mq-password", "netmaker-ca", "netmaker-tls-cert"} <= names
    comp = next(r for r in mocks.resources if r.typ == "bgp4mesh:index:NetmakerServer")
    assert comp.name == "netmaker"
    assert outputs["api_url"] == "https://172.31.0.4"
    assert outputs["client_endpoint"] == "nm.lab:443"
    assert outputs["broker_endpoint"] == "tcp://broker.nm.lab:1883"
    assert outputs["server_name"] == "nm.lab"
    assert {"master_key", "connection"} <= secret
    assert set(outputs["connection"]) == {"api_url", "master_key", "ca_pem"}


def test_component_containers(declared):
    mocks, _, _ = declared
    by_name = {r.inputs["name"]: r for r in mocks.of_type("container:Container")}
    mq, server, front = (by_name[f"bgp4mesh-dev-netmaker-{role}"] for role in ("mq", "server", "tls"))
    assert [n["ipv4Address"] for n in (mq, server, front) for n in n.inputs["networksAdvanced"]] == [
        "172.31.0.2", "172.31.0.3", "172.31.0.4"]
    assert "nm.lab" in front.inputs["networksAdvanced"][0]["aliases"]
    assert "broker.nm.lab" in mq.inputs["networksAdvanced"][0]["aliases"]
    for c in (mq, server, front):
        assert c.inputs["restart"] == "unless-stopped"
        assert {"label": "bgp4mesh.stack", "value": "dev"} in c.inputs["labels"]
    assert "TELEMETRY=off" in server.inputs["envs"]
    assert server.inputs["volumes"] == [{"volumeName": "bgp4mesh-dev-netmaker-data", "containerPath": "/var/lib/netmaker/data"}]
    files = {u["file"] for u in front.inputs["uploads"]}
    assert {"/etc/nginx/nginx.conf", ne.CERT_FILE, ne.KEY_FILE, ne.CA_FILE} <= files
    assert mq.inputs["uploads"][0]["file"] == "/etc/mosquitto/mosquitto.conf"


def test_component_certificate_covers_the_domain_and_the_front_address(declared):
    mocks, _, _ = declared
    csr = mocks.named("netmaker-tls-csr").inputs
    assert csr["dnsNames"] == ["nm.lab", "broker.nm.lab"]
    assert csr["ipAddresses"] == ["172.31.0.4"]
    ca = mocks.named("netmaker-ca").inputs
    assert ca["isCaCertificate"] is True
    key = mocks.named("netmaker-ca-key").inputs
    assert (key["algorithm"], key["ecdsaCurve"]) == ("ECDSA", "P256")


def test_component_readiness_command(declared):
    mocks, _, _ = declared
    ready = mocks.named("netmaker-ready").inputs
    assert ready["create"] == ne.READY_SCRIPT
    assert ready["interpreter"][1] == "-c"
    assert ready["environment"]["NM_API_URL"] == "https://172.31.0.4"
    assert json.loads(ready["environment"]["NM_RUNTIME_SETTINGS"]) == ne.RUNTIME_SETTINGS


def test_component_prod_pulls_upstream_images_and_publishes_the_acme_front(declared_prod):
    mocks, outputs, _ = declared_prod
    assert not mocks.of_type("selfSignedCert:SelfSignedCert")
    assert not any(r.inputs.get("build") for r in mocks.of_type("remoteImage:RemoteImage")), "prod pulls, builds nothing"
    pulled = sorted(r.inputs["name"] for r in mocks.of_type("remoteImage:RemoteImage"))
    assert pulled == ["caddy:2.8.4", "eclipse-mosquitto:2.0.15-openssl", "gravitl/netmaker:v1.6.0"]
    net = mocks.named("netmaker-network").inputs
    assert net["name"] == "bgp4mesh-prod-netmaker" and not net.get("internal")
    by_name = {r.inputs["name"]: r for r in mocks.of_type("container:Container")}
    front = by_name["bgp4mesh-prod-netmaker-tls"]
    assert {(p["internal"], p["external"]) for p in front.inputs["ports"]} == {(80, 80), (443, 443)}
    caddy = next(u for u in front.inputs["uploads"] if u["file"] == "/etc/caddy/Caddyfile")["content"]
    assert "email noc@example.net" in caddy
    mq = by_name["bgp4mesh-prod-netmaker-mq"]
    assert mq.inputs["entrypoints"] == ["/bin/sh", "/mosquitto/config/bgp4mesh-start.sh"]
    server = by_name["bgp4mesh-prod-netmaker-server"]
    assert server.inputs["volumes"][0]["containerPath"] == "/root/data"
    assert "BROKER_ENDPOINT=wss://broker.nm.example.net" in server.inputs["envs"]
    assert all(n["name"] == "bgp4mesh-prod-netmaker" for c in by_name.values() for n in c.inputs["networksAdvanced"])
    assert outputs["api_url"] == "https://nm.example.net" and outputs["ca_certificate"] == ""

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
    return ne.server_env(nm, plan, mq_username="nmuser")


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
    tls = str(plan.netmaker["tls"])
    server, mq = (str(plan.control_hosts[k]) for k in ("server", "mq"))  # the control network
    assert env["SERVER_NAME"] == "nm.lab"
    assert env["SERVER_HTTP_HOST"] == "nm.lab"  # goes into enrollment tokens
    assert env["SERVER_API_CONN_STRING"] == "nm.lab:443"
    assert env["SERVER_HOST"] == tls
    assert env["COREDNS_ADDR"] == server
    assert env["SERVER_BROKER_ENDPOINT"] == f"tcp://{mq}:{ne.MQ_SERVER_PORT}"
    assert env["BROKER_ENDPOINT"] == "tcp://broker.nm.lab:1883"
    assert env["API_PORT"] == "8081"
    assert env["DATABASE"] == "sqlite"


def test_no_credential_in_the_environment_and_basic_auth_off(env):
    """docker inspect shows the environment: the master key and broker password reach the
    server in its 0600 config file instead, which netmaker reads with -c."""
    assert "MASTER_KEY" not in env and "MQ_PASSWORD" not in env
    assert env["MQ_USERNAME"] == "nmuser"
    assert env["BASIC_AUTH"] == "no"
    assert json.loads(ne.server_secrets("MASTER", "mqpass")) == {"server": {"masterkey": "MASTER", "mqpassword": "mqpass"}}
    assert ne.SERVER_COMMAND == ["-c", ne.SECRETS_FILE]
    assert 'exec /usr/local/bin/netmaker "$@"' in (ROOT / "images/netmaker/entrypoint.sh").read_text()


def test_env_list_is_sorted_key_value(env):
    items = ne.env_list(env)
    assert items == sorted(items)
    assert "TELEMETRY=off" in items


def test_outside_a_lab_no_proxy_guard_and_names_instead_of_addresses():
    nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net", images="pull")
    env = ne.server_env(nm, None, mq_username="u")
    assert "HTTPS_PROXY" not in env and "SERVER_HOST" not in env
    assert "PUBLIC_IP_SERVICE" not in env  # the gravitl image has no loopback responder
    assert env["BROKER_ENDPOINT"] == "wss://broker.nm.example.net"
    assert env["SERVER_BROKER_ENDPOINT"] == f"tcp://mq:{ne.MQ_SERVER_PORT}"
    assert env["TELEMETRY"] == "off"


# --- mosquitto -------------------------------------------------------------------------------


def _directives(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _listeners(conf: str) -> dict[str, list[list[str]]]:
    """Directives per listener (per_listener_settings: each listener carries its own security)."""
    out: dict[str, list[list[str]]] = {}
    current = None
    for d in _directives(conf):
        if d[0] == "listener":
            current = out.setdefault(" ".join(d[1:]), [])
        elif current is not None:
            current.append(d)
    return out


def test_mosquitto_has_no_anonymous_access_and_the_acl_on_every_client_listener(dev):
    conf = ne.mosquitto_conf(*dev)
    d = _directives(conf)
    assert ["per_listener_settings", "true"] in d  # else one ACL would bind the server too
    assert ["allow_anonymous", "true"] not in d
    listeners = _listeners(conf)
    control_mq = dev[1].control_hosts["mq"]
    assert set(listeners) == {f"{ne.MQ_SERVER_PORT} {control_mq}", str(ne.MQ_PORT)}  # lab: plain MQTT only
    for port, settings in listeners.items():
        assert ["allow_anonymous", "false"] in settings and ["password_file", "/run/mosquitto/passwd"] in settings, port
    assert ["acl_file", "/etc/mosquitto/acl"] in listeners[str(ne.MQ_PORT)]
    assert not any(s[0] == "acl_file" for s in listeners[f"{ne.MQ_SERVER_PORT} {control_mq}"]), "the server needs every topic"
    assert ne.control_plane(*dev).server_broker_endpoint == f"tcp://{control_mq}:{ne.MQ_SERVER_PORT}"


def test_the_server_sits_on_the_control_network_alone(dev):
    """In a lab members share the underlay with the control plane: the server's API and the
    broker's server listener are only on the control network (the /28 after the underlay)."""
    nm, plan = dev
    cp = ne.control_plane(nm, plan)
    assert str(plan.control) == "172.31.1.0/28" and not plan.control.overlaps(plan.subnet)
    assert [net for net, _, _ in cp.attachments("server")] == ["control"]
    assert {net for net, _, _ in cp.attachments("mq")} == {net for net, _, _ in cp.attachments("tls")} == {"public", "control"}
    assert cp.api_upstream == f"{plan.control_hosts['server']}:8081"
    assert "server" not in plan.netmaker, "nothing of the server on the underlay"
    prod = ne.control_plane(Netmaker(domain="nm.example.net"), None)
    assert [net for net, _, _ in prod.attachments("server")] == ["public"] and str(ne.MQ_SERVER_PORT) in _listeners(ne.mosquitto_conf(Netmaker(domain="nm.example.net"), None))


def test_mosquitto_acl_allows_only_netclient_topics():
    acl = _directives(ne.mosquitto_acl(Netmaker(domain="nm.example.net"), "netmaker"))
    assert acl == [
        ["user", "netmaker"],
        ["topic", "read", "peers/host/+/nm.example.net"],
        ["topic", "read", "node/update/+/+"],
        ["topic", "read", "host/dns/sync/+/nm.example.net"],
        ["topic", "readwrite", "host/update/+/nm.example.net"],
        ["topic", "write", "host/serverupdate/nm.example.net/+"],
        ["topic", "write", "metrics/nm.example.net/+"],
        ["topic", "write", "signal/nm.example.net/+"],
    ]


def test_mosquitto_image_makes_the_password_file_from_a_file_not_the_environment(dev):
    entry = (ROOT / "images/mosquitto/entrypoint.sh").read_text()
    assert f'secret="${{MQ_PASSWORD_FILE:-{ne.MQ_PASSWORD_FILE}}}"' in entry
    assert "passwd=/run/mosquitto/passwd" in entry and "MQ_PASSWORD}" not in entry
    for script in (entry, ne.MOSQUITTO_PULL_START):
        assert "mosquitto_passwd -c" in script and "mosquitto_passwd -b" not in script  # stdin, not argv
    assert ne.flavor(dev[0]).mosquitto_passwd == "/run/mosquitto/passwd"
    fallback = _directives((ROOT / "images/mosquitto/mosquitto.conf").read_text())
    assert ["allow_anonymous", "false"] in fallback


def test_mosquitto_clients_only_over_websockets_behind_acme():
    nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net")
    conf = ne.mosquitto_conf(nm, None)
    listeners = _listeners(conf)
    assert set(listeners) == {str(ne.MQ_SERVER_PORT), str(ne.MQ_WS_PORT)}
    assert ["protocol", "websockets"] in listeners[str(ne.MQ_WS_PORT)]
    assert ["acl_file", ne.flavor(nm).mosquitto_acl] in listeners[str(ne.MQ_WS_PORT)]
    assert ["allow_anonymous", "false"] in listeners[str(ne.MQ_WS_PORT)]


def test_behind_acme_the_monitoring_user_keeps_a_plain_listener_published_on_the_hosts_loopback_alone(dev):
    nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net", images="pull")
    listeners = _listeners(ne.mosquitto_conf(nm, None, monitor=True))
    assert set(listeners) == {str(ne.MQ_SERVER_PORT), str(ne.MQ_WS_PORT), str(ne.MQ_PORT)}
    fl = ne.flavor(nm)
    for port in (ne.MQ_PORT, ne.MQ_WS_PORT):  # the clients' ACL, and their file with the monitoring user
        assert ["acl_file", fl.mosquitto_acl] in listeners[str(port)] and ["password_file", fl.clients_passwd] in listeners[str(port)]
    assert ["password_file", fl.mosquitto_passwd] in listeners[str(ne.MQ_SERVER_PORT)]  # the server's alone
    assert ne.monitor_ports(ne.control_plane(nm, None), True) == [("127.0.0.1", ne.MQ_PORT)] and ne.MONITOR_BROKER == "tcp://127.0.0.1:1883"
    assert ne.monitor_ports(ne.control_plane(nm, None), False) == [] and ne.monitor_ports(ne.control_plane(*dev), True) == []


def test_the_pulled_brokers_start_script_adds_the_monitoring_user_to_the_clients_file_only():
    nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net", images="pull")
    fl = ne.flavor(nm)
    script = ne.MOSQUITTO_PULL_START.format(secret=ne.MQ_PASSWORD_FILE, passwd=fl.mosquitto_passwd, clients=fl.clients_passwd, conf=fl.mosquitto_conf)
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)
    assert f'mosquitto_passwd {fl.clients_passwd} "$MONITOR_USERNAME"' in script
    assert f'mosquitto_passwd {fl.mosquitto_passwd} "$MONITOR_USERNAME"' not in script and "mosquitto_passwd -b" not in script


def test_mosquitto_image_below_the_cve_fix_is_refused():
    from bgp4mesh.config import UpstreamImages

    with pytest.raises(ValueError, match="2.0.16 or later"):
        UpstreamImages(mosquitto="eclipse-mosquitto:2.0.15-openssl")
    assert UpstreamImages().mosquitto == "eclipse-mosquitto:2.0.21-openssl"


# --- TLS front -------------------------------------------------------------------------------


def test_nginx_terminates_tls_and_proxies_to_the_server(dev):
    nm, plan = dev
    path, conf = ne.tls_front_conf(nm, plan, "MK")
    assert path == "/etc/nginx/nginx.conf"
    assert f"server {plan.control_hosts['server']}:8081;" in conf
    assert "proxy_pass http://netmaker_api;" in conf
    assert "listen 443 ssl;" in conf
    assert f"server_name nm.lab {plan.netmaker['tls']};" in conf
    assert f"ssl_certificate     {ne.CERT_FILE};" in conf
    assert f"ssl_certificate_key {ne.KEY_FILE};" in conf
    assert "proxy_set_header Host $host;" in conf
    assert conf.count("{") == conf.count("}")


def test_caddyfile_for_acme_has_the_email_and_no_manual_cert():
    nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net", images="pull")
    path, conf = ne.tls_front_conf(nm, None, "MK")
    assert path == "/etc/caddy/Caddyfile"
    assert "email noc@example.net" in conf
    assert "tls /" not in conf
    assert "nm.example.net {" in conf and "reverse_proxy netmaker:8081" in conf
    assert "broker.nm.example.net {" in conf and f"reverse_proxy @websockets mq:{ne.MQ_WS_PORT}" in conf
    assert conf.count("{") == conf.count("}")


def test_caddyfile_with_private_ca_uses_the_uploaded_cert(dev):
    conf = ne.caddyfile(*dev, "MK")
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

    users: dict = {}
    """username -> (password, super-admin?), as netmaker v1.6.0's user routes see them."""

    def do_GET(self):
        if self.path == "/api/server/status":
            return self._send(200, type(self).status)
        if self.headers.get("Authorization") != "Bearer MK":
            return self._send(401, {"Code": 401, "Message": "unauthorized"})
        if self.path == "/api/server/settings":
            return self._send(200, {"Code": 200, "Message": "ok", "Response": type(self).settings})
        if self.path == "/api/users":
            return self._send(200, [{"username": u, "issuperadmin": s} for u, (_, s) in type(self).users.items()])
        self._send(404, {})

    def _body(self):
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_PUT(self):
        body = self._body()
        type(self).puts.append(body)
        type(self).settings = body
        self._send(200, {"Code": 200, "Response": body})

    def do_POST(self):
        body, cls = self._body(), type(self)
        if self.path == "/api/users/adm/createsuperadmin":  # controllers/user.go createSuperAdmin
            if not cls.settings.get("basic_auth"):
                return self._send(400, {"Code": 400, "Message": "basic auth is disabled"})
            if any(s for _, s in cls.users.values()):
                return self._send(400, {"Code": 400, "Message": "superadmin user already exists"})
            cls.users[body["username"]] = (body["password"], True)
            return self._send(200, {"username": body["username"]})
        if self.path == "/api/users/adm/authenticate":
            if cls.users.get(body["username"], (None,))[0] != body["password"]:
                return self._send(401, {"Code": 401, "Message": "incorrect credentials"})
            return self._send(200, {"Code": 200, "Response": {"AuthToken": "jwt"}})
        self._send(404, {})


@pytest.fixture()
def fake_server():
    _FakeNetmaker.status = {"db_connected": True, "broker_connected": True}
    _FakeNetmaker.settings = {"telemetry": "on", "netclientautoupdate": True, "manage_dns": False, "stun": True, "verbosity": 1}
    _FakeNetmaker.puts = []
    _FakeNetmaker.users = {}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeNetmaker)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _run_ready(url: str, timeout: str = "3", password: str = "pw-from-the-state") -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "NM_API_URL": url,
        "NM_MASTER_KEY": "MK",
        "NM_ADMIN_USER": "bgp4mesh-admin",
        "NM_ADMIN_PASSWORD": password,
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
    assert out["settings_corrected"] == ["basic_auth", "netclientautoupdate", "stun", "telemetry"]
    assert _FakeNetmaker.settings["telemetry"] == "off" and _FakeNetmaker.settings["verbosity"] == 1


def test_ready_script_takes_the_super_admin_place_and_leaves_basic_auth_off(fake_server):
    """Netmaker serves createsuperadmin to anyone while no super-admin exists: the first
    check creates bgp4mesh's, with basic auth on only for that call."""
    url = f"http://127.0.0.1:{fake_server.server_port}"
    first = _run_ready(url)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["admin"] == "created"
    assert _FakeNetmaker.users == {"bgp4mesh-admin": ("pw-from-the-state", True)}
    assert [p.get("basic_auth") for p in _FakeNetmaker.puts] == [True, False]
    again = _run_ready(url)  # a restart on the reused volume: the admin is still there
    assert json.loads(again.stdout)["admin"] == "kept" and _FakeNetmaker.settings["basic_auth"] is False


def test_ready_script_refuses_a_super_admin_it_did_not_make(fake_server):
    _FakeNetmaker.users = {"mallory": ("x", True)}
    proc = _run_ready(f"http://127.0.0.1:{fake_server.server_port}")
    assert proc.returncode == 1
    assert "['mallory']" in proc.stderr and "did not create" in proc.stderr


def test_ready_script_fails_when_the_state_password_does_not_log_in(fake_server):
    _FakeNetmaker.users = {"bgp4mesh-admin": ("another", True)}
    proc = _run_ready(f"http://127.0.0.1:{fake_server.server_port}")
    assert proc.returncode == 1 and "does not log in" in proc.stderr
    assert _FakeNetmaker.settings["basic_auth"] is False


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
from bgp4mesh.stack import plan_stack, raw_from_pulumi
from components.netmaker_server import NetmakerServer
from components.hosts import HostContext
from components.lab import _server_images

stack_plan = plan_stack(raw_from_pulumi()[0])
cfg, plan = stack_plan.model, stack_plan.underlay
host = HostContext(cfg.host(cfg.netmaker.host), cfg.images)
nm = NetmakerServer("netmaker", {"netmaker": cfg.netmaker, "stack": pulumi.get_stack(),
                                  "network": "bgp4mesh-dev-underlay" if plan else "host", "underlay": plan,
                                  "images": _server_images(stack_plan, host)})
for key in ("api_url", "client_endpoint", "broker_endpoint", "ca_certificate", "master_key",
            "server_name", "connection", "containers"):
    pulumi.export(key, getattr(nm, key))
"""


def _declare(stack: str, project: Path):
    from bgp4mesh.stack import raw_from_file
    from tests.program_mocks import RecordingMocks, run_program

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
    attached = {c.inputs["name"]: {(n["name"], n["ipv4Address"]) for n in c.inputs["networksAdvanced"]} for c in (mq, server, front)}
    assert attached == {
        "bgp4mesh-dev-netmaker-mq": {("bgp4mesh-dev-underlay", "172.31.0.2"), ("bgp4mesh-dev-netmaker-control", "172.31.1.2")},
        "bgp4mesh-dev-netmaker-server": {("bgp4mesh-dev-netmaker-control", "172.31.1.3")},  # not on the underlay
        "bgp4mesh-dev-netmaker-tls": {("bgp4mesh-dev-underlay", "172.31.0.4"), ("bgp4mesh-dev-netmaker-control", "172.31.1.4")},
    }
    control = mocks.named("netmaker-control").inputs
    assert control["internal"] is True and control["ipamConfigs"][0]["subnet"] == "172.31.1.0/28"
    assert any("nm.lab" in n["aliases"] for n in front.inputs["networksAdvanced"])
    assert any("broker.nm.lab" in n["aliases"] for n in mq.inputs["networksAdvanced"])
    for c in (mq, server, front):
        assert c.inputs["restart"] == "unless-stopped"
        assert {"label": "bgp4mesh.stack", "value": "dev"} in c.inputs["labels"]
    assert "TELEMETRY=off" in server.inputs["envs"]
    assert not [e for e in server.inputs["envs"] if e.startswith(("MASTER_KEY=", "MQ_PASSWORD="))]
    assert server.inputs["command"] == ne.SERVER_COMMAND
    secrets = next(u for u in server.inputs["uploads"] if u["file"] == ne.SECRETS_FILE)
    assert secrets["permissions"] == "0600" and set(json.loads(secrets["content"])["server"]) == {"masterkey", "mqpassword"}
    assert server.inputs["volumes"] == [{"volumeName": "bgp4mesh-dev-netmaker-data", "containerPath": "/var/lib/netmaker/data"}]
    files = {u["file"] for u in front.inputs["uploads"]}
    assert {"/etc/nginx/nginx.conf", ne.CERT_FILE, ne.KEY_FILE, ne.CA_FILE} <= files
    assert mq.inputs["uploads"][0]["file"] == "/etc/mosquitto/mosquitto.conf"
    assert {u["file"] for u in mq.inputs["uploads"]} >= {"/etc/mosquitto/acl", ne.MQ_PASSWORD_FILE}


def test_component_broker_gets_its_password_as_a_root_only_secret_file(declared):
    """`docker inspect` of the broker shows no password: it is a 0600 upload, secret in the state."""
    from tests.test_program_unit import upload_is_secret

    mocks, _, _ = declared
    mq = next(r for r in mocks.of_type("container:Container") if r.inputs["name"] == "bgp4mesh-dev-netmaker-mq")
    assert sorted(mq.inputs["envs"]) == [f"MQ_PASSWORD_FILE={ne.MQ_PASSWORD_FILE}", "MQ_USERNAME=netmaker"]
    assert upload_is_secret(mq, ne.MQ_PASSWORD_FILE)
    upload = next(u for u in mq.inputs["uploads"] if u["file"] == ne.MQ_PASSWORD_FILE)
    assert upload["permissions"] == "0600" and len(upload["content"]) >= 32


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
    assert pulled == ["caddy:2.8.4", "eclipse-mosquitto:2.0.21-openssl", "gravitl/netmaker:v1.6.0"]
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

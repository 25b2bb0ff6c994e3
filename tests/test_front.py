"""The TLS front's allow-list, run for real: Debian's nginx and caddy (the binaries the
tls image ships) serve the rendered configuration on loopback in front of a recording
upstream, and requests from an address outside `admin_from` and without the master key
must get netclients' routes only. Loopback only; no Docker."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from bgp4mesh import netmaker_env as ne
from bgp4mesh.addressing import underlay_plan
from bgp4mesh.config import Netmaker
from bgp4mesh.stack import load_file

MASTER = "M4sterKeyForTheFrontTest0123456789"
OPERATOR = "127.0.0.2"
OUTSIDER = "127.0.0.3"

CLIENT_CALLS = [
    ("POST", "/api/v1/host/register/eyJzZXJ2ZXIiOiJ4In0="),
    ("POST", "/api/hosts/adm/authenticate"),
    ("GET", "/api/v1/host?reset_failovered=false"),
    ("GET", "/api/v1/host/0f0e/peer_info"),
    ("PUT", "/api/v1/fallback/host/0f0e"),
    ("GET", "/api/nodes/mesh/0f0e"),
    ("DELETE", "/api/nodes/mesh/0f0e"),
    ("DELETE", "/api/hosts/0f0e"),
    ("GET", "/api/server/status"),
]
"""What netclient v1.6.0 calls (ne.CLIENT_ROUTES), as it calls it."""

ADMIN_CALLS = [
    ("GET", "/api/users/adm/hassuperadmin"),
    ("POST", "/api/users/adm/createsuperadmin"),
    ("POST", "/api/users/adm/authenticate"),
    ("GET", "/api/users"),
    ("GET", "/api/server/settings"),
    ("PUT", "/api/server/settings"),
    ("GET", "/api/server/getconfig"),
    ("GET", "/api/v1/enrollment-keys"),
    ("GET", "/api/networks"),
    ("PUT", "/api/nodes/mesh/0f0e"),  # a client route's path with an admin method
    ("POST", "/api/v1/host/register/x/../../../users/adm/createsuperadmin"),
    ("POST", "/api/v1/host/register/x%2F..%2F..%2F..%2Fusers%2Fadm%2Fcreatesuperadmin"),
    ("GET", "//api/users"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):
        pass

    def _answer(self):
        type(self).seen.append((self.command, self.path))
        body = json.dumps({"upstream": True}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture(scope="module")
def upstream():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cert")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", d / "key.pem", "-out", d / "cert.pem", "-subj", "/CN=nm.lab", "-days", "1"],
        check=True, capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            pytest.fail(f"the front exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail("the front never listened")


def _nginx(conf: str, tmp: Path, port: int, cert, upstream: str) -> subprocess.Popen:
    """The rendered nginx.conf with only where it listens, its certificate, pid and upstream moved."""
    cfg = load_file("dev")
    text = (conf.replace(f"listen {ne.HTTPS_PORT} ssl;", f"listen 127.0.0.1:{port} ssl;")
            .replace("listen 80 default_server;", f"listen 127.0.0.1:{_free_port()} default_server;")
            .replace(ne.CERT_FILE, str(cert[0])).replace(ne.KEY_FILE, str(cert[1]))
            .replace("pid /run/nginx.pid;", f"pid {tmp}/nginx.pid;")
            .replace(f"server {ne.control_plane(cfg.netmaker, underlay_plan(cfg)).api_upstream};", f"server {upstream};"))
    (tmp / "nginx.conf").write_text(text)
    return subprocess.Popen(["nginx", "-e", "stderr", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _caddy(conf: str, tmp: Path, port: int, cert, upstream: str) -> subprocess.Popen:
    text = conf.replace("nm.example.net {", f"https://nm.example.net:{port} {{\n\ttls {cert[0]} {cert[1]}", 1)
    text = text.replace("reverse_proxy netmaker:8081", f"reverse_proxy {upstream}")
    text = text.replace("\temail noc@example.net\n", f"\tauto_https disable_redirects\n\thttp_port {_free_port()}\n\tadmin off\n\tstorage file_system {tmp}\n")
    (tmp / "Caddyfile").write_text(text)
    return subprocess.Popen(["caddy", "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={"HOME": str(tmp), "XDG_DATA_HOME": str(tmp)})


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def front(request, tmp_path_factory, cert, upstream):
    """(base URL, host header) of the running front: nginx as in dev/lab, caddy as in prod."""
    if shutil.which(request.param) is None:
        pytest.skip(f"{request.param} is not installed (scripts/bootstrap installs it)")
    tmp, port = tmp_path_factory.mktemp(request.param), _free_port()
    if request.param == "nginx":
        cfg = load_file("dev")
        nm = cfg.netmaker.model_copy(update={"admin_from": [f"{OPERATOR}/32"]})
        proc = _nginx(ne.nginx_conf(nm, underlay_plan(cfg), MASTER), tmp, port, cert, upstream)
        host = "nm.lab"
    else:
        nm = Netmaker(domain="nm.example.net", tls="acme", acme_email="noc@example.net", images="pull", admin_from=[f"{OPERATOR}/32"])
        proc = _caddy(ne.caddyfile(nm, None, MASTER), tmp, port, cert, upstream)
        host = "nm.example.net"
    _wait_listening(port, proc)
    yield f"https://127.0.0.1:{port}", host
    proc.terminate()
    proc.wait(10)


def _call(front, method: str, path: str, source: str, key: str | None = None) -> int:
    base, host = front
    headers = {"Host": host, **({"Authorization": f"Bearer {key}"} if key else {})}
    transport = httpx.HTTPTransport(local_address=source, verify=False)
    with httpx.Client(transport=transport, timeout=10) as client:
        request = client.build_request(method, base + "/", headers=headers, extensions={"sni_hostname": host})
        request.url = request.url.copy_with(raw_path=path.encode())  # the path exactly as sent, unnormalised
        return client.send(request).status_code


@pytest.mark.parametrize("method,path", CLIENT_CALLS)
def test_netclients_routes_pass_from_anywhere(front, method, path):
    _Recorder.seen.clear()
    assert _call(front, method, path, OUTSIDER) == 200
    assert _Recorder.seen, f"{method} {path} did not reach the server"


@pytest.mark.parametrize("method,path", ADMIN_CALLS)
def test_admin_routes_are_refused_to_an_outsider(front, method, path):
    _Recorder.seen.clear()
    assert _call(front, method, path, OUTSIDER) == 403
    assert _call(front, method, path, OUTSIDER, key="not-the-master-key") == 403
    assert not _Recorder.seen, f"{method} {path} reached the server: {_Recorder.seen}"


def test_the_operator_comes_through_by_address_or_with_the_master_key(front):
    _Recorder.seen.clear()
    assert _call(front, "GET", "/api/users", OPERATOR) == 200
    assert _call(front, "POST", "/api/v1/enrollment-keys", OUTSIDER, key=MASTER) == 200
    assert _call(front, "PUT", "/api/nodes/mesh/0f0e", OUTSIDER, key=MASTER) == 200  # a client path, the operator's method
    assert [p for _, p in _Recorder.seen] == ["/api/users", "/api/v1/enrollment-keys", "/api/nodes/mesh/0f0e"]


def test_every_client_route_is_exercised():
    """CLIENT_CALLS covers each route the front opens, so nothing is opened untested."""
    import re
    for route in ne.CLIENT_ROUTES:
        calls = [(m, p.split("?")[0]) for m, p in CLIENT_CALLS if re.fullmatch(route.pattern, p.split("?")[0])]
        assert {m for m, _ in calls} == set(route.methods), route

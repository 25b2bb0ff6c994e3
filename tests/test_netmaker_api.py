"""Unit tests of bgp4mesh.netmaker_api.NetmakerClient over httpx.MockTransport (fast, no server).

The same behaviours are checked against the real v1.6.0 binary in test_netmaker_live.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import pickle
import socket
import ssl
import threading
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from bgp4mesh.netmaker_api import (
    BadRequest,
    NetmakerClient,
    NetmakerError,
    NotFound,
    ServerError,
    Unauthorized,
    Unavailable,
)

from tests.netmaker_fake import register_host  # noqa: E402

KEY = "s3cr3t-MASTER-key-do-not-leak"


class FakeClock:
    """Deterministic time: sleep() advances the clock; each request costs `per_request`."""

    def __init__(self, per_request: float = 0.0) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.per_request = per_request

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def make(handler, clock: FakeClock | None = None, **kw) -> NetmakerClient:
    clock = clock or FakeClock()

    def wrapped(request: httpx.Request) -> httpx.Response:
        clock.now += clock.per_request
        return handler(request)

    return NetmakerClient(
        "http://nm.test:8081", KEY, transport=httpx.MockTransport(wrapped),
        sleep=clock.sleep, clock=clock.clock, **kw,
    )


def err(code: int, msg: str) -> httpx.Response:
    return httpx.Response(code, json={"Code": code, "Message": msg, "Response": None})


def assert_no_key(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert KEY not in text
    assert KEY not in repr(exc)
    assert all(KEY not in str(a) for a in exc.args)
    assert KEY not in repr(vars(exc))


# -- requests ----------------------------------------------------------------------------------
def test_bearer_auth_and_bare_json():
    seen = {}

    def h(req: httpx.Request):
        seen["auth"] = req.headers.get("Authorization")
        return httpx.Response(200, json=[{"netid": "a"}])

    c = make(h)
    assert c.list_networks() == [{"netid": "a"}]
    assert seen["auth"] == f"Bearer {KEY}"


def test_repr_and_pickle_never_show_key():
    c = make(lambda r: httpx.Response(200, json=[]))
    assert KEY not in repr(c) and KEY not in str(c)
    assert "nm.test" in repr(c)
    with pytest.raises(TypeError):
        pickle.dumps(c)


def test_wrapped_egress_response_unwrapped():
    def h(req):
        assert req.url.path == "/api/v1/egress" and req.url.params["network"] == "n1"
        return httpx.Response(200, json={"Code": 200, "Message": "fetched egress resource list", "Response": [{"id": "e"}]})

    assert make(h).list_egress("n1") == [{"id": "e"}]


def test_wrapped_missing_envelope_is_an_error():
    c = make(lambda r: httpx.Response(200, json=[{"id": "e"}]))
    with pytest.raises(NetmakerError, match="envelope"):
        c.list_egress("n1")


def test_empty_body_delete_key():
    def h(req):
        assert req.method == "DELETE" and req.url.path == "/api/v1/enrollment-keys/VALUE"
        return httpx.Response(200)

    assert make(h).delete_enrollment_key("VALUE") is None


def test_register_sends_no_auth_and_hides_token_in_errors():
    def h(req):
        assert "Authorization" not in req.headers
        return err(400, "invalid enrollment key")

    with pytest.raises(BadRequest) as ei:
        register_host(make(h), "TOKEN-SECRET", {"id": "x"})
    assert "TOKEN-SECRET" not in str(ei.value)
    assert "POST /api/v1/host/register/<token>" in str(ei.value)


def test_httpx_request_log_never_carries_a_credential(caplog):
    """A host process that enables httpx's INFO log sees requests, not keys or tokens."""

    def h(req):
        return httpx.Response(200) if req.method == "DELETE" else err(400, "invalid enrollment key")

    with caplog.at_level(logging.DEBUG):
        make(h).delete_enrollment_key("KEY-VALUE-SECRET")
        with pytest.raises(BadRequest):
            register_host(make(h), "TOKEN-SECRET", {"id": "x"})
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/api/v1/enrollment-keys/<redacted>" in m for m in requests), requests
    assert any("/api/v1/host/register/<redacted>" in m for m in requests), requests
    assert "KEY-VALUE-SECRET" not in caplog.text and "TOKEN-SECRET" not in caplog.text
    assert KEY not in caplog.text


def test_egress_bodies_match_v160_fields():
    bodies = []

    def h(req):
        import json as _j

        bodies.append((req.method, _j.loads(req.content)))
        return httpx.Response(200, json={"Code": 200, "Message": "ok", "Response": {"id": "e1"}})

    c = make(h)
    c.create_egress("n1", "gw", "10.9.0.0/24", nat=True, nodes={"nid": 256})
    c.update_egress("e1", "n1", "gw", "10.9.0.0/24", nat=False, nodes={"nid": 100})
    assert bodies[0] == ("POST", {"name": "gw", "network": "n1", "description": "", "range": "10.9.0.0/24",
                                  "nat": True, "nodes": {"nid": 256}, "status": True})
    assert bodies[1][1]["id"] == "e1" and bodies[1][1]["status"] is True and bodies[1][1]["nat"] is False


def test_update_network_sends_full_object_with_netid():
    calls = []

    def h(req):
        import json as _j

        calls.append(req.method)
        if req.method == "GET":
            return httpx.Response(200, json={"netid": "n1", "addressrange": "10.0.0.0/24", "auto_remove": False})
        body = _j.loads(req.content)
        assert body["netid"] == "n1" and body["addressrange"] == "10.0.0.0/24" and body["auto_remove"] is True
        return httpx.Response(200, json=body)

    make(h).update_network("n1", auto_remove=True)
    assert calls == ["GET", "PUT"]


def test_find_node_for_host_and_pin_address():
    def h(req):
        p = req.url.path
        if p == "/api/hosts":
            return httpx.Response(200, json=[{"id": "h1", "name": "gw"}, {"id": "h2", "name": "other"}])
        if p == "/api/nodes/n1" and req.method == "GET":
            return httpx.Response(200, json=[{"id": "x", "hostid": "h2"}, {"id": "nd1", "hostid": "h1", "address": "10.0.0.1/24"}])
        if p == "/api/nodes/n1/nd1" and req.method == "PUT":
            import json as _j

            b = _j.loads(req.content)
            assert b["address"] == "10.0.0.50/24" and b["hostid"] == "h1"
            return httpx.Response(200, json=b)
        return err(404, "nope")

    c = make(h)
    assert c.find_node_for_host("n1", "gw")["id"] == "nd1"
    assert c.find_node_for_host("n1", "missing") is None
    assert c.set_node_address("n1", "nd1", "10.0.0.50/24")["address"] == "10.0.0.50/24"
    with pytest.raises(NotFound):
        c.get_node("n1", "zzz")


def test_set_node_address_checks_duplicates_and_range_client_side():
    nodes = [{"id": "a", "hostid": "h1", "address": "10.0.0.1/24", "networkrange": "10.0.0.0/24"},
             {"id": "b", "hostid": "h2", "address": "10.0.0.2/24", "networkrange": "10.0.0.0/24"}]
    puts = []

    def h(req):
        if req.method == "GET":
            return httpx.Response(200, json=nodes)
        import json as _j

        puts.append(_j.loads(req.content))
        return httpx.Response(200, json=puts[-1])

    c = make(h)
    with pytest.raises(BadRequest, match="10.0.0.2 is used by node b"):
        c.set_node_address("n1", "a", "10.0.0.2")
    with pytest.raises(BadRequest, match="not a host address"):
        c.set_node_address("n1", "a", "10.0.1.5")
    with pytest.raises(BadRequest, match="invalid address"):
        c.set_node_address("n1", "a", "ten")
    assert puts == []
    assert c.set_node_address("n1", "a", "10.0.0.50")["address"] == "10.0.0.50/24"


def test_find_host_by_name_ambiguous():
    c = make(lambda r: httpx.Response(200, json=[{"id": "a", "name": "gw"}, {"id": "b", "name": "gw"}]))
    with pytest.raises(ValueError, match="2 Netmaker hosts are named 'gw'"):
        c.find_host_by_name("gw")


# -- error mapping -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status,msg,exc",
    [
        (400, "network cidr already in use", BadRequest),
        (400, "key names must be unique", BadRequest),
        (400, "no enrollmentkey found", NotFound),
        (400, "record not found", NotFound),
        (401, "unauthorized", Unauthorized),
        (403, "forbidden", Unauthorized),
        (404, "record not found", NotFound),
    ],
)
def test_error_mapping(status, msg, exc):
    calls = []

    def h(req):
        calls.append(1)
        return err(status, msg)

    with pytest.raises(exc) as ei:
        make(h).create_network("n1", "10.0.0.0/24")
    e = ei.value
    assert e.status == status and e.server_message == msg
    assert str(e).startswith("POST /api/networks: ") and msg in str(e)
    assert len(calls) == 1, "4xx must not be retried"
    assert_no_key(e)


def test_netmaker_json_500_on_post_is_not_retried():
    calls = []

    def h(req):
        calls.append(1)
        return err(500, "enrollment key is not valid: uses remaining: 0")

    with pytest.raises(ServerError, match="POST /api/v1/enrollment-keys: HTTP 500: enrollment key is not valid"):
        make(h).create_enrollment_key(["tag"], ["n1"])
    assert len(calls) == 1


def test_non_json_error_body():
    with pytest.raises(NotFound, match="404 page not found"):
        make(lambda r: httpx.Response(404, text="404 page not found")).get_network("x")


# -- retries and time bounds -------------------------------------------------------------------------
def test_connect_errors_retried_with_exponential_backoff_then_unavailable():
    calls = []
    clock = FakeClock()

    def h(req):
        calls.append(1)
        raise httpx.ConnectError("Connection refused")

    with pytest.raises(Unavailable) as ei:
        make(h, clock, retries=4, backoff=0.5).list_networks()
    assert len(calls) == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    msg = str(ei.value)
    assert msg.startswith("GET /api/networks: cannot connect to http://nm.test:8081")
    assert "gave up after 5 attempt(s)" in msg
    assert_no_key(ei.value)


def test_connect_error_then_success():
    seq = [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), None]

    def h(req):
        e = seq.pop(0)
        if e:
            raise e
        return httpx.Response(200, json={"netid": "n"})

    clock = FakeClock()
    assert make(h, clock).create_network("n", "10.0.0.0/24") == {"netid": "n"}  # connect errors: safe for POST
    assert clock.sleeps == [0.5, 1.0]


def test_5xx_retried_for_get_and_gateway_errors_for_post():
    statuses = [503, 500, 200]

    def h(req):
        s = statuses.pop(0)
        return err(s, "busy") if s != 200 else httpx.Response(200, json=[])

    assert make(h).list_networks() == []
    statuses2 = [502, 504, 200]

    def h2(req):
        s = statuses2.pop(0)
        return httpx.Response(s, text="bad gateway") if s != 200 else httpx.Response(200, json={"netid": "n"})

    assert make(h2).create_network("n", "10.0.0.0/24") == {"netid": "n"}


def test_5xx_exhausted_is_unavailable_with_server_message():
    with pytest.raises(Unavailable, match=r"GET /api/networks: HTTP 500: database is locked; gave up after 3"):
        make(lambda r: err(500, "database is locked"), retries=2).list_networks()


def test_read_timeout_not_retried_for_post_but_for_get():
    calls = []

    def h(req):
        calls.append(req.method)
        raise httpx.ReadTimeout("timed out")

    with pytest.raises(Unavailable, match="not retried: the request may have been applied"):
        make(h).create_network("n", "10.0.0.0/24")
    assert calls == ["POST"]
    calls.clear()
    with pytest.raises(Unavailable, match="gave up after 3"):
        make(h, retries=2).get_network("n")
    assert calls == ["GET"] * 3


def test_total_time_bounded_even_with_slow_attempts():
    """Each attempt burns 6 s (e.g. a blackholed connect): the call must stop before 30 s."""
    clock = FakeClock(per_request=6.0)

    def h(req):
        raise httpx.ConnectTimeout("connect timeout")

    start = clock.now
    with pytest.raises(Unavailable):
        make(h, clock, retries=10, backoff=0.5).list_networks()
    assert clock.now - start < 30.0


def test_per_attempt_timeout_clipped_to_remaining_budget():
    seen = []

    def h(req):
        seen.append(req.extensions["timeout"])
        raise httpx.ConnectError("refused")

    with pytest.raises(Unavailable):
        make(h, retries=1, backoff=0.1, timeout=60, total_timeout=10).list_networks()
    assert all(t["read"] <= 10 and t["connect"] <= 5 for t in seen)


def test_real_dead_port_fails_fast_and_clear():
    """No mock: a closed loopback port. Default policy must give up well within 30 s."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    import time

    t0 = time.monotonic()
    with pytest.raises(Unavailable, match=f"cannot connect to http://127.0.0.1:{port}") as ei:
        NetmakerClient(f"http://127.0.0.1:{port}", KEY, backoff=0.05).list_networks()
    assert time.monotonic() - t0 < 5
    assert_no_key(ei.value)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        NetmakerClient("", KEY)
    with pytest.raises(ValueError):
        NetmakerClient("http://x", KEY, retries=-1)


# -- TLS with a private CA ------------------------------------------------------------------------
def _make_ca_and_cert():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bgp4mesh test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem(ca), pem(cert), key_pem


def test_ca_pem_verifies_private_ca(tmp_path):
    ca_pem, cert_pem, key_pem = _make_ca_and_cert()
    (tmp_path / "c.pem").write_text(cert_pem)
    (tmp_path / "k.pem").write_text(key_pem)

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b'{"db_connected":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"https://127.0.0.1:{srv.server_address[1]}"
        with NetmakerClient(url, KEY, ca_pem=ca_pem, retries=0) as c:
            assert c.server_status() == {"db_connected": True}
        with pytest.raises(Unavailable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            with NetmakerClient(url, KEY, retries=0) as c:  # system roots do not know our CA
                c.server_status()
    finally:
        srv.shutdown()
        srv.server_close()

#!/usr/bin/env python3
"""How long the Netmaker control plane takes to become ready, measured with plain
`docker` commands (no Pulumi), on an internal Docker network.

It builds bgp4mesh/{mosquitto,netmaker,tls}:bench from images/, renders the
server env and the config files with bgp4mesh.netmaker_env (exactly what the
NetmakerServer component uploads), makes a throwaway CA with `cryptography`,
and starts mq -> server -> tls with static underlay addresses and aliases.

Measured: from `docker start` of the server container until
GET https://<tls ip>/api/server/status (through the TLS front, verified with the
CA) reports db_connected and broker_connected. First boot (empty sqlite volume:
schema + migrations) is reported separately; then the whole stack is stopped
and started N times (default 5) and the median of those restarts is printed.

Internet watch: the server's HTTP(S)_PROXY points at a recording sink on the
bridge gateway (this host) instead of the usual dead loopback port, so every
request the server would send off the lab is listed. The server log is also
searched for public-IP / geo / telemetry hosts.

    .venv/bin/python bench/netmaker_ready.py [--restarts 5] [--keep] [--down]

--keep leaves the stack running (state in /tmp/bgp4mesh-bench.json) for manual
tests; --down removes a kept stack. Everything created is labelled
bgp4mesh.stack=bench and removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import ipaddress
import json
import os
import secrets
import socketserver
import ssl
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgp4mesh import netmaker_env as ne  # noqa: E402
from bgp4mesh.addressing import underlay_plan  # noqa: E402
from bgp4mesh.config import Lab  # noqa: E402
from bgp4mesh.stack import load_file  # noqa: E402

STACK = "bench"
TAG = "bench"
STATE = Path("/tmp/bgp4mesh-bench.json")
LABEL = f"bgp4mesh.stack={STACK}"
SUSPECT = ("ifconfig.me", "ipify", "ipinfo", "ipapi", "cloudflare", "posthog", "github.com", "google")


def sh(*args: str, check: bool = True, input: bytes | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, input=input)
    if check and proc.returncode:
        raise SystemExit(f"{' '.join(args[:4])}...: {proc.stderr.decode().strip()}")
    return proc.stdout.decode().strip()


def name(role: str) -> str:
    return f"bgp4mesh-{STACK}-netmaker-{role}"


# --- a throwaway CA, like the component's pulumi_tls children ---------------------------

def make_ca(domain: str, ip: str) -> tuple[str, str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bgp4mesh bench CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain), x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return pem(ca), pem(cert), key_pem


# --- Internet watch: a proxy that only records what it is asked for ------------------------

class Sink(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr):
        self.seen: list[str] = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(handler):
                line = handler.rfile.readline(2048).decode(errors="replace").strip()
                self.seen.append(f"{time.strftime('%H:%M:%S')} {line}")
                handler.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

        super().__init__(addr, Handler)


# --- the stack ---------------------------------------------------------------------------

def upload(container: str, files: dict[str, str], mode: int = 0o644) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    sh("docker", "cp", "-", f"{container}:/", input=buf.getvalue())


def up(subnet: str, sink_port: int) -> dict:
    cfg = load_file("dev")
    cfg = cfg.model_copy(update={"lab": Lab(underlay=subnet)})
    plan = underlay_plan(cfg)
    nm = cfg.netmaker
    cp = ne.control_plane(nm, plan)
    net, control = f"bgp4mesh-{STACK}-underlay", f"bgp4mesh-{STACK}-netmaker-control"
    vol = f"bgp4mesh-{STACK}-netmaker-data"
    t0 = time.monotonic()
    for kind in ("mosquitto", "netmaker", "tls"):
        sh("docker", "build", "-q", "-t", f"bgp4mesh/{kind}:{TAG}", str(ROOT / "images" / kind))
    build_s = time.monotonic() - t0

    master_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    mq_user, mq_pass = "netmaker", secrets.token_urlsafe(24)
    ca, cert, key = make_ca(nm.domain, str(cp.tls_ip))
    env = ne.server_env(nm, plan, mq_username=mq_user)
    env["HTTP_PROXY"] = env["HTTPS_PROXY"] = f"http://{plan.gateway}:{sink_port}"  # record what would leave

    sh("docker", "network", "create", "--internal", "--subnet", subnet, "--gateway", str(plan.gateway), "--label", LABEL, net)
    sh("docker", "network", "create", "--internal", "--subnet", str(plan.control), "--gateway", str(plan.control_gateway), "--label", LABEL, control)
    sh("docker", "volume", "create", "--label", LABEL, vol)
    networks = {"public": net, "control": control}

    def create(role: str, image: str, envs: dict, extra: list[str] = (), command: list[str] = ()) -> None:
        """On the networks NetmakerServer attaches `role` to (ControlPlane.attachments)."""
        (first, ip, aliases), *more = cp.attachments(role)
        args = ["docker", "create", "--name", name(role), "--hostname", f"netmaker-{role}", "--restart", "unless-stopped",
                "--label", LABEL, "--network", networks[first], "--ip", str(ip), *(f"--network-alias={a}" for a in aliases)]
        for k, v in envs.items():
            args += ["--env", f"{k}={v}"]
        sh(*args, *extra, image, *command)
        for other, ip, aliases in more:
            sh("docker", "network", "connect", "--ip", str(ip), *(f"--alias={a}" for a in aliases), networks[other], name(role))

    fl = ne.flavor(nm)
    create("mq", f"bgp4mesh/mosquitto:{TAG}", {"MQ_USERNAME": mq_user, "MQ_PASSWORD_FILE": ne.MQ_PASSWORD_FILE})
    upload(name("mq"), {fl.mosquitto_conf: ne.mosquitto_conf(nm, plan), fl.mosquitto_acl: ne.mosquitto_acl(nm, mq_user)})
    upload(name("mq"), {ne.MQ_PASSWORD_FILE: mq_pass}, mode=0o600)
    create("server", f"bgp4mesh/netmaker:{TAG}", env, ["-v", f"{vol}:{fl.data_dir}"], ne.SERVER_COMMAND)
    upload(name("server"), {ne.SECRETS_FILE: ne.server_secrets(master_key, mq_pass)}, mode=0o600)
    create("tls", f"bgp4mesh/tls:{TAG}", {})
    path, conf = ne.tls_front_conf(nm, plan, master_key)
    upload(name("tls"), {path: conf, ne.CERT_FILE: cert, ne.KEY_FILE: key, ne.CA_FILE: ca})
    state = {
        "networks": [net, control], "volume": vol, "containers": [name(r) for r in ("mq", "server", "tls")],
        "api_url": cp.api_url, "client_endpoint": cp.client_endpoint, "broker_endpoint": cp.broker_endpoint,
        "master_key": master_key, "ca_pem": ca, "tls_ip": str(cp.tls_ip), "domain": nm.domain,
        "gateway": str(plan.gateway), "subnet": subnet, "build_s": round(build_s, 1), "server_env": env,
    }
    STATE.write_text(json.dumps(state, indent=1))
    return state


def status(state: dict, ctx: ssl.SSLContext) -> dict | None:
    try:
        with urllib.request.urlopen(state["api_url"] + "/api/server/status", timeout=2, context=ctx) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def start_and_wait(state: dict, ctx: ssl.SSLContext, timeout: float = 120) -> tuple[float, dict]:
    """Start mq, then the server (t=0), then tls; return seconds until ready."""
    mq, server, tls = state["containers"]
    sh("docker", "start", mq)
    t0 = time.monotonic()
    sh("docker", "start", server)
    sh("docker", "start", tls)
    while time.monotonic() - t0 < timeout:
        st = status(state, ctx)
        if st and st.get("db_connected") and st.get("broker_connected"):
            return time.monotonic() - t0, st
        time.sleep(0.05)
    raise SystemExit(f"not ready after {timeout}s; see docker logs {server}")


def stop(state: dict) -> None:
    sh("docker", "stop", "-t", "10", *reversed(state["containers"]))


def down(state: dict | None = None) -> None:
    state = state or (json.loads(STATE.read_text()) if STATE.exists() else None)
    if state:
        for c in state["containers"]:
            sh("docker", "rm", "-f", "-v", c, check=False)
        for n in state["networks"]:
            sh("docker", "network", "rm", n, check=False)
        sh("docker", "volume", "rm", state["volume"], check=False)
    # anything else this bench labelled (e.g. a probe netclient and its volume)
    for c in sh("docker", "ps", "-aq", "--filter", f"label={LABEL}").split():
        sh("docker", "rm", "-f", "-v", c, check=False)
    for n in sh("docker", "network", "ls", "-q", "--filter", f"label={LABEL}").split():
        sh("docker", "network", "rm", n, check=False)
    for v in sh("docker", "volume", "ls", "-q", "--filter", f"label={LABEL}").split():
        sh("docker", "volume", "rm", v, check=False)
    STATE.unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--subnet", default="172.28.0.0/24")
    ap.add_argument("--sink-port", type=int, default=3128)
    ap.add_argument("--keep", action="store_true", help="leave the stack running for manual tests")
    ap.add_argument("--down", action="store_true", help="remove a stack left by --keep and exit")
    args = ap.parse_args()
    if args.down:
        down()
        print("removed")
        return
    if STATE.exists():
        raise SystemExit(f"{STATE} exists: a bench stack is up; run with --down first")

    sink = None
    state = None
    try:
        state = up(args.subnet, args.sink_port)
        sink = Sink((state["gateway"], args.sink_port))  # the bridge gateway exists only now
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        ctx = ssl.create_default_context(cadata=state["ca_pem"])

        first, st = start_and_wait(state, ctx)
        print(f"first boot (empty database): ready after {first:.2f}s")
        times = []
        for i in range(args.restarts):
            stop(state)
            t, st = start_and_wait(state, ctx)
            times.append(t)
            print(f"restart {i + 1}: ready after {t:.2f}s")
        print(json.dumps({
            "measured": "docker start of the server container -> /api/server/status db_connected && broker_connected, "
                        "polled every 50 ms over HTTPS through the TLS front (CA-verified); broker started just before",
            "first_boot_s": round(first, 2),
            "restart_s": [round(t, 2) for t in times],
            "median_restart_s": round(statistics.median(times), 2) if times else None,
            "image_build_s": state["build_s"],
            "status": st,
        }, indent=1))

        logs = subprocess.run(["docker", "logs", state["containers"][1]], capture_output=True, text=True)
        text = (logs.stdout + logs.stderr).lower()
        hits = sorted({s for s in SUSPECT if s in text})
        print(f"server log mentions of Internet hosts: {hits or 'none'}")
        print(f"requests the server tried to send off the lab (proxy sink): {sink.seen or 'none'}")
        if args.keep:
            print(f"kept running; state in {STATE}; remove with: {sys.argv[0]} --down")
    finally:
        if sink:
            sink.shutdown()
            sink.server_close()
        if state and not args.keep:
            down(state)


if __name__ == "__main__":
    main()

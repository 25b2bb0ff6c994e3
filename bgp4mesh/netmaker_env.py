"""The Netmaker control plane rendered from the stack model: the server's
environment, the broker's and the TLS front's configuration, and the readiness
check. Pure functions of the config; no Docker, no Pulumi.

Checked against the netmaker v1.6.0 source (servercfg/serverconf.go,
logic/settings.go, migrate/migrate.go, main.go):

* netmaker calls its public-IP lookup (`GetPublicIP`) inside `GetAPIHost`,
  `GetCoreDNSAddr` and `GetMessageQueueEndpoint` *even when the variables below
  are set*: at startup, for every enrollment token and on every registration and
  pull. `PUBLIC_IP_SERVICE` is tried first and the first URL that answers 200
  wins, so the image runs a loopback responder (busybox httpd, answering with
  SERVER_HOST) and ifconfig.me / ipify / ipinfo are never tried.
* TELEMETRY, NETCLIENT_AUTO_UPDATE, MANAGE_DNS, STUN, ENDPOINT_DETECTION,
  VERBOSITY are copied into the database on the first start only (migrateSettings);
  afterwards `/api/server/settings` wins. The readiness check therefore reads
  the settings back and PUTs `RUNTIME_SETTINGS` if a reused volume disagrees.
* netmaker also looks up geo information (api.ipapi.is, speed.cloudflare.com,
  ipinfo.io) for hosts without a location, with no switch to turn it off. The
  netclient image seeds a location, and in offline (lab) stacks the server's Go
  HTTP client is pointed at a dead loopback proxy (HTTP(S)_PROXY, NO_PROXY for
  the lab), so any such request fails at once inside the container instead of
  trying the Internet.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal, Optional



from .addressing import UnderlayPlan
from .config import Netmaker
from .render import template


API_PORT = 8081
"""netmaker's plain-HTTP REST port (API_PORT); only the TLS front and the lab host reach it."""
HTTPS_PORT = 443
MQ_PORT = 1883
MQ_WS_PORT = 8883
PUBLIC_IP_RESPONDER_PORT = 8099
"""Loopback port of the public-IP responder inside the bgp4mesh/netmaker image."""
DEAD_PROXY = "http://127.0.0.1:9"
"""Nothing listens there: with it as HTTP(S)_PROXY an Internet request fails in microseconds."""

TLS_DIR = "/etc/bgp4mesh/tls"
CERT_FILE = f"{TLS_DIR}/cert.pem"
KEY_FILE = f"{TLS_DIR}/key.pem"
CA_FILE = f"{TLS_DIR}/ca.pem"

RUNTIME_SETTINGS = {"telemetry": "off", "netclientautoupdate": False, "manage_dns": False, "stun": False}
"""Server settings (GET/PUT /api/server/settings) that must hold so nothing calls the
Internet and no client updates itself; STUN as the stack says (`runtime_settings`)."""

ACME_ROOTS_FILE = f"{TLS_DIR}/acme-roots.pem"
"""netmaker.acme_ca_roots in the TLS front (a test CA's directory is served over HTTPS
signed by its own root)."""
CADDY_DATA_DIR = "/data"
"""Where caddy keeps its ACME account and certificates (the official image's XDG_DATA_HOME):
a volume, so a replaced front does not ask the CA again (Let's Encrypt rate-limits)."""


def runtime_settings(nm: Netmaker) -> dict:
    """RUNTIME_SETTINGS with STUN on exactly when the stack names STUN servers."""
    if not nm.stun_servers:
        return dict(RUNTIME_SETTINGS)
    return {**RUNTIME_SETTINGS, "stun": True, "stun_servers": ",".join(nm.stun_servers)}


@dataclass(frozen=True)
class Flavor:
    """What differs between our Debian images (build) and the upstream ones (pull)."""

    images: Literal["build", "pull"]
    data_dir: str
    """Where netmaker's ./data (sqlite) lives: WORKDIR/data."""
    mosquitto_conf: str
    mosquitto_passwd: str
    local_ip_responder: bool
    """The image answers PUBLIC_IP_SERVICE on loopback (ours does; gravitl's does not)."""
    tls_front: Literal["nginx", "caddy"]

    @property
    def tls_config_path(self) -> str:
        return "/etc/nginx/nginx.conf" if self.tls_front == "nginx" else "/etc/caddy/Caddyfile"


def flavor(nm: Netmaker) -> Flavor:
    if nm.images == "build":
        return Flavor(
            images="build",
            data_dir="/var/lib/netmaker/data",
            mosquitto_conf="/etc/mosquitto/mosquitto.conf",
            mosquitto_passwd="/run/mosquitto/passwd",
            local_ip_responder=True,
            tls_front="nginx" if nm.tls == "internal-ca" else "caddy",
        )
    return Flavor(
        images="pull",
        data_dir="/root/data",
        mosquitto_conf="/mosquitto/config/mosquitto.conf",
        mosquitto_passwd="/mosquitto/config/password.txt",
        local_ip_responder=False,
        tls_front="caddy",
    )


@dataclass(frozen=True)
class ControlPlane:
    """Names and addresses of the three containers, as each party sees them."""

    domain: str
    lab: bool
    tls_ip: Optional[IPv4Address]
    server_ip: Optional[IPv4Address]
    mq_ip: Optional[IPv4Address]
    acme: bool

    @property
    def broker_host(self) -> str:
        return f"broker.{self.domain}"

    @property
    def client_endpoint(self) -> str:
        """host:port netclients use for every API call (SERVER_API_CONN_STRING)."""
        return f"{self.domain}:{HTTPS_PORT}"

    @property
    def api_url(self) -> str:
        """Base URL for the Python manager: the TLS front by address in a lab (the
        host cannot resolve Docker aliases; the certificate has an IP SAN), by name otherwise."""
        return f"https://{self.tls_ip}" if self.lab else f"https://{self.domain}"

    @property
    def broker_endpoint(self) -> str:
        """What netclients dial (BROKER_ENDPOINT): plain MQTT on the lab underlay,
        MQTT over wss through the TLS front in an ACME deployment."""
        if self.acme:
            return f"wss://{self.broker_host}"
        return f"tcp://{self.broker_host}:{MQ_PORT}"

    @property
    def server_broker_endpoint(self) -> str:
        """What the server dials (SERVER_BROKER_ENDPOINT): by address when known."""
        return f"tcp://{self.mq_ip or 'mq'}:{MQ_PORT}"

    @property
    def api_upstream(self) -> str:
        return f"{self.server_ip or 'netmaker'}:{API_PORT}"

    @property
    def aliases(self) -> dict[str, list[str]]:
        """Docker network aliases per role: netclients find the API at the domain
        and the broker at broker.<domain> through Docker's DNS."""
        return {"mq": ["mq", self.broker_host], "server": ["netmaker"], "tls": [self.domain]}


def control_plane(nm: Netmaker, plan: Optional[UnderlayPlan]) -> ControlPlane:
    if plan is None:
        return ControlPlane(nm.domain, False, None, None, None, nm.tls == "acme")
    slots = plan.netmaker
    return ControlPlane(nm.domain, True, slots["tls"], slots["server"], slots["mq"], nm.tls == "acme")


def no_proxy(cp: ControlPlane, plan: Optional[UnderlayPlan]) -> str:
    hosts = ["localhost", "127.0.0.1", "::1", "mq", "netmaker", cp.domain, f".{cp.domain}"]
    if plan is not None:
        hosts.append(str(plan.subnet))
    return ",".join(hosts)


def server_env(
    nm: Netmaker,
    plan: Optional[UnderlayPlan],
    *,
    master_key: str,
    mq_username: str,
    mq_password: str,
    public_address: Optional[str] = None,
) -> dict[str, str]:
    """The netmaker server's environment. A lab stack adds the dead-proxy guard, so
    nothing the server tries on the Internet leaves the machine."""
    cp = control_plane(nm, plan)
    fl = flavor(nm)
    env = {
        # identity and where clients reach the API
        "SERVER_NAME": cp.domain,  # MQTT topic prefix and the key in netclients' servers.json
        "NM_DOMAIN": cp.domain,
        "SERVER_HTTP_HOST": cp.domain,  # goes into enrollment tokens: netclients dial https://<this>/api/v1/host/register
        "SERVER_API_CONN_STRING": cp.client_endpoint,  # every later netclient call: https://<this>/...
        "API_PORT": str(API_PORT),
        "REST_BACKEND": "on",
        "DISABLE_REMOTE_IP_CHECK": "on",  # never SetHost() from a public-IP lookup (fatal offline)
        # broker
        "MESSAGEQUEUE_BACKEND": "on",
        "BROKER_TYPE": "mosquitto",
        "SERVER_BROKER_ENDPOINT": cp.server_broker_endpoint,
        "BROKER_ENDPOINT": cp.broker_endpoint,
        "MQ_USERNAME": mq_username,
        "MQ_PASSWORD": mq_password,
        # auth and storage
        "MASTER_KEY": master_key,
        "DATABASE": "sqlite",
        "VERBOSITY": "1",
        # first-boot settings (copied into the DB once; enforced again by the readiness check)
        "TELEMETRY": "off",
        "NETCLIENT_AUTO_UPDATE": "disabled",
        "MANAGE_DNS": "false",
        "STUN": "true" if nm.stun_servers else "false",
        "DNS_MODE": "off",
        "METRICS_EXPORTER": "off",
    }
    if nm.stun_servers:
        env["STUN_SERVERS"] = ",".join(nm.stun_servers)
    if cp.lab or public_address:
        env["SERVER_HOST"] = str(cp.tls_ip) if cp.lab else public_address  # reported as the server's public IP
        env["COREDNS_ADDR"] = str(cp.server_ip)  # never used with DNS_MODE off; set to skip its lookup
    if fl.local_ip_responder:
        env["PUBLIC_IP_SERVICE"] = f"http://127.0.0.1:{PUBLIC_IP_RESPONDER_PORT}/ip"
        env["PUBLIC_IP_RESPONDER_PORT"] = str(PUBLIC_IP_RESPONDER_PORT)
    if cp.lab:
        env["HTTP_PROXY"] = env["HTTPS_PROXY"] = DEAD_PROXY
        env["NO_PROXY"] = no_proxy(cp, plan)
    return env


def env_list(env: dict[str, str]) -> list[str]:
    """Docker's KEY=VALUE form, sorted so the container input is stable."""
    return [f"{k}={v}" for k, v in sorted(env.items())]


# --- configuration files -------------------------------------------------------------



def mosquitto_conf(nm: Netmaker, plan: Optional[UnderlayPlan]) -> str:
    cp = control_plane(nm, plan)
    fl = flavor(nm)
    return template("mosquitto.conf.j2").render(
        passwd_file=fl.mosquitto_passwd,
        tcp_port=MQ_PORT,
        server_url=cp.server_broker_endpoint,
        clients_url=cp.broker_endpoint,
        websockets_port=MQ_WS_PORT if fl.tls_front == "caddy" and cp.acme else None,
        broker_host=cp.broker_host,
    )


def nginx_conf(nm: Netmaker, plan: Optional[UnderlayPlan]) -> str:
    cp = control_plane(nm, plan)
    return template("nginx.conf.j2").render(
        domain=cp.domain,
        tls_address=cp.tls_ip or "",
        api_upstream=cp.api_upstream,
        https_port=HTTPS_PORT,
        cert_file=CERT_FILE,
        key_file=KEY_FILE,
    )


def caddyfile(nm: Netmaker, plan: Optional[UnderlayPlan]) -> str:
    cp = control_plane(nm, plan)
    return template("Caddyfile.j2").render(
        domain=cp.domain,
        broker_host=cp.broker_host,
        tls_address=cp.tls_ip if not cp.acme else None,
        acme_email=nm.acme_email if cp.acme else None,
        acme_directory=nm.acme_directory if cp.acme else None,
        acme_roots_file=ACME_ROOTS_FILE if cp.acme and nm.acme_ca_roots else None,
        api_upstream=cp.api_upstream,
        ws_upstream=f"{cp.mq_ip or 'mq'}:{MQ_WS_PORT}" if cp.acme else None,
        cert_file=CERT_FILE,
        key_file=KEY_FILE,
    )


def tls_front_conf(nm: Netmaker, plan: Optional[UnderlayPlan]) -> tuple[str, str]:
    """(path in the container, content) of the TLS front's configuration."""
    fl = flavor(nm)
    if fl.tls_front == "nginx":
        return fl.tls_config_path, nginx_conf(nm, plan)
    return fl.tls_config_path, caddyfile(nm, plan)


MOSQUITTO_PULL_START = """#!/bin/sh
# eclipse-mosquitto image: make the password file from the environment, then run.
set -eu
umask 077
mosquitto_passwd -b -c {passwd} "$MQ_USERNAME" "$MQ_PASSWORD"
chown mosquitto:mosquitto {passwd} 2>/dev/null || true
exec /usr/sbin/mosquitto -c {conf}
"""


# --- readiness ----------------------------------------------------------------------

READY_SCRIPT = r'''
"""Wait until netmaker reports db and broker connected through the TLS front,
then make sure the runtime settings keep it off the Internet. Stdlib only."""
import json, os, ssl, sys, time, urllib.error, urllib.request

url = os.environ["NM_API_URL"].rstrip("/")
key = os.environ.get("NM_MASTER_KEY", "")
timeout = float(os.environ.get("NM_READY_TIMEOUT", "120"))
want = json.loads(os.environ.get("NM_RUNTIME_SETTINGS", "{}"))
ctx = ssl.create_default_context(cadata=os.environ["NM_CA_PEM"]) if os.environ.get("NM_CA_PEM") else ssl.create_default_context()
where = os.environ.get("NM_HINT", "")

def call(method, path, body=None):
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    with urllib.request.urlopen(req, timeout=10, context=ctx if url.startswith("https") else None) as resp:
        return json.loads(resp.read() or b"null")

start = time.monotonic()
last = "no answer yet"
while True:
    try:
        status = call("GET", "/api/server/status")
        if status.get("db_connected") and status.get("broker_connected"):
            break
        last = json.dumps(status)
    except (OSError, ValueError) as exc:  # URLError, ssl errors, refused, bad JSON
        last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    if time.monotonic() - start > timeout:
        sys.exit(f"netmaker at {url} not ready after {timeout:.0f}s (need db_connected and broker_connected); last: {last}{where}")
    time.sleep(0.5)
waited = time.monotonic() - start

changed = []
if want and key:
    settings = call("GET", "/api/server/settings")
    settings = settings.get("Response", settings) if isinstance(settings, dict) else settings
    changed = sorted(k for k, v in want.items() if settings.get(k) != v)
    if changed:
        settings.update(want)
        call("PUT", "/api/server/settings", settings)
        again = call("GET", "/api/server/settings")
        again = again.get("Response", again)
        still = sorted(k for k, v in want.items() if again.get(k) != v)
        if still:
            sys.exit(f"netmaker at {url}: could not set runtime settings {still}")
print(json.dumps({"ready_after_s": round(waited, 1), "status": status, "settings_corrected": changed}))
'''
"""Run by the component's readiness Command with the Pulumi program's Python;
environment: NM_API_URL, NM_CA_PEM, NM_MASTER_KEY, NM_READY_TIMEOUT,
NM_RUNTIME_SETTINGS (JSON), NM_HINT (appended to the timeout message)."""

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

import json
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal, Optional



from .addressing import UnderlayPlan
from .config import Netmaker
from .jinja import template


API_PORT = 8081
"""netmaker's plain-HTTP REST port (API_PORT); only the TLS front and the lab host reach it."""
HTTPS_PORT = 443
MQ_PORT = 1883
"""The clients' plain MQTT listener (labs): the ACL applies."""
MQ_WS_PORT = 8883
"""The clients' websockets listener behind the TLS front (ACME): the ACL applies."""
MQ_SERVER_PORT = 1884
"""The Netmaker server's own listener: every topic, so only the server may reach it."""
MQ_PASSWORD_FILE = "/run/secrets/mq-password"
"""The broker user's password, uploaded 0600 for root: the start script hashes it into
the password file, so it never sits in the container's environment (`docker inspect`)."""
MONITOR_USERNAME = "bgp4mesh-monitor"
"""The control-plane exporter's broker user (stacks with `monitoring`): it reads $SYS/# on
the clients' listeners and nothing else, and is not in the server listener's password file."""
MONITOR_PASSWORD_FILE = "/run/secrets/mq-monitor-password"
"""Its password, uploaded 0600 for root like MQ_PASSWORD_FILE."""
CLIENTS_PASSWD = "/run/mosquitto/clients-passwd"
"""With a monitoring user: the clients' listeners' password file (the server's user and it),
made by the image's start script; the server listener keeps the server's user alone."""
LOOPBACK = "127.0.0.1"
MONITOR_BROKER = f"tcp://{LOOPBACK}:{MQ_PORT}"
"""On real hosts with `monitoring`: where the control-plane exporter (host networking on the
control host) reads $SYS. Behind an ACME front clients get wss:// alone, which mosquitto_sub
does not speak, so the broker also keeps its plain clients' listener (ACL and all), and its
container publishes it on the control host's loopback only (`monitor_ports`)."""
MOSQUITTO_MIN_VERSION = (2, 0, 16)
"""CVE-2023-0809 (memory exhaustion from a crafted first packet, before authentication)."""
PUBLIC_IP_RESPONDER_PORT = 8099
"""Loopback port of the public-IP responder inside the bgp4mesh/netmaker image."""
DEAD_PROXY = "http://127.0.0.1:9"
"""Nothing listens there: with it as HTTP(S)_PROXY an Internet request fails in microseconds."""

TLS_DIR = "/etc/bgp4mesh/tls"
CERT_FILE = f"{TLS_DIR}/cert.pem"
KEY_FILE = f"{TLS_DIR}/key.pem"
CA_FILE = f"{TLS_DIR}/ca.pem"

RUNTIME_SETTINGS = {"telemetry": "off", "netclientautoupdate": False, "manage_dns": False, "stun": False, "basic_auth": False}
"""Server settings (GET/PUT /api/server/settings) that must hold so nothing calls the
Internet, no client updates itself and nobody but the super-admin logs in with a password
(basic auth off also refuses createsuperadmin); STUN as the stack says (`runtime_settings`)."""

SECRETS_FILE = "/etc/bgp4mesh/netmaker.yaml"
"""The server's credentials (master key, broker password), a 0600 file read with `-c`:
netmaker takes them from its config file when the environment has none, so `docker
inspect` shows no secret (servercfg.GetMasterKey / GetMqPassword)."""

ADMIN_PASSWORD_LENGTH = 32

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
    mosquitto_acl: str
    mosquitto_passwd: str
    clients_passwd: str
    """The clients' listeners' password file when the broker has a monitoring user."""
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
            mosquitto_acl="/etc/mosquitto/acl",
            mosquitto_passwd="/run/mosquitto/passwd",
            clients_passwd=CLIENTS_PASSWD,
            local_ip_responder=True,
            tls_front="nginx" if nm.tls == "internal-ca" else "caddy",
        )
    return Flavor(
        images="pull",
        data_dir="/root/data",
        mosquitto_conf="/mosquitto/config/mosquitto.conf",
        mosquitto_acl="/mosquitto/config/acl",
        mosquitto_passwd="/mosquitto/config/password.txt",
        clients_passwd="/mosquitto/config/clients-password.txt",
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
    """On the control network (a lab's; outside a lab, the component's bridge)."""
    mq_ip: Optional[IPv4Address]
    acme: bool
    control: dict[str, IPv4Address] = field(default_factory=dict)
    """A lab: each part's address on the control network (mq, server, tls)."""

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
        """What the server dials (SERVER_BROKER_ENDPOINT): its own listener, on the control
        network (by address in a lab)."""
        return f"tcp://{self.control.get('mq', 'mq')}:{MQ_SERVER_PORT}"

    @property
    def api_upstream(self) -> str:
        return f"{self.server_ip or 'netmaker'}:{API_PORT}"

    @property
    def aliases(self) -> dict[str, list[str]]:
        """Docker network aliases per role: netclients find the API at the domain
        and the broker at broker.<domain> through Docker's DNS."""
        return {"mq": ["mq", self.broker_host], "server": ["netmaker"], "tls": [self.domain]}

    def attachments(self, role: str) -> list[tuple[str, Optional[IPv4Address], list[str]]]:
        """(network, address, aliases) of `role`: "public" is where members reach the broker
        and the front, "control" where the server sits with them. Outside a lab both are the
        component's bridge, which no member reaches: one attachment."""
        if not self.lab:
            return [("public", None, self.aliases[role])]
        public = {"mq": self.mq_ip, "tls": self.tls_ip}
        attached = [("public", public[role], self.aliases[role])] if role in public else []
        return attached + [("control", self.control[role], self.aliases[role] if role == "server" else [])]


def control_plane(nm: Netmaker, plan: Optional[UnderlayPlan]) -> ControlPlane:
    if plan is None:
        return ControlPlane(nm.domain, False, None, None, None, nm.tls == "acme")
    slots = plan.netmaker
    return ControlPlane(nm.domain, True, slots["tls"], plan.control_hosts["server"], slots["mq"], nm.tls == "acme", dict(plan.control_hosts))


def no_proxy(cp: ControlPlane, plan: Optional[UnderlayPlan]) -> str:
    hosts = ["localhost", "127.0.0.1", "::1", "mq", "netmaker", cp.domain, f".{cp.domain}"]
    if plan is not None:
        hosts += [str(plan.subnet), str(plan.control)]
    return ",".join(hosts)


def server_env(
    nm: Netmaker,
    plan: Optional[UnderlayPlan],
    *,
    mq_username: str,
    public_address: Optional[str] = None,
) -> dict[str, str]:
    """The netmaker server's environment, with no secret in it (see SECRETS_FILE). A lab
    stack adds the dead-proxy guard, so nothing the server tries on the Internet leaves
    the machine."""
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
        # auth and storage (MASTER_KEY and MQ_PASSWORD come from SECRETS_FILE)
        "BASIC_AUTH": "no",
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


def server_secrets(master_key: str, mq_password: str) -> str:
    """SECRETS_FILE's content: netmaker's config file (config/config.go, `server:`)."""
    return json.dumps({"server": {"masterkey": master_key, "mqpassword": mq_password}}) + "\n"  # JSON is YAML


SERVER_COMMAND = ["-c", SECRETS_FILE]
"""netmaker's arguments (both images' entrypoints pass them on)."""


def env_list(env: dict[str, str]) -> list[str]:
    """Docker's KEY=VALUE form, sorted so the container input is stable."""
    return [f"{k}={v}" for k, v in sorted(env.items())]


# --- configuration files -------------------------------------------------------------



def mosquitto_conf(nm: Netmaker, plan: Optional[UnderlayPlan], monitor: bool = False) -> str:
    """The server's listener (in a lab bound to the broker's control-network address, which
    members cannot reach) and the clients' listeners under the ACL: plain MQTT in a lab,
    websockets behind an ACME front (clients never reach the broker directly there). With
    `monitor`, the clients' listeners also know MONITOR_USERNAME (Flavor.clients_passwd), and
    behind an ACME front the plain listener stays for it (MONITOR_BROKER)."""
    cp = control_plane(nm, plan)
    server_bind = cp.control.get("mq")
    fl = flavor(nm)
    return template("mosquitto.conf.j2").render(
        passwd_file=fl.mosquitto_passwd,
        clients_passwd_file=fl.clients_passwd if monitor else fl.mosquitto_passwd,
        acl_file=fl.mosquitto_acl,
        server_listener=f"{MQ_SERVER_PORT} {server_bind}" if server_bind else MQ_SERVER_PORT,
        tcp_port=None if cp.acme and not monitor else MQ_PORT,
        tcp_url=MONITOR_BROKER + " on the control host, for the control-plane exporter" if cp.acme else cp.broker_endpoint,
        server_url=cp.server_broker_endpoint,
        websockets_port=MQ_WS_PORT if fl.tls_front == "caddy" and cp.acme else None,
        broker_host=cp.broker_host,
    )


def monitor_ports(cp: ControlPlane, monitor: bool) -> list[tuple[str, int]]:
    """(host address, port) the broker's container publishes: on a real host with a monitoring
    user, its plain listener on loopback alone (MONITOR_BROKER); nothing in a lab."""
    return [(LOOPBACK, MQ_PORT)] if monitor and not cp.lab else []


def mosquitto_acl(nm: Netmaker, username: str, monitor: Optional[str] = None) -> str:
    """What the clients' listeners allow the shared user: the topics netclient v1.6.0 uses
    (SERVER_NAME is the domain), nothing else: no `#`, no $SYS, no serversync; and the
    monitoring user, when there is one, $SYS/# to read and nothing else."""
    return template("mosquitto.acl.j2").render(username=username, server=control_plane(nm, None).domain, monitor=monitor)


@dataclass(frozen=True)
class ClientRoute:
    """An API call netclients make: the front passes it from any source, since Netmaker
    authenticates each one (host token, enrollment token, or none for status)."""

    pattern: str
    """Anchored regular expression on the path."""
    methods: tuple[str, ...]
    logged: bool = True
    """False where the path carries a credential (the enrollment token)."""


CLIENT_ROUTES = (
    ClientRoute(r"^/api/v1/host/register/[^/]+$", ("POST",), logged=False),
    ClientRoute(r"^/api/hosts/adm/authenticate$", ("POST",)),
    ClientRoute(r"^/api/v1/host$", ("GET",)),
    ClientRoute(r"^/api/v1/host/[^/]+/peer_info$", ("GET",)),
    ClientRoute(r"^/api/v1/fallback/host/[^/]+$", ("PUT",)),
    ClientRoute(r"^/api/nodes/[^/]+/[^/]+$", ("GET", "DELETE")),
    ClientRoute(r"^/api/hosts/[^/]+$", ("DELETE",)),
    ClientRoute(r"^/api/server/status$", ("GET",)),
)
"""Every API call netclient v1.6.0 makes (its functions/, auth/ and networking/ packages),
with the methods netmaker's router takes for it. Everything else (users, server settings,
networks, keys, ...) is for the operator: from `netmaker.admin_from` or with the master key."""


def front_access(nm: Netmaker, master_key: str) -> dict:
    """What the TLS front's allow-list needs: netclients' routes, the operator's sources
    and the header bgp4mesh's own calls carry."""
    return {
        "client_routes": CLIENT_ROUTES,
        "admin_from": [str(n) for n in nm.admin_from],
        "master_authorization": f"Bearer {master_key}",
    }


def nginx_conf(nm: Netmaker, plan: Optional[UnderlayPlan], master_key: str) -> str:
    cp = control_plane(nm, plan)
    return template("nginx.conf.j2").render(
        **front_access(nm, master_key),
        domain=cp.domain,
        tls_address=cp.tls_ip or "",
        api_upstream=cp.api_upstream,
        https_port=HTTPS_PORT,
        cert_file=CERT_FILE,
        key_file=KEY_FILE,
    )


def caddyfile(nm: Netmaker, plan: Optional[UnderlayPlan], master_key: str) -> str:
    cp = control_plane(nm, plan)
    return template("Caddyfile.j2").render(
        **front_access(nm, master_key),
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


def tls_front_conf(nm: Netmaker, plan: Optional[UnderlayPlan], master_key: str) -> tuple[str, str]:
    """(path in the container, content) of the TLS front's configuration; secret, since
    it holds the master key the operator's calls are let through with."""
    fl = flavor(nm)
    render = nginx_conf if fl.tls_front == "nginx" else caddyfile
    return fl.tls_config_path, render(nm, plan, master_key)


MOSQUITTO_PULL_START = """#!/bin/sh
# eclipse-mosquitto image: hash the uploaded 0600 secret into the password file
# (stdin, never an argument), then run. With MONITOR_USERNAME, the clients' listeners'
# file also holds the monitoring user (as images/mosquitto/entrypoint.sh makes it).
set -eu
umask 077
pw="$(cat {secret})"
rm -f {passwd}
printf '%s\\n%s\\n' "$pw" "$pw" | mosquitto_passwd -c {passwd} "$MQ_USERNAME" >/dev/null
chown mosquitto:mosquitto {passwd} 2>/dev/null || true
if [ -n "${{MONITOR_USERNAME:-}}" ]; then
  rm -f {clients}
  cp {passwd} {clients}
  pw="$(cat "$MONITOR_PASSWORD_FILE")"
  printf '%s\\n%s\\n' "$pw" "$pw" | mosquitto_passwd {clients} "$MONITOR_USERNAME" >/dev/null
  chown mosquitto:mosquitto {clients} 2>/dev/null || true
fi
exec /usr/sbin/mosquitto -c {conf}
"""


def mosquitto_pull_start(nm: Netmaker) -> str:
    """The pulled eclipse-mosquitto's start script (MOSQUITTO_PULL_START) with its flavor's paths."""
    fl = flavor(nm)
    return MOSQUITTO_PULL_START.format(secret=MQ_PASSWORD_FILE, passwd=fl.mosquitto_passwd, clients=fl.clients_passwd, conf=fl.mosquitto_conf)


# --- readiness ----------------------------------------------------------------------

READY_SCRIPT = (Path(__file__).parent / "netmaker_ready.py").read_text()
"""Run by the component's readiness Command with the Pulumi program's Python (see
bgp4mesh/netmaker_ready.py for what it checks and its environment)."""

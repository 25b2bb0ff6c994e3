"""NetmakerServer: the mesh control plane -- MQTT broker, Netmaker server and the
TLS front netclients talk to -- as three containers on the underlay network.

Start order is mq -> server -> tls (the server exits when it cannot reach the
broker within ~10 s of trying; its image also waits for the broker before it
starts). `{name}-ready` then waits, from the machine running Pulumi, until
GET <api_url>/api/server/status reports db_connected and broker_connected
through the TLS front, and puts back the runtime settings that keep the server
off the Internet (see bgp4mesh.netmaker_env).

Lab (internal-ca): a private CA made by pulumi_tls signs the front's
certificate for `netmaker.domain` (plus broker.<domain>) and the front's
underlay address, so netclients verify https://<domain> (a Docker alias) and
the manager verifies https://<tls address>. ACME (prod) renders a Caddyfile and
publishes 80/443 instead; declared, not exercised in the lab.

Prerequisite for `images: build`: scripts/build-binaries (run by
scripts/bootstrap) has put the binaries into images/*/bin/.
"""

from __future__ import annotations

import json
import sys
from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

from bgp4mesh import netmaker_env as ne
from bgp4mesh.addressing import UnderlayPlan
from bgp4mesh.config import Netmaker

from .docker_parts import IMAGES_DIR, labels, resource_name

MQ_USERNAME = "netmaker"
CA_VALIDITY_HOURS = 10 * 365 * 24
CERT_VALIDITY_HOURS = 2 * 365 * 24
KINDS = ("mosquitto", "netmaker", "tls")


class NetmakerServerArgs(TypedDict):
    """Inputs of NetmakerServer; validated config objects, no raw dicts."""

    netmaker: Netmaker
    """The validated `bgp4mesh:netmaker` section: version, images build|pull, domain, tls."""
    stack: str
    """Stack name: Docker names are bgp4mesh-<stack>-netmaker-<role>, labels bgp4mesh.stack=<stack>."""
    network: Optional[pulumi.Input[str]]
    """Name of the Docker network the three containers join (the lab underlay). Outside
    a lab, None or "host" makes the component create its own bridge network
    bgp4mesh-<stack>-netmaker (aliases need a user-defined network)."""
    underlay: Optional[UnderlayPlan]
    """The lab's address plan (static addresses from `.netmaker`: mq, server, tls);
    None outside a lab, where Docker assigns addresses and the front publishes 80/443."""
    image_tag: NotRequired[str]
    """Tag of locally built images, bgp4mesh/<kind>:<tag> (default "local")."""
    images: NotRequired[dict[str, pulumi.Input[str]]]
    """Already-built image references by kind ("mosquitto", "netmaker", "tls"); kinds
    listed here are not built or pulled by this component."""
    ready_timeout: NotRequired[int]
    """Seconds the readiness check waits for db and broker (default 120)."""


class NetmakerServer(pulumi.ComponentResource):
    """The Netmaker control plane for one stack."""

    api_url: pulumi.Output[str]
    """Base URL for the Python manager: https://<tls underlay address> in a lab
    (verify with `ca_certificate`), https://<domain> otherwise."""
    client_endpoint: pulumi.Output[str]
    """host:port netclients use for the API (SERVER_API_CONN_STRING), e.g. nm.lab:443."""
    broker_endpoint: pulumi.Output[str]
    """MQTT URL handed to netclients, e.g. tcp://broker.nm.lab:1883."""
    ca_certificate: pulumi.Output[str]
    """PEM of the private CA netclients must trust ("" with ACME)."""
    master_key: pulumi.Output[str]
    """Netmaker MASTER_KEY (secret): `Authorization: Bearer <master_key>`."""
    server_name: pulumi.Output[str]
    """SERVER_NAME: the server's key in netclients' servers.json and MQTT topic prefix."""
    connection: pulumi.Output[dict]
    """{api_url, master_key, ca_pem} for bgp4mesh.providers (secret)."""
    containers: pulumi.Output[dict]
    """Docker container names by role: mq, server, tls."""
    ready: pulumi.Output[str]
    """JSON printed by the readiness check: seconds waited, /api/server/status, settings corrected."""

    def __init__(self, name: str, args: NetmakerServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:NetmakerServer", name, None, opts)
        nm, stack, plan = args["netmaker"], args["stack"], args["underlay"]
        cp = ne.control_plane(nm, plan)
        fl = ne.flavor(nm)
        child = pulumi.ResourceOptions(parent=self)
        docker_labels = [docker.ContainerLabelArgs(**label) for label in labels(stack)]

        # --- secrets ------------------------------------------------------------------
        master_key = random.RandomPassword(f"{name}-master-key", length=32, special=False, opts=child)
        mq_password = random.RandomPassword(f"{name}-mq-password", length=32, special=False, opts=child)

        # --- TLS material -----------------------------------------------------------------
        ca_pem: pulumi.Output[str] = pulumi.Output.from_input("")
        cert_pem: pulumi.Output[str] = pulumi.Output.from_input("")
        key_pem: pulumi.Output[str] = pulumi.Output.from_input("")
        if nm.tls == "internal-ca":
            ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
            ca = tls.SelfSignedCert(
                f"{name}-ca",
                private_key_pem=ca_key.private_key_pem,
                is_ca_certificate=True,
                subject=tls.SelfSignedCertSubjectArgs(common_name=f"bgp4mesh {stack} Netmaker CA", organization="bgp4mesh"),
                validity_period_hours=CA_VALIDITY_HOURS,
                allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
                opts=child,
            )
            server_key = tls.PrivateKey(f"{name}-tls-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
            csr = tls.CertRequest(
                f"{name}-tls-csr",
                private_key_pem=server_key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name=nm.domain, organization="bgp4mesh"),
                dns_names=[nm.domain, cp.broker_host],
                ip_addresses=[str(cp.tls_ip)] if cp.tls_ip else [],
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-tls-cert",
                cert_request_pem=csr.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                validity_period_hours=CERT_VALIDITY_HOURS,
                allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
                opts=child,
            )
            ca_pem, cert_pem, key_pem = ca.cert_pem, cert.cert_pem, pulumi.Output.secret(server_key.private_key_pem)

        # --- images and storage -----------------------------------------------------------
        images = self._images(name, nm, args.get("images") or {}, args.get("image_tag", "local"), child)
        data = docker.Volume(
            f"{name}-data",
            name=resource_name(stack, "netmaker-data"),
            labels=[docker.VolumeLabelArgs(**label) for label in labels(stack)],
            opts=child,
        )

        net_name = args.get("network")
        if plan is None and (net_name is None or net_name == "host"):
            net_name = docker.Network(
                f"{name}-network",
                name=resource_name(stack, "netmaker"),
                driver="bridge",
                labels=[docker.NetworkLabelArgs(**label) for label in labels(stack)],
                opts=child,
            ).name
        elif net_name is None:
            raise ValueError("NetmakerServer: a lab stack needs `network` (the underlay Docker network)")

        def network(role: str) -> list[docker.ContainerNetworksAdvancedArgs]:
            ip = {"mq": cp.mq_ip, "server": cp.server_ip, "tls": cp.tls_ip}[role]
            return [
                docker.ContainerNetworksAdvancedArgs(
                    name=net_name, ipv4_address=str(ip) if ip else None, aliases=cp.aliases[role]
                )
            ]

        # --- mq -----------------------------------------------------------------------------
        mq_extra: dict = {}
        mq_files = [docker.ContainerUploadArgs(file=fl.mosquitto_conf, content=ne.mosquitto_conf(nm, plan))]
        if fl.images == "pull":  # eclipse-mosquitto: our start script makes the password file
            start = "/mosquitto/config/bgp4mesh-start.sh"
            mq_files.append(
                docker.ContainerUploadArgs(
                    file=start,
                    content=ne.MOSQUITTO_PULL_START.format(passwd=fl.mosquitto_passwd, conf=fl.mosquitto_conf),
                    executable=True,
                )
            )
            mq_extra["entrypoints"] = ["/bin/sh", start]
        mq = docker.Container(
            f"{name}-mq",
            name=resource_name(stack, "netmaker-mq"),
            hostname="netmaker-mq",
            image=images["mosquitto"],
            envs=pulumi.Output.secret(mq_password.result).apply(
                lambda pw: [f"MQ_USERNAME={MQ_USERNAME}", f"MQ_PASSWORD={pw}"]
            ),
            networks_advanced=network("mq"),
            uploads=mq_files,
            restart="unless-stopped",
            labels=docker_labels,
            opts=pulumi.ResourceOptions(parent=self),
            **mq_extra,
        )

        # --- server -------------------------------------------------------------------------
        server_envs = pulumi.Output.all(master_key.result, mq_password.result).apply(
            lambda v: ne.env_list(ne.server_env(nm, plan, master_key=v[0], mq_username=MQ_USERNAME, mq_password=v[1]))
        )
        server = docker.Container(
            f"{name}-server",
            name=resource_name(stack, "netmaker-server"),
            hostname="netmaker",
            image=images["netmaker"],
            envs=pulumi.Output.secret(server_envs),
            networks_advanced=network("server"),
            volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path=fl.data_dir)],
            restart="unless-stopped",
            labels=docker_labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[mq]),
        )

        # --- TLS front ----------------------------------------------------------------------
        conf_path, conf = ne.tls_front_conf(nm, plan)
        front_files = [docker.ContainerUploadArgs(file=conf_path, content=conf)]
        if nm.tls == "internal-ca":
            front_files += [
                docker.ContainerUploadArgs(file=ne.CERT_FILE, content=cert_pem),
                docker.ContainerUploadArgs(file=ne.KEY_FILE, content=key_pem),
                docker.ContainerUploadArgs(file=ne.CA_FILE, content=ca_pem),
            ]
        front_extra: dict = {}
        if not cp.lab:  # a real host: the front is what the Internet reaches
            front_extra["ports"] = [
                docker.ContainerPortArgs(internal=80, external=80),
                docker.ContainerPortArgs(internal=ne.HTTPS_PORT, external=ne.HTTPS_PORT),
            ]
        front = docker.Container(
            f"{name}-tls",
            name=resource_name(stack, "netmaker-tls"),
            hostname="netmaker-tls",
            image=images["tls"],
            networks_advanced=network("tls"),
            uploads=front_files,
            restart="unless-stopped",
            labels=docker_labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[server]),
            **front_extra,
        )

        # --- readiness ----------------------------------------------------------------------
        names = {"mq": resource_name(stack, "netmaker-mq"), "server": resource_name(stack, "netmaker-server"),
                 "tls": resource_name(stack, "netmaker-tls")}
        timeout = int(args.get("ready_timeout", 120))
        ready = command.local.Command(
            f"{name}-ready",
            create=ne.READY_SCRIPT,
            interpreter=[sys.executable, "-c"],
            environment={
                "NM_API_URL": cp.api_url,
                "NM_CA_PEM": ca_pem,
                "NM_MASTER_KEY": pulumi.Output.secret(master_key.result),
                "NM_READY_TIMEOUT": str(timeout),
                "NM_RUNTIME_SETTINGS": json.dumps(ne.RUNTIME_SETTINGS),
                "NM_HINT": f"; see `docker logs {names['server']}` and `docker logs {names['mq']}`",
            },
            triggers=[mq.id, server.id, front.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[mq, server, front]),
        )

        # --- outputs ------------------------------------------------------------------------
        after_ready = lambda value: ready.stdout.apply(lambda _: value)  # noqa: E731
        self.api_url = after_ready(cp.api_url)
        self.client_endpoint = pulumi.Output.from_input(cp.client_endpoint)
        self.broker_endpoint = pulumi.Output.from_input(cp.broker_endpoint)
        self.ca_certificate = ca_pem
        self.master_key = pulumi.Output.secret(master_key.result)
        self.server_name = pulumi.Output.from_input(nm.domain)
        self.connection = pulumi.Output.secret(
            pulumi.Output.all(self.api_url, master_key.result, ca_pem).apply(
                lambda v: {"api_url": v[0], "master_key": v[1], "ca_pem": v[2]}
            )
        )
        self.containers = pulumi.Output.all(mq.name, server.name, front.name).apply(
            lambda n: {"mq": n[0], "server": n[1], "tls": n[2]}
        )
        self.ready = ready.stdout
        self.register_outputs(
            {
                "api_url": self.api_url,
                "client_endpoint": self.client_endpoint,
                "broker_endpoint": self.broker_endpoint,
                "ca_certificate": self.ca_certificate,
                "master_key": self.master_key,
                "server_name": self.server_name,
                "connection": self.connection,
                "containers": self.containers,
                "ready": self.ready,
            }
        )

    def _images(self, name: str, nm: Netmaker, given: dict, tag: str, child: pulumi.ResourceOptions) -> dict:
        """Image reference per kind: given, built from images/<kind> (build) or pulled (pull)."""
        refs: dict[str, pulumi.Input[str]] = {}
        for kind in KINDS:
            if kind in given:
                refs[kind] = given[kind]
            elif nm.images == "build":
                refs[kind] = docker.Image(
                    f"{name}-image-{kind}",
                    image_name=f"bgp4mesh/{kind}:{tag}",
                    build=docker.DockerBuildArgs(context=str(IMAGES_DIR / kind)),
                    skip_push=True,
                    opts=child,
                ).image_name
            else:
                refs[kind] = docker.RemoteImage(
                    f"{name}-image-{kind}",
                    name=ne.PULL_IMAGES[kind].format(version=nm.version),
                    keep_locally=True,
                    opts=child,
                ).image_id
        return refs

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

Images come from the caller (components.docker_parts.ImageSet): built from
images/<kind> (`images: build`; scripts/build-binaries has put the binaries into
images/*/bin/) or pulled by their upstream names (`images: pull`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

from bgp4mesh import netmaker_env as ne
from bgp4mesh.addressing import UnderlayPlan
from bgp4mesh.config import Netmaker
from bgp4mesh.providers.base import NetmakerResource

from .docker_parts import docker_name, fixed_name, lab_network, labels

MQ_USERNAME = "netmaker"
CA_VALIDITY_HOURS = 10 * 365 * 24
CERT_VALIDITY_HOURS = 2 * 365 * 24
IMAGE_KINDS = ("mosquitto", "netmaker", "tls")
"""The images the component runs, by kind (keys of `images`)."""


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
    images: dict[str, pulumi.Input[str]]
    """Image reference per kind in IMAGE_KINDS ("mosquitto", "netmaker", "tls")."""
    public_address: NotRequired[Optional[str]]
    """The control host's public address (SERVER_HOST); None in a lab, where the front's
    underlay address is used."""
    ready_timeout: NotRequired[int]
    """Seconds the readiness check waits for db and broker (default 120)."""
    monitoring: NotRequired[bool]
    """Give the broker the control-plane exporter's user (netmaker_env.MONITOR_USERNAME):
    $SYS/# to read on the clients' listeners, nothing else (default False). On a real host
    the plain clients' listener is then published on the host's loopback alone
    (netmaker_env.MONITOR_BROKER), where the exporter (host networking) reads it."""


@dataclass
class _Tls:
    ca_pem: pulumi.Output[str]
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]


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
    store: docker.Volume
    """The volume holding Netmaker's database: every object its API makes lives there
    (see `objects_deleted_with`)."""
    ready: pulumi.Output[str]
    """JSON printed by the readiness check: seconds waited, /api/server/status, settings corrected."""
    broker_monitor: Optional[pulumi.Output[dict]]
    """{username, password} of the broker's monitoring user (secret); None without `monitoring`."""

    def __init__(self, name: str, args: NetmakerServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:NetmakerServer", name, None, opts)
        self._name, self._nm, self._stack, self._plan = name, args["netmaker"], args["stack"], args["underlay"]
        self._public_address = args.get("public_address")
        self._cp = ne.control_plane(self._nm, self._plan)
        self._labels = [docker.ContainerLabelArgs(**label) for label in labels(self._stack)]
        child = pulumi.ResourceOptions(parent=self)
        master_key = random.RandomPassword(f"{name}-master-key", length=32, special=False, opts=child)
        mq_password = random.RandomPassword(f"{name}-mq-password", length=32, special=False, opts=child)
        admin_password = random.RandomPassword(f"{name}-admin-password", length=ne.ADMIN_PASSWORD_LENGTH, special=False, opts=child)
        tls_material = self._tls_material()
        network = self._network(args.get("network"))
        images = args["images"]

        monitor = random.RandomPassword(f"{name}-monitor-password", length=32, special=False, opts=child) if args.get("monitoring") else None
        mq = self._broker(images["mosquitto"], network, mq_password.result, monitor.result if monitor else None)
        server = self._server(images["netmaker"], network, master_key.result, mq_password.result, mq)
        front = self._front(images["tls"], network, tls_material, server, master_key.result)
        ready = self._ready(
            {"NM_MASTER_KEY": master_key.result, "NM_ADMIN_PASSWORD": admin_password.result},
            tls_material.ca_pem, [mq, server, front], int(args.get("ready_timeout", 120)),
        )

        after_ready = lambda value: ready.stdout.apply(lambda _: value)  # noqa: E731
        self.api_url = after_ready(self._cp.api_url)
        self.client_endpoint = pulumi.Output.from_input(self._cp.client_endpoint)
        self.broker_endpoint = pulumi.Output.from_input(self._cp.broker_endpoint)
        self.ca_certificate = tls_material.ca_pem
        self.master_key = pulumi.Output.secret(master_key.result)
        self.server_name = pulumi.Output.from_input(self._nm.domain)
        self.connection = pulumi.Output.secret(
            pulumi.Output.all(self.api_url, master_key.result, tls_material.ca_pem).apply(
                lambda v: {"api_url": v[0], "master_key": v[1], "ca_pem": v[2]}
            )
        )
        self.containers = pulumi.Output.all(mq.name, server.name, front.name).apply(
            lambda n: {"mq": n[0], "server": n[1], "tls": n[2]}
        )
        self.ready = ready.stdout
        self.broker_monitor = pulumi.Output.secret(
            monitor.result.apply(lambda pw: {"username": ne.MONITOR_USERNAME, "password": pw})
        ) if monitor else None
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
                **({"broker_monitor": self.broker_monitor} if monitor else {}),
            }
        )

    def _tls_material(self) -> _Tls:
        """Lab (internal-ca): a private CA signs the front's certificate for the domain,
        the broker name and the front's underlay address. ACME: the CA issues it; only a
        test CA's roots (netmaker.acme_ca_roots) must be trusted besides the system's."""
        empty = pulumi.Output.from_input("")
        if self._nm.tls != "internal-ca":
            return _Tls(pulumi.Output.from_input(self._nm.acme_ca_roots or ""), empty, empty)
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"bgp4mesh {self._stack} Netmaker CA", organization="bgp4mesh"),
            validity_period_hours=CA_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=child,
        )
        server_key = tls.PrivateKey(f"{name}-tls-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        csr = tls.CertRequest(
            f"{name}-tls-csr",
            private_key_pem=server_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=self._nm.domain, organization="bgp4mesh"),
            dns_names=[self._nm.domain, self._cp.broker_host],
            ip_addresses=[str(self._cp.tls_ip)] if self._cp.tls_ip else [],
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
        return _Tls(ca.cert_pem, cert.cert_pem, pulumi.Output.secret(server_key.private_key_pem))

    def _network(self, given: Optional[pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
        """Docker networks by ControlPlane.attachments' names. A lab: the underlay members
        share ("public") and an internal control network of the server's own; a real host:
        one bridge of the component's, which only the published front ports lead into."""
        if self._plan is None and (given is None or given == "host"):
            bridge = docker.Network(
                f"{self._name}-network",
                name=docker_name(self._stack, "netmaker"),
                driver="bridge",
                labels=[docker.NetworkLabelArgs(**label) for label in labels(self._stack)],
                opts=fixed_name(self),
            ).name
            return {"public": bridge, "control": bridge}
        if given is None or self._plan is None:
            raise ValueError("NetmakerServer: a lab stack needs `network` (the underlay Docker network) and `underlay`")
        control = lab_network(f"{self._name}-control", self._stack, str(self._plan.control), str(self._plan.control_gateway), pulumi.ResourceOptions(parent=self))
        return {"public": given, "control": control.name}

    def _attach(self, role: str, networks: dict[str, pulumi.Input[str]]) -> list[docker.ContainerNetworksAdvancedArgs]:
        return [
            docker.ContainerNetworksAdvancedArgs(name=networks[net], ipv4_address=str(ip) if ip else None, aliases=aliases)
            for net, ip, aliases in self._cp.attachments(role)
        ]

    def _container(self, role: str, image: pulumi.Input[str], networks: dict[str, pulumi.Input[str]], depends_on: list, **kwargs) -> docker.Container:
        return docker.Container(
            f"{self._name}-{role}",
            name=docker_name(self._stack, f"netmaker-{role}"),
            hostname="netmaker" if role == "server" else f"netmaker-{role}",
            image=image,
            networks_advanced=self._attach(role, networks),
            restart="unless-stopped",
            labels=self._labels,
            opts=fixed_name(self, depends_on=depends_on),
            **kwargs,
        )

    def _broker(self, image, network, mq_password: pulumi.Output[str], monitor_password: Optional[pulumi.Output[str]]) -> docker.Container:
        """The config, the clients' ACL and the password as a 0600 file readable by root
        alone (a secret upload): the start script hashes it, so `docker inspect` shows no
        password. The monitoring user's password, when there is one, the same way."""
        fl = ne.flavor(self._nm)
        monitor = ne.MONITOR_USERNAME if monitor_password is not None else None
        files = [
            docker.ContainerUploadArgs(file=fl.mosquitto_conf, content=ne.mosquitto_conf(self._nm, self._plan, monitor=bool(monitor))),
            docker.ContainerUploadArgs(file=fl.mosquitto_acl, content=ne.mosquitto_acl(self._nm, MQ_USERNAME, monitor)),
            docker.ContainerUploadArgs(file=ne.MQ_PASSWORD_FILE, content=pulumi.Output.secret(mq_password), permissions="0600"),
        ]
        envs = [f"MQ_USERNAME={MQ_USERNAME}", f"MQ_PASSWORD_FILE={ne.MQ_PASSWORD_FILE}"]
        if monitor:
            files.append(docker.ContainerUploadArgs(file=ne.MONITOR_PASSWORD_FILE, content=pulumi.Output.secret(monitor_password), permissions="0600"))
            envs += [f"MONITOR_USERNAME={monitor}", f"MONITOR_PASSWORD_FILE={ne.MONITOR_PASSWORD_FILE}"]
        extra: dict = {}
        if fl.images == "pull":  # eclipse-mosquitto: our start script makes the password files
            start = "/mosquitto/config/bgp4mesh-start.sh"
            script = ne.mosquitto_pull_start(self._nm)
            files.append(docker.ContainerUploadArgs(file=start, content=script, executable=True))
            extra["entrypoints"] = ["/bin/sh", start]
        published = ne.monitor_ports(self._cp, bool(monitor))
        if published:  # the control-plane exporter's plain MQTT, on the control host's loopback alone
            extra["ports"] = [docker.ContainerPortArgs(internal=port, external=port, ip=ip) for ip, port in published]
        return self._container("mq", image, network, [], envs=envs, uploads=files, **extra)

    def _server(self, image, network, master_key: pulumi.Output[str], mq_password: pulumi.Output[str], mq) -> docker.Container:
        data = self.store = docker.Volume(
            f"{self._name}-data",
            name=docker_name(self._stack, "netmaker-data"),
            labels=[docker.VolumeLabelArgs(**label) for label in labels(self._stack)],
            opts=fixed_name(self),
        )
        envs = ne.env_list(ne.server_env(self._nm, self._plan, mq_username=MQ_USERNAME, public_address=self._public_address))
        secrets = pulumi.Output.secret(pulumi.Output.all(master_key, mq_password).apply(lambda v: ne.server_secrets(*v)))
        return self._container(
            "server", image, network, [mq],
            envs=envs,
            command=ne.SERVER_COMMAND,
            uploads=[docker.ContainerUploadArgs(file=ne.SECRETS_FILE, content=secrets, permissions="0600")],
            volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path=ne.flavor(self._nm).data_dir)],
        )

    def _front(self, image, network, material: _Tls, server, master_key: pulumi.Output[str]) -> docker.Container:
        conf_path = ne.flavor(self._nm).tls_config_path
        conf = pulumi.Output.secret(master_key.apply(lambda key: ne.tls_front_conf(self._nm, self._plan, key)[1]))
        files = [docker.ContainerUploadArgs(file=conf_path, content=conf, permissions="0600")]
        if self._nm.tls == "internal-ca":
            files += [
                docker.ContainerUploadArgs(file=ne.CERT_FILE, content=material.cert_pem),
                docker.ContainerUploadArgs(file=ne.KEY_FILE, content=material.key_pem),
                docker.ContainerUploadArgs(file=ne.CA_FILE, content=material.ca_pem),
            ]
        elif self._nm.acme_ca_roots:
            files.append(docker.ContainerUploadArgs(file=ne.ACME_ROOTS_FILE, content=self._nm.acme_ca_roots))
        extra: dict = {}
        if not self._cp.lab:  # a real host: the front is what the Internet reaches
            extra["ports"] = [
                docker.ContainerPortArgs(internal=80, external=80),
                docker.ContainerPortArgs(internal=ne.HTTPS_PORT, external=ne.HTTPS_PORT),
            ]
        if self._cp.acme:
            certificates = docker.Volume(
                f"{self._name}-certificates",
                name=docker_name(self._stack, "netmaker-certificates"),
                labels=[docker.VolumeLabelArgs(**label) for label in labels(self._stack)],
                opts=fixed_name(self),
            )
            extra["volumes"] = [docker.ContainerVolumeArgs(volume_name=certificates.name, container_path=ne.CADDY_DATA_DIR)]
        return self._container("tls", image, network, [server], uploads=files, **extra)

    def _ready(self, secrets: dict[str, pulumi.Output[str]], ca_pem: pulumi.Output[str], containers: list, timeout: int) -> command.local.Command:
        """Waits, from the machine running Pulumi, until /api/server/status reports db and
        broker connected through the TLS front, makes sure the super-admin is ours, and puts
        back the runtime settings (bgp4mesh/netmaker_ready.py)."""
        hint = " and ".join(f"`docker logs {docker_name(self._stack, f'netmaker-{r}')}`" for r in ("server", "mq"))
        return command.local.Command(
            f"{self._name}-ready",
            create=ne.READY_SCRIPT,
            interpreter=[sys.executable, "-c"],
            environment={
                "NM_API_URL": self._cp.api_url,
                "NM_CA_PEM": ca_pem,
                **{key: pulumi.Output.secret(value) for key, value in secrets.items()},
                "NM_ADMIN_USER": self._nm.admin_user,
                "NM_READY_TIMEOUT": str(timeout),
                "NM_RUNTIME_SETTINGS": json.dumps(ne.runtime_settings(self._nm)),
                "NM_HINT": f"; see {hint}",
            },
            triggers=[c.id for c in containers],
            opts=pulumi.ResourceOptions(parent=self, depends_on=containers),
        )


def objects_deleted_with(store: pulumi.Resource) -> pulumi.ResourceTransformation:
    """A stack transformation: every Netmaker object (a resource of bgp4mesh.providers) is
    deleted with `store`, the server's database volume, where the object lives.

    Why: a `destroy` deletes the objects (members, their keys, gateways, the network)
    before the server, and each through the API. When the server does not answer (stopped,
    or swamped by a mesh that failed to come up), the first such delete fails, the engine
    stops there, and every container, network and volume behind those objects stays. With
    `deleted_with`, the engine skips their Delete calls whenever the store is deleted in the
    same run (the objects go with it), so a destroy needs no answering server; removing one
    member while the server stays still deletes its host on the server."""

    def transform(args: pulumi.ResourceTransformationArgs) -> Optional[pulumi.ResourceTransformationResult]:
        if not isinstance(args.resource, NetmakerResource):
            return None
        return pulumi.ResourceTransformationResult(args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(deleted_with=store)))

    return transform

"""EgressGateway: route ranges through one mesh node (Netmaker v1.6.0 ``/api/v1/egress``).

In v1.6.0 an egress object carries ONE ``range`` (``models.EgressReq.Range string``), a
``nodes`` map ``{node_id: route_metric}`` (CE: exactly one routing node), ``nat`` and
``status``. This resource therefore owns one egress object per range; they are all named
``egress_name`` and tracked in the ``egresses`` output (``[{id, range}]``).

The gateway is given by host name: ``GET /api/hosts`` (name -> host id) then
``GET /api/nodes/{network}`` (node whose ``hostid`` matches). An unknown host, or a host
without a node in the network, is a clear error naming both (optionally after waiting
``host_wait_seconds`` for a netclient that is still joining).

Only ``network`` is immutable (PUT does not move an egress to another network) and replaces
the resource. Ranges, NAT, metric, gateway and name are updated in place: changed objects
are PUT (with ``status: true``: omitting it would disable them), missing ones created,
dropped ones deleted. Objects deleted or disabled on the server are restored by the next
``pulumi up``. Create and update roll back the objects they created if a later step fails.
Netmaker v1.6.0 itself rejects a range inside the network's own CIDR and loopback ranges.
Its egress object with range ``*`` is accepted but gives clients no route in CE; the
internet gateway is :class:`bgp4mesh.providers.internet_gateway.InternetGateway`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure

from bgp4mesh.netmaker_api import NetmakerClient, NetmakerError, NotFound
from bgp4mesh.providers.base import NetmakerProvider, NetmakerResource, as_int, is_unknown, known, normalize_cidr
from bgp4mesh.providers.fields import INPUT, OUTPUT, Field, Fields
from bgp4mesh.providers.network import NETID_RE
from bgp4mesh.waiting import WaitTimeout, until

PROVIDER_VERSION = "1"
KIND = "netmaker-egress"
MIXED = "<mixed>"


class GatewayNotFound(Exception):
    """The gateway host has no node in the network."""


def resolve_gateway(
    client: NetmakerClient, network: str, host_name: str, wait_seconds: float = 0.0, what: str = "egress gateway host"
) -> dict[str, Any]:
    """The ApiNode of host ``host_name`` in ``network``; waits up to ``wait_seconds``.
    ``what`` names the host in errors (the mesh-member resource looks up its own)."""
    try:
        return until(
            lambda: _host_node(client, network, host_name, what), max(0.0, float(wait_seconds or 0)), every=1.0, retry_on=(_NotYet,)
        )
    except WaitTimeout as exc:
        raise GatewayNotFound(f"{what} '{host_name}' not found in network '{network}': {exc}") from None


class _NotYet(Exception):
    """The host's node is not there (yet)."""


def _host_node(client: NetmakerClient, network: str, host_name: str, what: str) -> dict[str, Any]:
    if client.find_network(network) is None:
        raise _NotYet(f"Netmaker network '{network}' does not exist")
    hosts = client.find_hosts_by_name(host_name)
    if len(hosts) > 1:
        ids = ", ".join(h.get("id", "?") for h in hosts)
        raise GatewayNotFound(
            f"{what} '{host_name}' is ambiguous in network '{network}': "
            f"{len(hosts)} Netmaker hosts carry that name ({ids})"
        )
    if not hosts:
        known_names = sorted({h.get("name", "?") for h in client.list_hosts()})
        raise _NotYet(f"no Netmaker host is named '{host_name}' (hosts: {', '.join(known_names) if known_names else 'none'})")
    host = hosts[0]
    for node in client.list_nodes(network):
        if node.get("hostid") == host.get("id") and not node.get("is_static"):
            return node
    raise _NotYet(f"host '{host_name}' ({host.get('id')}) has no node in network '{network}'")


FIELDS = Fields(
    Field("network", INPUT, replaces=True),
    Field("gateway_host_name", INPUT, doc="the mesh host the ranges are routed through"),
    Field("ranges", INPUT, doc="CIDRs, one egress object each"),
    Field("nat", INPUT, default=False),
    Field("metric", INPUT, default=256),
    Field("egress_name", INPUT, default=None, doc="default: the Pulumi resource name"),
    Field("host_wait_seconds", INPUT, default=0),
    Field("egresses", OUTPUT, doc="[{id, range}]"),
    Field("gateway_node_id", OUTPUT),
    Field("enabled", OUTPUT, drift=True),
)


class EgressGatewayProvider(NetmakerProvider):
    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[Fields] = FIELDS
    GONE_FIELD: ClassVar[str] = "network"
    GONE_MEANS_REPLACE: ClassVar[bool] = False  # update re-creates the objects in place

    # -- check --------------------------------------------------------------------------------
    def validate(self, news: dict[str, Any]) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        net = news.get("network")
        if net is None or net == "":
            failures.append(CheckFailure("network", "required"))
        elif known(net) and not NETID_RE.match(str(net)):
            failures.append(CheckFailure("network", f"'{net}' is not a valid Netmaker network name"))
        gw = news.get("gateway_host_name")
        if gw is None or gw == "":
            failures.append(CheckFailure("gateway_host_name", "required"))
        name = news.get("egress_name")
        if name is None or name == "":
            failures.append(CheckFailure("egress_name", "required"))
        ranges = news.get("ranges")
        if ranges is None or (isinstance(ranges, list) and not ranges):
            failures.append(CheckFailure("ranges", "at least one CIDR is required"))
        elif isinstance(ranges, list):
            if not is_unknown(ranges):
                norm: set[str] = set()
                for r in ranges:
                    try:
                        n = normalize_cidr(str(r))
                    except ValueError as exc:
                        failures.append(CheckFailure("ranges", f"'{r}' is not a CIDR: {exc}"))
                        continue
                    if n.startswith("127.") or n == "::1/128":
                        failures.append(CheckFailure("ranges", f"'{r}': Netmaker refuses loopback egress ranges"))
                    norm.add(n)
                news["ranges"] = sorted(norm)
        elif known(ranges):
            failures.append(CheckFailure("ranges", "must be a list of CIDRs"))
        nat = news.get("nat")
        if known(nat) and not isinstance(nat, bool):
            failures.append(CheckFailure("nat", "must be a boolean"))
        metric = news.get("metric")
        if known(metric):
            m = as_int(metric)
            if m is None or not 0 < m < 2**31:
                failures.append(CheckFailure("metric", f"must be a positive integer, got {metric!r}"))
            else:
                news["metric"] = m
        wait = news.get("host_wait_seconds")
        if known(wait) and (isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0):
            failures.append(CheckFailure("host_wait_seconds", "must be a number >= 0"))
        return failures

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _tracked(props: dict[str, Any]) -> dict[str, str]:
        """{egress id: range} recorded in the state."""
        out: dict[str, str] = {}
        for e in props.get("egresses") or []:
            if isinstance(e, dict) and known(e.get("id")):
                out[str(e["id"])] = str(e.get("range"))
        return out

    @staticmethod
    def _description(props: dict[str, Any], range_: str) -> str:
        return f"bgp4mesh {props['egress_name']}: {range_}"

    def _computed(self, objs: list[dict[str, Any]], node_id: str | None) -> dict[str, Any]:
        return {
            "egresses": sorted(({"id": e["id"], "range": e["range"]} for e in objs), key=lambda x: x["range"]),
            "gateway_node_id": node_id,
            "enabled": all(bool(e.get("status")) for e in objs),
        }

    # -- CRUD ---------------------------------------------------------------------------------
    def create_object(self, client: NetmakerClient, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        network = props["network"]
        node = resolve_gateway(client, network, props["gateway_host_name"], props.get("host_wait_seconds") or 0)
        nodes = {node["id"]: int(props.get("metric") or 256)}
        created: list[dict[str, Any]] = []
        try:
            for r in props["ranges"]:
                created.append(client.create_egress(
                    network, props["egress_name"], r, nat=bool(props.get("nat")), nodes=nodes,
                    description=self._description(props, r),
                ))
        except Exception:
            self._rollback(client, created)
            raise
        return f"{network}/{props['egress_name']}", self._computed(created, node["id"])

    def _rollback(self, client: NetmakerClient, created: list[dict[str, Any]]) -> None:
        for e in created:
            try:
                client.delete_egress(e["id"])
            except NetmakerError:
                pulumi.log.warn(f"{KIND}: could not roll back egress {e['id']} ({e.get('range')})")

    def read_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        network = props.get("network")
        tracked = self._tracked(props)
        if not known(network) or not tracked:
            return None
        mine = [e for e in client.list_egress(str(network)) if e.get("id") in tracked]
        if not mine:
            return None
        node_ids = {nid for e in mine for nid in (e.get("nodes") or {})}
        metrics = {as_int(m) for e in mine for m in (e.get("nodes") or {}).values()}
        nats = {bool(e.get("nat")) for e in mine}
        names = {e.get("name") for e in mine}
        gateway_name: str | None = None
        node_id = next(iter(node_ids)) if len(node_ids) == 1 else None
        if node_id:
            node = next((n for n in client.list_nodes(str(network)) if n.get("id") == node_id), None)
            if node:
                host = next((h for h in client.list_hosts() if h.get("id") == node.get("hostid")), None)
                gateway_name = host.get("name") if host else None
        live = {
            "network": network,
            "ranges": sorted(e.get("range") for e in mine),
            "nat": nats.pop() if len(nats) == 1 else MIXED,
            "metric": metrics.pop() if len(metrics) == 1 else MIXED,
            "egress_name": names.pop() if len(names) == 1 else MIXED,
            "gateway_host_name": gateway_name,
        }
        live.update(self._computed(mine, node_id))
        return live

    def update_object(
        self, client: NetmakerClient, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> dict[str, Any]:
        network = news["network"]
        node = resolve_gateway(client, network, news["gateway_host_name"], news.get("host_wait_seconds") or 0)
        nodes = {node["id"]: int(news.get("metric") or 256)}
        nat, name = bool(news.get("nat")), news["egress_name"]
        tracked = self._tracked(olds)
        live = {e["id"]: e for e in client.list_egress(network) if e.get("id") in tracked}
        by_range = {e.get("range"): e for e in live.values()}
        desired = list(news["ranges"])
        created: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        try:
            for r in desired:
                cur = by_range.get(r)
                if cur is None:
                    created.append(client.create_egress(
                        network, name, r, nat=nat, nodes=nodes, description=self._description(news, r),
                    ))
                    continue
                want = {"name": name, "nat": nat, "status": True,
                        "nodes": nodes, "description": self._description(news, r)}
                have = {"name": cur.get("name"), "nat": bool(cur.get("nat")), "status": bool(cur.get("status")),
                        "nodes": {k: as_int(v) for k, v in (cur.get("nodes") or {}).items()},
                        "description": cur.get("description")}
                if want != have:
                    cur = client.update_egress(
                        cur["id"], network, name, r, nat=nat, nodes=nodes,
                        description=self._description(news, r), status=True,
                    )
                kept.append(cur)
        except Exception:
            self._rollback(client, created)
            raise
        for eid, e in live.items():
            if e.get("range") not in desired:
                try:
                    client.delete_egress(eid)
                except NotFound:
                    pass
        return self._computed(kept + created, node["id"])

    def delete_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> None:
        for eid in self._tracked(props):
            try:
                client.delete_egress(eid)
            except NotFound:
                pass  # already gone (also when its network was deleted)


EgressGatewayArgs = FIELDS.args_class("EgressGatewayArgs", PROVIDER_VERSION, __name__)


class EgressGateway(NetmakerResource, module="bgp4mesh", name="EgressGateway"):
    """Egress ranges routed through one mesh host; its inputs and outputs are ``FIELDS``
    above, with ``kind``."""

    PROVIDER = EgressGatewayProvider

    def __init__(self, name: str, args: Any, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.egress_name is None:
            args = dataclasses.replace(args, egress_name=name)
        super().__init__(name, args, opts)

"""NetmakerNetwork: a Netmaker network (``/api/networks``).

Resource ID = ``netid``. ``netid``, ``address_range`` and ``address_range6`` are immutable
in Netmaker v1.6.0 (PUT silently ignores the ranges), so any change replaces the network,
deleting first (the name and the CIDR must be free again before the create). A network that
was deleted on the server, or re-created there with other ranges, is replaced by the next
``pulumi up``.

Creating a network also makes a default enrollment key tagged ``<netid>``: unlimited and
never expiring, so anyone who ever saw its token could join forever. The provider deletes it
and leaves a tombstone in its place, a key tagged ``<netid>`` that expires seconds after it
is made (the server refuses to create a key that is already expired): at every start the
server re-creates the default key of any network that has no key tagged with its name.
``default_key_removed`` (computed) is False while a usable key carries that tag or no
tombstone does; the diff then updates the network in place, which removes them again.

Deleting a network deletes the enrollment keys whose only network it was and its egress
objects (EnrollmentKey and EgressGateway resources notice that in their own diff).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pulumi.dynamic import CheckFailure

from bgp4mesh.netmaker_api import NetmakerClient, key_usable
from bgp4mesh.providers.base import NetmakerProvider, NetmakerResource, known, normalize_cidr
from bgp4mesh.providers.fields import INPUT, OUTPUT, Field, Fields

PROVIDER_VERSION = "2"
KIND = "netmaker-network"
NETID_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
TOMBSTONE_SECONDS = 5
"""How long the tombstone key is usable: the least the server accepts at create, with
room for the second its Date header rounds away and for the request's latency."""


def _live_default_keys(keys: list[dict[str, Any]], netid: str, now: int) -> list[dict[str, Any]]:
    """Keys tagged with the network's name that can join for longer than a tombstone."""
    return [k for k in keys if netid in (k.get("tags") or []) and key_usable(k, now + TOMBSTONE_SECONDS)]


def remove_default_key(client: NetmakerClient, netid: str) -> None:
    """Delete every usable key tagged `netid` (un-defaulting it first: the server will not
    delete a default key) and make the tombstone if no key keeps the tag."""
    keys = client.list_enrollment_keys()
    for key in _live_default_keys(keys, netid, client.server_now()):
        if key.get("default"):
            client.undefault_enrollment_key(key)
        client.delete_enrollment_key(key["value"])
    if client.find_enrollment_key_by_tag(netid) is None:
        client.create_enrollment_key([netid], [netid], expiration=client.server_now() + TOMBSTONE_SECONDS)


def _check_range(value: Any, version: int, field: str) -> tuple[str | None, list[CheckFailure]]:
    if not known(value) or value == "":
        return value, []
    try:
        norm = normalize_cidr(str(value), version)
    except ValueError as exc:
        return value, [CheckFailure(field, f"invalid IPv{version} CIDR '{value}': {exc}")]
    prefixlen = int(norm.split("/")[1])
    maxlen = 32 if version == 4 else 128
    if maxlen - prefixlen <= 1:
        return value, [CheckFailure(field, f"'{value}': Netmaker refuses /{prefixlen} networks (need room for hosts)")]
    return norm, []


FIELDS = Fields(
    Field("netid", INPUT, replaces=True, doc="the network's name"),
    Field("address_range", INPUT, replaces=True, doc="IPv4 CIDR (or None with address_range6)"),
    Field("address_range6", INPUT, replaces=True, default=None),
    Field("network_id", OUTPUT, drift=True, doc="the server's uuid"),
    Field("default_keepalive", OUTPUT),
    Field("default_mtu", OUTPUT),
    Field("default_key_removed", OUTPUT, drift=True, doc="no usable key carries the network's name, a tombstone does"),
)


class NetmakerNetworkProvider(NetmakerProvider):
    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[Fields] = FIELDS
    GONE_FIELD: ClassVar[str] = "netid"

    def validate(self, news: dict[str, Any]) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        netid = news.get("netid")
        if netid is None or netid == "":
            failures.append(CheckFailure("netid", "required"))
        elif known(netid) and not NETID_RE.match(str(netid)):
            failures.append(CheckFailure("netid", f"'{netid}': 1-32 characters of a-z, 0-9, '-' and '_'"))
        r4, f4 = _check_range(news.get("address_range"), 4, "address_range")
        r6, f6 = _check_range(news.get("address_range6"), 6, "address_range6")
        failures += f4 + f6
        news["address_range"] = r4 or None
        news["address_range6"] = r6 or None
        if news["address_range"] is None and news["address_range6"] is None:
            failures.append(CheckFailure("address_range", "an IPv4 and/or IPv6 range is required"))
        return failures

    @staticmethod
    def _computed(net: dict[str, Any]) -> dict[str, Any]:
        return {
            "network_id": net.get("id"),
            "default_keepalive": net.get("defaultkeepalive"),
            "default_mtu": net.get("defaultmtu"),
        }

    def create_object(self, client: NetmakerClient, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        net = client.create_network(props["netid"], props.get("address_range"), props.get("address_range6"))
        remove_default_key(client, net["netid"])
        return net["netid"], {**self._computed(net), "default_key_removed": True}

    def read_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        net = client.find_network(id_)
        if net is None:
            return None
        return {
            "netid": net.get("netid"),
            "address_range": net.get("addressrange") or None,
            "address_range6": net.get("addressrange6") or None,
            **self._computed(net),
            "default_key_removed": self._default_key_removed(client, id_),
        }

    @staticmethod
    def _default_key_removed(client: NetmakerClient, netid: str) -> bool:
        keys = client.list_enrollment_keys()
        tombstone = any(netid in (k.get("tags") or []) for k in keys)
        return tombstone and not _live_default_keys(keys, netid, client.server_now())

    def update_object(
        self, client: NetmakerClient, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> dict[str, Any]:
        remove_default_key(client, id_)
        return super().update_object(client, id_, olds, news)

    def delete_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> None:
        client.delete_network(id_, force=True)  # 200 also when it no longer exists


NetmakerNetworkArgs = FIELDS.args_class("NetmakerNetworkArgs", PROVIDER_VERSION, __name__)


class NetmakerNetwork(NetmakerResource, module="bgp4mesh", name="NetmakerNetwork"):
    """A Netmaker network; its inputs and outputs are ``FIELDS`` above, with ``kind``."""

    PROVIDER = NetmakerNetworkProvider

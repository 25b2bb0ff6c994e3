"""Pulumi dynamic providers for Netmaker objects (server pinned: v1.6.0).

* :class:`NetmakerNetwork` - a network (``/api/networks``)
* :class:`EnrollmentKey` - an enrollment key (``/api/v1/enrollment-keys``), secret ``token``
* :class:`EgressGateway` - egress ranges through one mesh host (``/api/v1/egress``)
* :class:`InternetGateway` - one mesh host as the others' way to the Internet (``/api/nodes/{net}/{node}/gateway``)

All take ``connection`` = :class:`NetmakerConnection` (or ``{api_url, master_key, ca_pem}``)
with the master key as a secret; stack config ``bgp4mesh:netmaker_api_url`` /
``bgp4mesh:netmaker_master_key`` or env ``NETMAKER_API_URL`` / ``NETMAKER_MASTER_KEY``
override it. See :mod:`bgp4mesh.providers.base` for the shared behaviour.
"""

from bgp4mesh.providers.base import NetmakerConnection, NetmakerProvider, is_unknown
from bgp4mesh.providers.egress import EgressGateway, EgressGatewayArgs, EgressGatewayProvider, GatewayNotFound
from bgp4mesh.providers.enrollment_key import EnrollmentKey, EnrollmentKeyArgs, EnrollmentKeyProvider
from bgp4mesh.providers.internet_gateway import InternetGateway, InternetGatewayArgs, InternetGatewayProvider
from bgp4mesh.providers.network import NetmakerNetwork, NetmakerNetworkArgs, NetmakerNetworkProvider
from bgp4mesh.providers.pickling import restore_pickler_after_serialize

restore_pickler_after_serialize()

__all__ = [
    "NetmakerConnection",
    "NetmakerProvider",
    "is_unknown",
    "NetmakerNetwork",
    "NetmakerNetworkArgs",
    "NetmakerNetworkProvider",
    "EnrollmentKey",
    "EnrollmentKeyArgs",
    "EnrollmentKeyProvider",
    "EgressGateway",
    "EgressGatewayArgs",
    "EgressGatewayProvider",
    "GatewayNotFound",
    "InternetGateway",
    "InternetGatewayArgs",
    "InternetGatewayProvider",
]

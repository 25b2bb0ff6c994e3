"""Unit tests of the Netmaker dynamic providers against the in-process fake (tests/netmaker_fake.py).

Covers check (validation, normalisation, unknown tolerance), diff (replace vs update, drift on
the server, unknowns), idempotent delete, credentials (overrides, nothing captured in the
serialized provider, no key in errors) and the resource wrappers (type tokens, secret outs).
test_netmaker_live.py repeats the CRUD round trips against the real server.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import time
import uuid
from typing import NamedTuple

import dill
import httpx
import pulumi
import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.dynamic.dynamic import serialize_provider

from bgp4mesh.netmaker_api import BadRequest, Unauthorized
from bgp4mesh.providers import (
    EgressGateway,
    EgressGatewayArgs,
    EgressGatewayProvider,
    EnrollmentKey,
    EnrollmentKeyArgs,
    EnrollmentKeyProvider,
    GatewayNotFound,
    InternetGateway,
    InternetGatewayArgs,
    InternetGatewayProvider,
    NetmakerNetwork,
    NetmakerNetworkArgs,
    NetmakerNetworkProvider,
)
from bgp4mesh.providers.base import UNKNOWN_SENTINEL, differs, is_unknown
from bgp4mesh.providers.fields import INPUT, OUTPUT, Field
from bgp4mesh.providers.member import MeshMember, MeshMemberArgs, MeshMemberProvider
from tests.netmaker_fake import FakeNetmaker

KEY = "unit-MASTER-key-never-print"
CONN = {"api_url": "http://nm.fake:8081", "master_key": KEY, "ca_pem": None}
UNKNOWNS = [pulumi.output.Unknown(), UNKNOWN_SENTINEL]


@pytest.fixture
def fake():
    return FakeNetmaker(master_key=KEY)


def _wire(provider, fake):
    provider.CLIENT_OPTIONS = {"transport": fake.transport, "retries": 1, "backoff": 0.0}
    return provider


@pytest.fixture
def netp(fake):
    return _wire(NetmakerNetworkProvider(), fake)


@pytest.fixture
def keyp(fake):
    return _wire(EnrollmentKeyProvider(), fake)


@pytest.fixture
def egp(fake):
    return _wire(EgressGatewayProvider(), fake)


def net_inputs(**kw):
    d = {"connection": dict(CONN), "netid": "mesh", "address_range": "10.20.0.0/24", "address_range6": None,
         "provider_version": "1", "kind": "netmaker-network"}
    d.update(kw)
    return d


def key_inputs(**kw):
    d = {"connection": dict(CONN), "networks": ["mesh"], "tags": ["mesh-join"], "uses": None, "expires_at": None,
         "unlimited": True, "provider_version": "1", "kind": "netmaker-enrollment-key"}
    d.update(kw)
    return d


def eg_inputs(**kw):
    d = {"connection": dict(CONN), "network": "mesh", "gateway_host_name": "border", "ranges": ["192.0.2.0/24"],
         "nat": False, "metric": 256, "egress_name": "border-egress", "host_wait_seconds": 0,
         "provider_version": "1", "kind": "netmaker-egress"}
    d.update(kw)
    return d


def checked(provider, news, olds=None):
    r = provider.check(olds or {}, news)
    assert r.failures == [], [(f.property, f.reason) for f in r.failures]
    return r.inputs


def join_host(fake: FakeNetmaker, token: str, name: str) -> str:
    fake.register(token, {"id": str(uuid.uuid4()), "name": name, "version": "v1.6.0"})
    return next(h["id"] for h in fake.hosts.values() if h["name"] == name)


@pytest.fixture
def mesh(netp, keyp, fake):
    """A network + a key + a host 'border' with a node in it; returns the created outs."""
    n = netp.create(checked(netp, net_inputs()))
    k = keyp.create(checked(keyp, key_inputs()))
    join_host(fake, k.outs["token"], "border")
    return n, k


# -- helpers ---------------------------------------------------------------------------------------
def test_is_unknown_and_differs():
    for u in UNKNOWNS:
        assert is_unknown(u) and is_unknown([1, u]) and is_unknown({"a": {"b": u}})
        assert differs("x", u)
    assert not is_unknown({"a": [1, "x"]})
    assert not differs(256, 256.0) and not differs(None, "") and not differs(None, [])
    assert differs(["a"], ["b"])


# -- check -----------------------------------------------------------------------------------------
def test_network_check_normalises(netp):
    i = checked(netp, net_inputs(address_range="10.20.0.77/24", address_range6="fd00:1::5/64"))
    assert i["address_range"] == "10.20.0.0/24" and i["address_range6"] == "fd00:1::/64"
    assert i["kind"] == "netmaker-network"


@pytest.mark.parametrize(
    "kw,prop,needle",
    [
        ({"netid": "Mesh"}, "netid", "a-z"),
        ({"netid": "x" * 33}, "netid", "1-32"),
        ({"netid": ""}, "netid", "required"),
        ({"address_range": "10.20.0.0/32"}, "address_range", "/32"),
        ({"address_range": "not-a-cidr"}, "address_range", "invalid IPv4 CIDR"),
        ({"address_range": "fd00::/64"}, "address_range", "IPv4"),
        ({"address_range": None}, "address_range", "required"),
        ({"connection": None}, "connection", "required"),
        ({"connection": {"api_url": "nm:8081", "master_key": KEY}}, "connection", "http://"),
        ({"connection": {"api_url": "http://nm", "master_key": ""}}, "connection", "master_key"),
        ({"connection": {"api_url": "https://nm", "master_key": KEY, "ca_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}},
         "connection", "ca_pem"),
    ],
)
def test_network_check_failures(netp, kw, prop, needle):
    r = netp.check({}, net_inputs(**kw))
    assert any(f.property == prop and needle in f.reason for f in r.failures), [(f.property, f.reason) for f in r.failures]
    assert all(KEY not in f.reason for f in r.failures)


@pytest.mark.parametrize("u", UNKNOWNS, ids=["Unknown", "sentinel"])
def test_check_tolerates_unknowns_everywhere(netp, keyp, egp, u):
    for provider, inputs in (
        (netp, net_inputs(netid=u, address_range=u, address_range6=u)),
        (netp, net_inputs(connection=u)),
        (netp, net_inputs(connection={"api_url": u, "master_key": u, "ca_pem": u})),
        (keyp, key_inputs(networks=u, tags=u, uses=u, expires_at=u, unlimited=u)),
        (keyp, key_inputs(networks=["mesh", u], tags=[u])),
        (egp, eg_inputs(network=u, gateway_host_name=u, ranges=u, nat=u, metric=u, egress_name=u)),
        (egp, eg_inputs(ranges=["10.9.0.0/24", u])),
    ):
        r = provider.check({}, inputs)
        assert r.failures == [], [(f.property, f.reason) for f in r.failures]


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"tags": ["ab"]}, "3-32"),
        ({"tags": []}, "at least one tag"),
        ({"tags": ["mesh"]}, "equal a network name"),
        ({"unlimited": False}, "got none"),
        ({"uses": 3}, "got uses, unlimited"),
        ({"uses": -1, "unlimited": False}, "positive"),
        ({"expires_at": "yesterday-ish", "unlimited": False}, "ISO-8601"),
        ({"networks": []}, "at least one network"),
    ],
)
def test_key_check_failures(keyp, kw, needle):
    r = keyp.check({}, key_inputs(**kw))
    assert any(needle in f.reason for f in r.failures), [(f.property, f.reason) for f in r.failures]


def test_key_check_normalises(keyp):
    i = checked(keyp, key_inputs(networks=["b-net", "a-net", "b-net"], tags=["t-one", "t-two", "t-one"],
                                 unlimited=False, expires_at="2030-01-01T00:00:00Z"))
    assert i["networks"] == ["a-net", "b-net"] and i["tags"] == ["t-one", "t-two"]
    assert i["expires_at"] == 1893456000
    assert checked(keyp, key_inputs(uses=5.0, unlimited=False))["uses"] == 5


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"ranges": []}, "at least one CIDR"),
        ({"ranges": ["300.1.1.0/24"]}, "not a CIDR"),
        ({"ranges": ["127.0.0.0/8"]}, "loopback"),
        ({"metric": 0}, "positive"),
        ({"nat": "yes"}, "boolean"),
        ({"network": "Bad Net"}, "network name"),
        ({"gateway_host_name": ""}, "required"),
    ],
)
def test_egress_check_failures(egp, kw, needle):
    r = egp.check({}, eg_inputs(**kw))
    assert any(needle in f.reason for f in r.failures), [(f.property, f.reason) for f in r.failures]


def test_egress_check_normalises(egp):
    i = checked(egp, eg_inputs(ranges=["198.51.100.9/24", "192.0.2.0/24", "198.51.100.0/24"], metric=300.0))
    assert i["ranges"] == ["192.0.2.0/24", "198.51.100.0/24"] and i["metric"] == 300


# -- create / diff / update / delete: network ------------------------------------------------------------
def test_network_lifecycle(netp, fake):
    i = checked(netp, net_inputs())
    c = netp.create(i)
    assert c.id == "mesh" and c.outs["network_id"] == fake.networks["mesh"]["id"]
    assert c.outs["kind"] == "netmaker-network"
    d = netp.diff(c.id, c.outs, i)
    assert d.changes is False and not d.replaces
    # provider_version / connection changes: update, not replace
    d = netp.diff(c.id, c.outs, dict(i, provider_version="2"))
    assert d.changes is True and not d.replaces
    assert netp.update(c.id, c.outs, dict(i, provider_version="2")).outs["provider_version"] == "2"
    d = netp.diff(c.id, c.outs, dict(i, connection=dict(CONN, api_url="http://nm.fake:8081/")))
    assert d.changes is True and not d.replaces
    # immutable fields: replace, delete first
    d = netp.diff(c.id, c.outs, dict(i, address_range="10.21.0.0/24"))
    assert d.replaces == ["address_range"] and d.delete_before_replace is True
    assert netp.diff(c.id, c.outs, dict(i, netid="other")).replaces == ["netid"]
    # read reflects the server
    r = netp.read(c.id, c.outs)
    assert r.id == "mesh" and r.outs["address_range"] == "10.20.0.0/24"
    # delete twice: idempotent
    netp.delete(c.id, c.outs)
    netp.delete(c.id, c.outs)
    assert "mesh" not in fake.networks
    assert netp.read(c.id, c.outs).id == ""


def test_network_deleted_behind_our_back_is_replaced(netp, fake):
    i = checked(netp, net_inputs())
    c = netp.create(i)
    fake.delete_network("mesh")
    d = netp.diff(c.id, c.outs, i)
    assert d.changes is True and d.replaces == ["netid"] and d.delete_before_replace is True
    c2 = netp.create(i)  # what the engine does next
    assert c2.id == "mesh"
    assert netp.diff(c2.id, c2.outs, i).changes is False


def test_network_recreated_with_other_range_is_replaced(netp, fake):
    i = checked(netp, net_inputs())
    c = netp.create(i)
    fake.delete_network("mesh")
    fake.networks["mesh"] = dict(c.outs, addressrange="10.99.0.0/24", addressrange6="", netid="mesh", id="new")
    d = netp.diff(c.id, c.outs, i)
    assert "address_range" in d.replaces


# -- the network's default key ------------------------------------------------------------------------
def _tagged(fake, tag):
    return [k for k in fake.keys.values() if tag in k["tags"]]


def test_network_default_key_is_removed_and_a_tombstone_keeps_its_tag(netp, fake):
    c = netp.create(checked(netp, net_inputs()))
    assert c.outs["default_key_removed"] is True
    [tombstone] = _tagged(fake, "mesh")
    assert not tombstone["unlimited"] and not tombstone["default"] and tombstone["type"] == 1
    fake.skew += 10  # seconds later the tombstone can join nothing
    assert not fake.valid(tombstone)
    with pytest.raises(PermissionError):
        join_host(fake, fake._token(tombstone["value"]), "intruder")
    fake.restart()  # migrate.go finds a key tagged "mesh" and re-creates no default key
    assert _tagged(fake, "mesh") == [tombstone]
    assert netp.diff(c.id, c.outs, checked(netp, net_inputs())).changes is False


def test_a_key_cannot_be_born_expired(netp, fake):
    """Why the tombstone lives a few seconds: CreateEnrollmentKey validates the new key
    (IsValid), so an expiration in the past is refused."""
    netp.create(checked(netp, net_inputs()))
    with netp.client(checked(netp, net_inputs())) as client, pytest.raises(Exception, match="enrollment key is not valid"):
        client.create_enrollment_key(["dead-key"], ["mesh"], expiration=1)


def test_network_recreated_default_key_is_drift_repaired_in_place(netp, fake):
    i = checked(netp, net_inputs())
    c = netp.create(i)
    fake.skew += 10
    [tombstone] = _tagged(fake, "mesh")
    del fake.keys[tombstone["value"]]  # someone deletes the tombstone...
    fake.restart()  # ...and the next server start makes an unlimited default key again
    [default] = _tagged(fake, "mesh")
    assert default["unlimited"] and default["default"] and fake.valid(default)
    d = netp.diff(c.id, c.outs, i)
    assert d.changes is True and not d.replaces, "an update, not a new network"
    u = netp.update(c.id, c.outs, i)
    assert u.outs["default_key_removed"] is True and default["value"] not in fake.keys
    assert [k["unlimited"] for k in _tagged(fake, "mesh")] == [False]
    assert netp.diff(c.id, u.outs, i).changes is False


def test_network_create_errors_carry_netmaker_reason(netp):
    netp.create(checked(netp, net_inputs()))
    with pytest.raises(BadRequest, match=r"POST /api/networks: HTTP 400: network cidr already in use"):
        netp.create(checked(netp, net_inputs(netid="other", address_range="10.20.0.0/25")))


# -- diff with unknowns ---------------------------------------------------------------------------------
@pytest.mark.parametrize("u", UNKNOWNS, ids=["Unknown", "sentinel"])
def test_diff_unknowns(netp, egp, fake, u, mesh):
    n, _ = mesh
    i = checked(netp, net_inputs())
    before = len(fake.requests)
    d = netp.diff(n.id, n.outs, dict(i, address_range=u))
    assert d.replaces == ["address_range"]  # conservative: may be a new range
    assert len(fake.requests) == before, "no server call once a replacement is certain"
    d = netp.diff(n.id, n.outs, dict(i, connection=u))
    assert d.changes is True and not d.replaces
    assert len(fake.requests) == before, "no server call with an unknown connection"
    d = netp.diff(n.id, n.outs, dict(i, provider_version=u))
    assert d.changes is True and not d.replaces
    e = egp.create(checked(egp, eg_inputs()))
    ei = checked(egp, eg_inputs())
    d = egp.diff(e.id, e.outs, dict(ei, ranges=[u]))
    assert d.changes is True and not d.replaces
    d = egp.diff(e.id, e.outs, dict(ei, network=u))
    assert d.replaces == ["network"]


def test_diff_skips_drift_when_server_unreachable(netp, fake):
    i = checked(netp, net_inputs())
    c = netp.create(i)
    fake.faults = [httpx.ConnectError("refused")] * 5
    d = netp.diff(c.id, c.outs, i)
    assert d.changes is False and not d.replaces


def test_diff_unauthorized_is_loud(netp):
    i = checked(netp, net_inputs())
    c = netp.create(i)
    bad = dict(i, connection=dict(CONN, master_key="wrong-key"))
    with pytest.raises(Unauthorized, match="unauthorized") as ei:
        netp.diff(c.id, c.outs, bad)
    assert "wrong-key" not in str(ei.value) and KEY not in str(ei.value)


# -- enrollment keys ----------------------------------------------------------------------------------
def test_key_lifecycle(netp, keyp, fake):
    netp.create(checked(netp, net_inputs()))
    i = checked(keyp, key_inputs(uses=2, unlimited=False))
    c = keyp.create(i)
    assert c.id == "mesh-join" and c.outs["key_type"] == 2 and c.outs["uses_remaining"] == 2
    decoded = base64.b64decode(c.outs["token"]).decode()
    assert c.outs["value"] in decoded
    assert keyp.diff(c.id, c.outs, i).changes is False
    # every attribute replaces; provider_version only updates
    for kw in ({"tags": ["mesh-join2"]}, {"uses": 3}, {"networks": ["mesh", "other"]}):
        d = keyp.diff(c.id, c.outs, dict(i, **kw))
        assert d.replaces and d.delete_before_replace, kw
    d = keyp.diff(c.id, c.outs, dict(i, provider_version="9"))
    assert d.changes is True and not d.replaces
    u = keyp.update(c.id, c.outs, dict(i, provider_version="9"))
    assert u.outs["value"] == c.outs["value"] and u.outs["token"] == c.outs["token"]
    # consuming a use is not drift
    join_host(fake, c.outs["token"], "h1")
    assert keyp.diff(c.id, c.outs, i).changes is False
    keyp.delete(c.id, c.outs)
    keyp.delete(c.id, c.outs)  # 400 "no enrollmentkey found" = done
    assert c.outs["value"] not in fake.keys


def test_key_gone_with_its_network_is_replaced(netp, keyp, fake):
    netp.create(checked(netp, net_inputs()))
    i = checked(keyp, key_inputs())
    c = keyp.create(i)
    fake.delete_network("mesh")  # the server deletes keys whose only network it was
    d = keyp.diff(c.id, c.outs, i)
    assert d.replaces == ["tags"]


def test_key_errors(netp, keyp):
    netp.create(checked(netp, net_inputs()))
    keyp.create(checked(keyp, key_inputs()))
    with pytest.raises(BadRequest, match="key names must be unique"):
        keyp.create(checked(keyp, key_inputs(networks=["mesh"])))
    with pytest.raises(Exception, match=r"network\(s\) \['nope'\] do not exist"):
        keyp.create(checked(keyp, key_inputs(tags=["k-nope"], networks=["nope"])))


# -- a member's one-use key -------------------------------------------------------------------------
def member_key(keyp, **kw):
    return checked(keyp, key_inputs(**{"tags": ["n1@mesh"], "unlimited": False, "uses": 1, "valid_for_seconds": 600, "for_host": "n1", **kw}))


def test_member_key_allows_one_use_and_carries_its_expiry(netp, keyp, fake):
    netp.create(checked(netp, net_inputs()))
    i = member_key(keyp)
    c = keyp.create(i)
    key = fake.keys[c.outs["value"]]
    assert key["type"] == 2 and key["uses_remaining"] == 1 and not key["unlimited"]
    assert key["tags"][0] == "n1@mesh" and re.fullmatch(r"until-\d+-[0-9a-f]{6}", key["tags"][1])
    assert abs(int(key["tags"][1].split("-")[1]) - (time.time() + 600)) < 5
    assert keyp.diff(c.id, c.outs, i).changes is False
    r = keyp.read(c.id, c.outs)
    assert r.outs["tags"] == ["n1@mesh"], "the expiry tag is the provider's, not an input"


def test_member_key_checks(keyp):
    assert [f.property for f in keyp.check({}, key_inputs(unlimited=False, uses=2, for_host="n1")).failures] == ["for_host"]
    bad = keyp.check({}, key_inputs(unlimited=False, uses=1, expires_at=4102444800, valid_for_seconds=600)).failures
    assert any("exactly one" in f.reason for f in bad)
    assert keyp.check({}, key_inputs(tags=["until-1-abcdef"])).failures
    lone = keyp.check({}, key_inputs(unlimited=False, uses=1, valid_for_seconds=600)).failures
    assert [f.property for f in lone] == ["for_host"]


def test_member_key_consumed_by_its_host_is_no_drift_and_refuses_a_replay(netp, keyp, fake):
    from tests.netmaker_fake import register_host

    netp.create(checked(netp, net_inputs()))
    i = member_key(keyp)
    c = keyp.create(i)
    join_host(fake, c.outs["token"], "n1")
    assert fake.keys[c.outs["value"]]["uses_remaining"] == 0, "the spent key stays on the server"
    assert keyp.diff(c.id, c.outs, i).changes is False
    fake.skew += 3600  # long past its validity: still consumed, not renewed
    assert keyp.diff(c.id, c.outs, i).changes is False
    with keyp.client(i) as client, pytest.raises(BadRequest, match="invalid enrollment key"):
        register_host(client, c.outs["token"], {"id": str(uuid.uuid4()), "name": "thief", "version": "v1.6.0"})
    assert not any(h["name"] == "thief" for h in fake.hosts.values())


def test_member_key_spent_without_its_host_is_replaced_delete_first(netp, keyp, fake):
    netp.create(checked(netp, net_inputs()))
    i = member_key(keyp)
    c = keyp.create(i)
    join_host(fake, c.outs["token"], "n1")
    host = next(h for h in fake.hosts.values() if h["name"] == "n1")
    fake._hosts("DELETE", ["api", "hosts", host["id"]], {}, None)  # removed on the server
    d = keyp.diff(c.id, c.outs, i)
    assert d.replaces == ["tags"] and d.delete_before_replace is True
    keyp.delete(c.id, c.outs)
    fresh = keyp.create(i)
    assert fresh.outs["token"] != c.outs["token"] and fake.keys[fresh.outs["value"]]["uses_remaining"] == 1


def test_member_key_unused_past_its_expiry_or_gone_is_replaced(netp, keyp, fake):
    netp.create(checked(netp, net_inputs()))
    i = member_key(keyp)
    c = keyp.create(i)
    assert keyp.diff(c.id, c.outs, i).changes is False
    fake.skew += 601
    assert keyp.diff(c.id, c.outs, i).replaces == ["tags"]
    fake.skew = 0
    del fake.keys[c.outs["value"]]
    assert keyp.diff(c.id, c.outs, i).replaces == ["tags"]


def test_member_key_for_a_joined_host_makes_none(netp, keyp, fake):
    """A stack from before member keys: the member has joined; no usable key is left for it."""
    netp.create(checked(netp, net_inputs()))
    old = keyp.create(checked(keyp, key_inputs(tags=["shared"], unlimited=True)))
    join_host(fake, old.outs["token"], "n1")
    before = set(fake.keys)
    i = member_key(keyp)
    c = keyp.create(i)
    assert c.outs["token"] == "" and set(fake.keys) == before
    assert keyp.diff(c.id, {**i, **c.outs}, i).changes is False
    # a usable key for a member that joined some other way is a credential nobody needs
    i2 = member_key(keyp, tags=["n2@mesh"], for_host="n2")
    stray = keyp.create(i2)
    join_host(fake, old.outs["token"], "n2")
    assert keyp.diff(stray.id, {**i2, **stray.outs}, i2).replaces == ["tags"]


# -- egress ----------------------------------------------------------------------------------------
def test_egress_lifecycle(egp, fake, mesh):
    i = checked(egp, eg_inputs(ranges=["192.0.2.0/24", "198.51.100.0/24"], nat=True))
    c = egp.create(i)
    assert c.id == "mesh/border-egress"
    assert [e["range"] for e in c.outs["egresses"]] == ["192.0.2.0/24", "198.51.100.0/24"]
    assert len(fake.egress) == 2 and all(e["nat"] and e["status"] for e in fake.egress.values())
    node_id = c.outs["gateway_node_id"]
    assert all(e["nodes"] == {node_id: 256} for e in fake.egress.values())
    assert egp.diff(c.id, c.outs, i).changes is False
    # update in place: drop one range, add one, change metric
    n = checked(egp, eg_inputs(ranges=["192.0.2.0/24", "203.0.113.0/24"], nat=True, metric=100))
    d = egp.diff(c.id, c.outs, n)
    assert d.changes is True and not d.replaces
    u = egp.update(c.id, c.outs, n)
    assert sorted(e["range"] for e in fake.egress.values()) == ["192.0.2.0/24", "203.0.113.0/24"]
    assert all(e["nodes"] == {node_id: 100} for e in fake.egress.values())
    kept = next(e for e in c.outs["egresses"] if e["range"] == "192.0.2.0/24")["id"]
    assert kept in fake.egress, "unchanged range keeps its egress object"
    assert egp.diff(c.id, u.outs, n).changes is False
    egp.delete(c.id, u.outs)
    egp.delete(c.id, u.outs)
    assert fake.egress == {}


def test_egress_out_of_band_changes_converge(egp, fake, mesh):
    i = checked(egp, eg_inputs())
    c = egp.create(i)
    eid = c.outs["egresses"][0]["id"]
    fake.egress[eid]["status"] = False  # disabled in the UI
    assert egp.diff(c.id, c.outs, i).changes is True
    u = egp.update(c.id, c.outs, i)
    assert fake.egress[eid]["status"] is True
    fake.egress[eid]["nat"] = True
    assert egp.diff(c.id, u.outs, i).changes is True
    del fake.egress[eid]  # deleted in the UI: update re-creates
    d = egp.diff(c.id, u.outs, i)
    assert d.changes is True and not d.replaces
    u2 = egp.update(c.id, u.outs, i)
    assert len(fake.egress) == 1 and u2.outs["egresses"][0]["id"] != eid
    assert egp.diff(c.id, u2.outs, i).changes is False


def test_egress_unknown_gateway_is_clear(egp, fake, mesh):
    with pytest.raises(GatewayNotFound, match=r"'ghost' not found in network 'mesh': no Netmaker host is named 'ghost' \(hosts: border\)"):
        egp.create(checked(egp, eg_inputs(gateway_host_name="ghost")))
    with pytest.raises(GatewayNotFound, match="network 'nonet' does not exist"):
        egp.create(checked(egp, eg_inputs(network="nonet")))
    assert fake.egress == {}


def test_egress_range_error_rolls_back(egp, fake, mesh):
    with pytest.raises(BadRequest, match="egress range must not overlap the Netmaker network IPv4 range"):
        egp.create(checked(egp, eg_inputs(ranges=["192.0.2.0/24", "10.20.0.0/25"])))
    assert fake.egress == {}, "the first, successful object must be rolled back"


def test_egress_gateway_rejoined_is_updated(egp, fake, mesh):
    _, k = mesh
    i = checked(egp, eg_inputs())
    c = egp.create(i)
    old_host = next(h for h in fake.hosts.values() if h["name"] == "border")
    fake.hosts.pop(old_host["id"])
    for nid in old_host["nodes"]:
        fake.nodes.pop(nid)
    join_host(fake, k.outs["token"], "border")  # same name, new host + node
    d = egp.diff(c.id, c.outs, i)
    assert d.changes is True and not d.replaces
    u = egp.update(c.id, c.outs, i)
    assert u.outs["gateway_node_id"] != c.outs["gateway_node_id"]
    assert egp.diff(c.id, u.outs, i).changes is False


# -- credentials ------------------------------------------------------------------------------------
def test_configure_overrides_win(monkeypatch, fake):
    p = _wire(NetmakerNetworkProvider(), fake)
    monkeypatch.setenv("NETMAKER_API_URL", "http://env.example:1")
    monkeypatch.setenv("NETMAKER_MASTER_KEY", "env-key")
    p.configure(ConfigureRequest(Config({"bgp4mesh:netmaker_master_key": KEY}, "bgp4mesh")))
    conn = p._effective_connection({"connection": {"api_url": "http://in.put", "master_key": "input-key"}})
    assert conn["api_url"] == "http://env.example:1" and conn["master_key"] == KEY  # config > env > input
    # with overrides, a connection input may even be missing
    monkeypatch.setenv("NETMAKER_API_URL", "http://nm.fake:8081")
    p.configure(ConfigureRequest(Config({}, "bgp4mesh")))
    monkeypatch.setenv("NETMAKER_MASTER_KEY", KEY)
    p.configure(ConfigureRequest(Config({}, "bgp4mesh")))
    i = net_inputs(connection=None)
    assert p.check({}, i).failures == []
    assert p.create(p.check({}, i).inputs).id == "mesh"


def test_serialized_provider_carries_no_secret(monkeypatch):
    for cls in (NetmakerNetworkProvider, EnrollmentKeyProvider, EgressGatewayProvider):
        p = cls()
        monkeypatch.setenv("NETMAKER_MASTER_KEY", KEY)
        p.configure(ConfigureRequest(Config({"bgp4mesh:netmaker_master_key": KEY}, "bgp4mesh")))
        blob = serialize_provider(p)
        raw = base64.b64decode(blob)
        assert KEY.encode() not in raw
        back = dill.loads(raw)
        assert type(back) is cls and not hasattr(back, "_override_master_key")
        assert len(raw) < 2000, "the class must be pickled by reference, not by value"
        assert cls.serialize_as_secret_always is False


def test_missing_connection_message_names_all_sources(netp):
    p = NetmakerNetworkProvider()
    os.environ.pop("NETMAKER_API_URL", None)
    with pytest.raises(ValueError, match="NETMAKER_API_URL"):
        p.create(net_inputs(connection=None))


# -- resource wrappers --------------------------------------------------------------------------------
class _Mocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.created = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.created.append((args.typ, args.name, dict(args.inputs)))
        return [args.name + "_id", dict(args.inputs)]

    def call(self, args):
        return {}


def test_resources_register_typed_with_kind_and_secret_outputs():
    from bgp4mesh.providers import (
        EgressGateway,
        EgressGatewayArgs,
        EnrollmentKey,
        EnrollmentKeyArgs,
        NetmakerConnection,
        NetmakerNetwork,
        NetmakerNetworkArgs,
    )
    from bgp4mesh.providers.base import merge_opts

    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, preview=False)
    try:
        conn = NetmakerConnection("http://nm:8081", pulumi.Output.secret(KEY))
        net = NetmakerNetwork("mesh", NetmakerNetworkArgs(conn, "mesh", "10.20.0.0/24"))
        key = EnrollmentKey("join", EnrollmentKeyArgs(conn, [net.netid], ["mesh-join"], unlimited=True))
        EgressGateway("egress", EgressGatewayArgs(conn, net.netid, "border", ["192.0.2.0/24"]))

        def check(_):
            types = {t: (n, i) for t, n, i in mocks.created}
            assert set(types) >= {
                "pulumi-python:dynamic/bgp4mesh:NetmakerNetwork",
                "pulumi-python:dynamic/bgp4mesh:EnrollmentKey",
                "pulumi-python:dynamic/bgp4mesh:EgressGateway",
            }
            kinds = {i["kind"] for _, i in types.values()}
            assert kinds == {"netmaker-network", "netmaker-enrollment-key", "netmaker-egress"}
            assert types["pulumi-python:dynamic/bgp4mesh:EgressGateway"][1]["egress_name"] == "egress"
            assert all(i["provider_version"] for _, i in types.values())

        out = pulumi.Output.all(net.urn, key.urn).apply(check)
        assert merge_opts(None, ["token", "value", "connection"]).additional_secret_outputs == ["token", "value", "connection"]
        return out
    finally:
        pass


test_resources_register_typed_with_kind_and_secret_outputs = pulumi.runtime.test(
    test_resources_register_typed_with_kind_and_secret_outputs
)


# -- internet gateway ------------------------------------------------------------------------------
@pytest.fixture
def igp(fake):
    return _wire(InternetGatewayProvider(), fake)


def igw_inputs(**kw):
    d = {"connection": dict(CONN), "network": "mesh", "gateway_host_name": "border", "client_host_names": ["n2", "n1"],
         "provider_version": "1", "kind": "netmaker-internet-gateway"}
    d.update(kw)
    return d


def _node_of(fake, host_name):
    host_id = next(h["id"] for h in fake.hosts.values() if h["name"] == host_name)
    return next(n for n in fake.nodes.values() if n["hostid"] == host_id)


def test_internet_gateway_lifecycle(igp, fake, mesh):
    token = mesh[1].outs["token"]
    for name in ("n1", "n2", "n3"):
        join_host(fake, token, name)
    i = checked(igp, igw_inputs())
    assert i["client_host_names"] == ["n1", "n2"]
    c = igp.create(i)
    gateway = _node_of(fake, "border")
    assert gateway["is_gw"] and gateway["isinternetgateway"]
    assert {n: _node_of(fake, n).get("internetgw_node_id") for n in ("n1", "n2", "n3")} == {"n1": gateway["id"], "n2": gateway["id"], "n3": None}
    assert igp.diff(c.id, c.outs, i).changes is False
    # a node added to the mesh: the gateway is made again with it, in place
    n = checked(igp, igw_inputs(client_host_names=["n1", "n2", "n3"]))
    d = igp.diff(c.id, c.outs, n)
    assert d.changes and not d.replaces
    u = igp.update(c.id, c.outs, n)
    assert _node_of(fake, "n3")["internetgw_node_id"] == gateway["id"] and len(u.outs["client_node_ids"]) == 3
    # removed behind our back: the next diff sees it and the update sets it again
    fake.nodes[gateway["id"]].update(is_gw=False, isinternetgateway=False)
    assert igp.diff(c.id, u.outs, n).changes is True
    igp.update(c.id, u.outs, n)
    assert _node_of(fake, "border")["isinternetgateway"]
    igp.delete(c.id, u.outs)
    assert not _node_of(fake, "border")["isinternetgateway"] and not _node_of(fake, "n1")["internetgw_node_id"]


def test_internet_gateway_check_failures(igp):
    failed = igp.check({}, igw_inputs(client_host_names=["border"], network="Bad Net")).failures
    assert {f.property for f in failed} == {"network", "client_host_names"}
    assert igp.diff("x", checked(igp, igw_inputs()), checked(igp, igw_inputs(gateway_host_name="b2"))).replaces == ["gateway_host_name"]


# -- field declarations -----------------------------------------------------------------------------
# Each provider declares its fields once (``FIELDS``); this is the contract those declarations
# must keep, spelled out by hand so that a dropped field or a wrong flag fails here.
class Contract(NamedTuple):
    resource: type
    args: type
    replaces: set  # inputs whose change replaces the object
    updates: set  # inputs whose change is an update in place
    drifts: set  # outputs whose live value, unlike the state's, means an update
    outputs: set  # the other outputs
    secrets: list  # secret outputs besides connection
    defaults: dict  # what the Args and check fill in


CONTRACTS = {
    NetmakerNetworkProvider: Contract(
        NetmakerNetwork, NetmakerNetworkArgs, {"netid", "address_range", "address_range6"}, set(),
        {"network_id", "default_key_removed"}, {"default_keepalive", "default_mtu"}, [], {},
    ),
    EnrollmentKeyProvider: Contract(
        EnrollmentKey, EnrollmentKeyArgs, {"networks", "tags", "uses", "expires_at", "valid_for_seconds", "unlimited", "for_host"}, set(),
        {"token"}, {"value", "key_type", "uses_remaining", "expiration"}, ["token", "value"], {"unlimited": False},
    ),
    EgressGatewayProvider: Contract(
        EgressGateway, EgressGatewayArgs, {"network"}, {"gateway_host_name", "ranges", "nat", "metric", "egress_name", "host_wait_seconds"},
        {"enabled"}, {"egresses", "gateway_node_id"}, [], {"nat": False, "metric": 256, "host_wait_seconds": 0},
    ),
    InternetGatewayProvider: Contract(
        InternetGateway, InternetGatewayArgs, {"network", "gateway_host_name"}, {"client_host_names", "host_wait_seconds"},
        set(), {"gateway_node_id", "client_node_ids"}, [], {"host_wait_seconds": 0},
    ),
    MeshMemberProvider: Contract(
        MeshMember, MeshMemberArgs, {"network", "host_name"}, {"pinned_address", "join_wait_seconds"},
        {"node_id"}, {"host_id", "address", "address6"}, [], {"join_wait_seconds": 120},
    ),
}
PROVIDERS = list(CONTRACTS)


def _stored(cls) -> dict:
    """A resource's state: every field set, as after a create."""
    c = CONTRACTS[cls]
    names = c.replaces | c.updates | c.drifts | c.outputs
    return {"connection": dict(CONN), "provider_version": "1", "kind": cls.KIND, **{f: f"old-{f}" for f in names}}


@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda c: c.__name__)
def test_each_input_change_replaces_or_updates_as_declared(cls):
    olds, c = _stored(cls), CONTRACTS[cls]
    for f in sorted(c.replaces | c.updates):
        diff = cls().diff("", olds, {**olds, f: f"new-{f}"})  # no id: no drift check
        assert diff.changes is True, f"{cls.__name__}: a change of {f} goes unnoticed"
        assert diff.replaces == ([f] if f in c.replaces else []), f"{cls.__name__}.{f}: wrong replace flag"


@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda c: c.__name__)
def test_each_output_drifts_as_declared(cls, fake):
    olds, c = _stored(cls), CONTRACTS[cls]
    for f in sorted(c.drifts | c.outputs):

        class OneOutputChanged(cls):
            def read_object(self, client, id_, props):
                return {**olds, f: f"live-{f}"}

        diff = _wire(OneOutputChanged(), fake).diff("some-id", olds, dict(olds))
        assert (diff.changes, diff.replaces) == (f in c.drifts, []), f"{cls.__name__}.{f}: wrong drift flag"


@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda c: c.__name__)
def test_check_fills_in_the_declared_defaults(cls):
    inputs = cls().check({}, {"connection": dict(CONN)}).inputs
    assert {f: inputs.get(f) for f in CONTRACTS[cls].defaults} == CONTRACTS[cls].defaults


@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda c: c.__name__)
def test_resource_registers_every_declared_field_and_its_secrets(cls, monkeypatch):
    c, registered = CONTRACTS[cls], {}

    def register(resource, provider, name, props, opts=None):
        registered.update(provider=provider, props=props, secrets=opts.additional_secret_outputs)

    monkeypatch.setattr(pulumi.dynamic.Resource, "__init__", register)
    required = [f.name for f in dataclasses.fields(c.args) if f.default is dataclasses.MISSING]
    args = c.args(**{f: f"given-{f}" for f in required})
    c.resource("res", args)
    inputs = c.replaces | c.updates
    assert [f.name for f in dataclasses.fields(c.args)] == ["connection", *cls.FIELDS.inputs, "provider_version"]
    assert {f: getattr(args, f) for f in c.defaults} == c.defaults
    assert isinstance(registered["provider"], cls)
    props = registered["props"]
    assert set(props) == {"kind", "connection", "provider_version", *inputs, *c.drifts, *c.outputs}
    assert all(props[f] is None for f in c.drifts | c.outputs), "outputs are registered unset"
    assert props["kind"] == cls.KIND and props["provider_version"] == args.provider_version
    assert registered["secrets"] == [*c.secrets, "connection"]


def test_a_field_flag_that_cannot_apply_is_refused():
    with pytest.raises(ValueError, match="only an input replaces"):
        Field("x", OUTPUT, replaces=True)
    with pytest.raises(ValueError, match="only an output drifts"):
        Field("x", INPUT, drift=True)
    with pytest.raises(ValueError, match="kind must be"):
        Field("x", "computed")

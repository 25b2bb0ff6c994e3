"""MeshMemberProvider against the in-process fake: it waits for a joined host's node,
pins its address, reports it, notices drift, re-pins on update and removes the host on
delete. Also the enrollment key's valid_for_seconds: expiry set at create, renewed once
half of it is gone."""

from __future__ import annotations

import threading
import time

import pytest

from bgp4mesh.providers.enrollment_key import EnrollmentKeyProvider, parse_time
from bgp4mesh.providers.member import MeshMemberProvider
from tests.test_providers import CONN, _wire, checked, fake, key_inputs, keyp, mesh, netp  # noqa: F401 (fixtures)


@pytest.fixture
def memberp(fake):
    return _wire(MeshMemberProvider(), fake)


def member_inputs(**kw):
    d = {"connection": dict(CONN), "network": "mesh", "host_name": "border", "pinned_address": None,
         "join_wait_seconds": 0, "provider_version": "1", "kind": "netmaker-mesh-member"}
    d.update(kw)
    return d


def node_of(fake, host_name: str) -> dict:
    hid = next(h["id"] for h in fake.hosts.values() if h["name"] == host_name)
    return next(n for n in fake.nodes.values() if n["hostid"] == hid)


def test_check_rejects_a_pin_that_is_no_address(memberp):
    r = memberp.check({}, member_inputs(pinned_address="10.20.0.300"))
    assert [f.property for f in r.failures] == ["pinned_address"]


def test_create_reports_the_assigned_address_without_a_pin(memberp, fake, mesh):
    created = memberp.create(checked(memberp, member_inputs()))
    node = node_of(fake, "border")
    assert created.id == node["id"]
    assert created.outs["address"] == node["address"].split("/")[0] == "10.20.0.1"
    assert created.outs["host_id"] == node["hostid"]
    assert created.outs["address6"] is None  # the network has no IPv6 range: the node has no IPv6 address


def test_create_reports_the_ipv6_address_in_a_dual_stack_network(memberp, fake, mesh):
    """Netmaker gives every node of a network with addressrange6 an address from it too
    (the server's "address6", with its prefix length): reported bare, beside the IPv4 one."""
    node_of(fake, "border")["address6"] = "2001:db8:4430::5/64"
    created = memberp.create(checked(memberp, member_inputs()))
    assert (created.outs["address"], created.outs["address6"]) == ("10.20.0.1", "2001:db8:4430::5")


def test_create_pins_the_configured_address(memberp, fake, mesh):
    created = memberp.create(checked(memberp, member_inputs(pinned_address="10.20.0.77")))
    assert created.outs["address"] == "10.20.0.77"
    assert node_of(fake, "border")["address"] == "10.20.0.77/24"


def test_create_fails_clearly_when_the_host_never_joins(memberp, fake, mesh):
    with pytest.raises(Exception, match="mesh member 'ghost' not found in network 'mesh'"):
        memberp.create(checked(memberp, member_inputs(host_name="ghost")))


def test_no_change_diff_and_drift_on_the_server(memberp, fake, mesh):
    props = checked(memberp, member_inputs(pinned_address="10.20.0.77"))
    created = memberp.create(props)
    olds = {**props, **created.outs}
    assert memberp.diff(created.id, olds, props).changes is False
    node_of(fake, "border")["address"] = "10.20.0.5/24"  # re-addressed behind our back
    assert memberp.diff(created.id, olds, props).changes is True
    updated = memberp.update(created.id, olds, props)
    assert updated.outs["address"] == "10.20.0.77" and node_of(fake, "border")["address"] == "10.20.0.77/24"


def test_renaming_the_host_replaces_the_member(memberp, fake, mesh):
    props = checked(memberp, member_inputs())
    created = memberp.create(props)
    diff = memberp.diff(created.id, {**props, **created.outs}, {**props, "host_name": "other"})
    assert diff.changes and diff.replaces == ["host_name"]


def test_a_host_gone_from_the_server_is_replaced(memberp, fake, mesh):
    props = checked(memberp, member_inputs())
    created = memberp.create(props)
    fake.hosts.clear()
    fake.nodes.clear()
    assert memberp.diff(created.id, {**props, **created.outs}, props).replaces == ["host_name"]
    assert memberp.read(created.id, {**props, **created.outs}).id == ""


def test_read_reports_the_live_node(memberp, fake, mesh):
    props = checked(memberp, member_inputs(pinned_address="10.20.0.77"))
    created = memberp.create(props)
    read = memberp.read(created.id, {**props, **created.outs})
    assert read.id == created.id and read.outs["address"] == "10.20.0.77" and read.outs["pinned_address"] == "10.20.0.77"


def test_delete_removes_the_host_and_is_idempotent(memberp, fake, mesh):
    props = checked(memberp, member_inputs())
    created = memberp.create(props)
    outs = {**props, **created.outs}
    memberp.delete(created.id, outs)
    assert not any(h["name"] == "border" for h in fake.hosts.values())
    assert not any(n["hostid"] == created.outs["host_id"] for n in fake.nodes.values())
    memberp.delete(created.id, outs)  # already gone: no error


def test_key_valid_for_seconds_expires_and_is_renewed(fake, mesh):
    keyp = _wire(EnrollmentKeyProvider(), fake)
    props = checked(keyp, key_inputs(tags=["mesh-members"], unlimited=False, valid_for_seconds=3600))
    created = keyp.create(props)
    key = next(k for k in fake.keys.values() if "mesh-members" in k["tags"])
    assert abs(parse_time(key["expiration"]) - (time.time() + 3600)) < 60, key["expiration"]
    olds = {**props, **created.outs}
    assert keyp.diff(created.id, olds, props).changes is False  # fresh: kept
    key["expiration"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1000))  # under half of 3600 left
    assert keyp.diff(created.id, olds, props).replaces == ["tags"]  # renewed by replacement


def test_key_needs_exactly_one_lifetime(fake):
    keyp = _wire(EnrollmentKeyProvider(), fake)
    r = keyp.check({}, key_inputs(unlimited=True, valid_for_seconds=3600))
    assert any("exactly one" in f.reason for f in r.failures)
    r = keyp.check({}, key_inputs(unlimited=False, valid_for_seconds=5))
    assert [f.property for f in r.failures] == ["valid_for_seconds"]


def test_pin_waits_while_another_joining_member_holds_the_address(memberp, fake, mesh):
    """Two members join at once: the other one sits on our pinned address for a moment."""
    from tests.test_providers import join_host

    join_host(fake, mesh[1].outs["token"], "other")
    other = node_of(fake, "other")
    other["address"] = "10.20.0.77/24"  # where we want to be
    threading.Timer(1.5, lambda: other.update(address="10.20.0.78/24")).start()  # it moves on
    started = time.monotonic()
    created = memberp.create(checked(memberp, member_inputs(pinned_address="10.20.0.77")))
    assert created.outs["address"] == "10.20.0.77" and 1.0 < time.monotonic() - started < 10


def test_pin_fails_clearly_when_the_address_stays_taken(memberp, fake, mesh, monkeypatch):
    from bgp4mesh.providers import member

    monkeypatch.setattr(member, "PIN_WAIT_SECONDS", 2)
    from tests.test_providers import join_host

    join_host(fake, mesh[1].outs["token"], "squatter")
    node_of(fake, "squatter")["address"] = "10.20.0.77/24"
    with pytest.raises(Exception, match="10.20.0.77 is used by node"):
        memberp.create(checked(memberp, member_inputs(pinned_address="10.20.0.77")))

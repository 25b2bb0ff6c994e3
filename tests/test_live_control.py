"""Live tier, the control plane from outside: on the dev lab's underlay (the lab's
Internet), a container at an address that is neither the operator's nor a member's asks
the TLS front for every admin and user route and gets 403, while what netclients call
still reaches Netmaker. bgp4mesh's own super-admin holds the place an outsider would take,
and basic auth stays off."""

from __future__ import annotations

from harness import sim
from bgp4mesh.addressing import underlay_plan
from bgp4mesh.naming import docker_name
from bgp4mesh.netmaker_api import NetmakerClient
from bgp4mesh.stack import load_file
from tests.live import server_secrets

CFG = load_file("dev")
PLAN = underlay_plan(CFG)
OUTSIDER = str(PLAN.subnet.network_address + 250)
"""An underlay address no member holds and `netmaker.admin_from` (empty in dev) lacks."""

REFUSED = [
    ("GET", "/api/users/adm/hassuperadmin"),
    ("POST", "/api/users/adm/createsuperadmin"),
    ("POST", "/api/users/adm/authenticate"),
    ("GET", "/api/users"),
    ("GET", "/api/server/settings"),
    ("GET", "/api/server/getconfig"),
    ("GET", "/api/v1/enrollment-keys"),
    ("GET", "/api/networks"),
    ("GET", "/api/hosts"),
    ("POST", "/api/v1/host/register/x/../../../users/adm/createsuperadmin"),
]
ANSWERED = {
    ("GET", "/api/server/status"): 200,  # netclients read it, no credential
    ("POST", "/api/v1/host/register/bm90LWEtdG9rZW4="): 400,  # Netmaker itself refuses a bad token
    ("GET", "/api/v1/host"): 401,  # Netmaker asks the host for its token
}


def outsider(calls: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    return sim.outsider_http(docker_name("dev", "underlay"), OUTSIDER, CFG.netmaker.domain, str(PLAN.netmaker["tls"]), calls)


def test_an_outsider_gets_no_admin_route_and_netclients_routes_still_answer(dev_lab):
    codes = outsider(REFUSED + list(ANSWERED))
    assert {c: codes[c] for c in REFUSED} == {c: 403 for c in REFUSED}
    assert {c: codes[c] for c in ANSWERED} == ANSWERED


def test_the_super_admin_is_bgp4meshs_and_basic_auth_is_off(dev_lab):
    out = dev_lab.outputs
    with NetmakerClient(out["netmaker_api"], server_secrets("dev")["masterkey"], out["netmaker_ca_certificate"]) as api:
        users = api.list_users()
        settings = api.server_settings()
    assert [(u["username"], u["issuperadmin"]) for u in users] == [(CFG.netmaker.admin_user, True)]
    assert settings["basic_auth"] is False

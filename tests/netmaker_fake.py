"""An in-process stand-in for the Netmaker v1.6.0 REST API, as an httpx transport.

Only what the client and providers use, with the status codes, envelopes and error texts
read from the v1.6.0 source and seen on the real server (tests/test_netmaker_live.py checks
the same behaviours against the real binary). Not a replacement for the live tests.
"""

from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
import json
import random
import string
import time
import uuid
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httpx


def _err(code: int, msg: str) -> httpx.Response:
    return httpx.Response(code, json={"Code": code, "Message": msg, "Response": None})


def _wrapped(payload: Any, msg: str) -> httpx.Response:
    return httpx.Response(200, json={"Code": 200, "Message": msg, "Response": payload})


class FakeNetmaker:
    def __init__(self, master_key: str = "fake-master-key", server: str = "127.0.0.1") -> None:
        self.master_key = master_key
        self.server = server
        self.networks: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.hosts: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.egress: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.skew = 0.0  # seconds the server's clock is ahead of this machine's (tests advance it)
        # fault injection: each entry is an httpx.Response or an exception instance, consumed in order
        self.faults: list[Any] = []
        self.transport = httpx.MockTransport(self.handle)

    # -- helpers ----------------------------------------------------------------------------
    def _token(self, value: str) -> str:
        return base64.b64encode(json.dumps({"server": self.server, "value": value}, separators=(",", ":")).encode()).decode()

    def _key_out(self, k: dict[str, Any]) -> dict[str, Any]:
        return {**k, "token": self._token(k["value"])}

    def now(self) -> float:
        return time.time() + self.skew

    def valid(self, k: dict[str, Any]) -> bool:
        """models.EnrollmentKey.IsValid."""
        if k["uses_remaining"] > 0:
            return True
        if k["expiration"] != "0001-01-01T00:00:00Z":
            exp = _dt.datetime.strptime(k["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)
            if self.now() < exp.timestamp():
                return True
        return k["type"] != 0 and k["unlimited"]

    def _new_key(self, tags, networks, uses=0, expiration=0, unlimited=False, default=False) -> dict[str, Any] | None:
        """logic.CreateEnrollmentKey: the type is uses, else expiry, else unlimited; a key
        that is not valid when made is refused (None)."""
        value = "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(32))
        ktype = 2 if uses > 0 else 1 if expiration > 0 else 3 if unlimited else 0
        exp = "0001-01-01T00:00:00Z"
        if uses <= 0 and expiration > 0:
            exp = _dt.datetime.fromtimestamp(expiration, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        k = {
            "expiration": exp, "uses_remaining": max(uses, 0), "value": value, "networks": list(networks),
            "unlimited": unlimited, "tags": list(tags), "type": ktype,
            "relay": "00000000-0000-0000-0000-000000000000", "groups": None, "default": default,
            "auto_egress": False, "auto_assign_gw": False,
        }
        if not self.valid(k):
            return None
        if default:
            self._clear_defaults(networks, tags)
        self.keys[value] = k
        return k

    def _clear_defaults(self, networks, tags) -> None:
        """clearDefaultEnrollmentKeysForNetworks: one default key per network."""
        nets = set(networks) | set(tags[:1])
        for other in self.keys.values():
            if other["default"] and (nets & set(other["networks"]) or nets & set(other["tags"][:1])):
                other["default"] = False

    def restart(self) -> None:
        """A server start: migrate.go re-creates the default key of every network that has
        no key (valid or not) tagged with its name."""
        tags = {t for k in self.keys.values() for t in k["tags"]}
        for netid in self.networks:
            if netid not in tags:
                self._new_key([netid], [netid], unlimited=True, default=True)

    def register(self, token: str, host: dict[str, Any]) -> dict[str, Any]:
        """handleHostRegister: the key must exist and be usable (TryToUseEnrollmentKey takes
        one use of a Uses key; a spent key stays in the database and is refused)."""
        value = json.loads(base64.b64decode(token))["value"]
        key = self.keys.get(value)
        if key is None:
            raise LookupError("no enrollmentkey found")
        if key["uses_remaining"] > 0:
            key["uses_remaining"] -= 1
        elif not self.valid(key):
            raise PermissionError("invalid enrollment key")
        hid = host.get("id") or str(uuid.uuid4())
        h = self.hosts.setdefault(hid, {"id": hid, "name": host.get("name", ""), "nodes": [], "version": host.get("version", "")})
        for net in key["networks"]:
            if net not in self.networks:
                continue
            used = {ipaddress.ip_interface(n["address"]).ip for n in self.nodes.values() if n["network"] == net}
            netw = ipaddress.ip_network(self.networks[net]["addressrange"])
            ip = next(a for a in netw.hosts() if a not in used)
            nid = str(uuid.uuid4())
            self.nodes[nid] = {"id": nid, "hostid": hid, "network": net,
                               "address": f"{ip}/{netw.prefixlen}", "address6": "", "is_static": False,
                               "connected": True, "status": "online"}
            h["nodes"].append(nid)
        return {"requested_host": h}

    # -- router -----------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        response = self._handle(request)
        response.headers.setdefault("Date", formatdate(self.now(), usegmt=True))  # as Go's net/http does
        return response

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if self.faults:
            f = self.faults.pop(0)
            if isinstance(f, Exception):
                raise f
            if isinstance(f, httpx.Response):
                return f
        path, method = request.url.path, request.method
        parts = [p for p in path.split("/") if p]
        q = request.url.params
        body: Any = None
        if request.content:
            try:
                body = json.loads(request.content)
            except ValueError:
                return _err(400, "invalid character in request body")

        if path == "/api/server/status":
            return httpx.Response(200, json={"db_connected": True, "broker_connected": True, "version": "v1.6.0"})
        if path == "/api/server/health":
            return httpx.Response(200, text="Server is up and running!!")
        if parts[:4] == ["api", "v1", "host", "register"] and method == "POST":
            try:
                return httpx.Response(200, json=self.register(parts[4], body or {}))
            except LookupError as exc:
                return _err(400, str(exc).strip("'"))
            except Exception:  # noqa: BLE001
                return _err(400, "invalid enrollment key")

        auth = request.headers.get("Authorization", "").split(" ")
        if len(auth) != 2 or auth[1] != self.master_key:
            return _err(401, "unauthorized")

        route: Callable[..., httpx.Response] | None = None
        if parts[:2] == ["api", "networks"]:
            route = self._networks
        elif parts[:3] == ["api", "v1", "enrollment-keys"]:
            route = self._keys
        elif parts[:2] == ["api", "hosts"]:
            route = self._hosts
        elif parts[:2] == ["api", "nodes"]:
            route = self._nodes
        elif parts[:3] == ["api", "v1", "egress"]:
            route = self._egress
        if route is None:
            return httpx.Response(404, text="404 page not found")
        return route(method, parts, q, body)

    # -- networks -----------------------------------------------------------------------------
    def _networks(self, method, parts, q, body) -> httpx.Response:
        if len(parts) == 2 and method == "GET":
            return httpx.Response(200, json=sorted(self.networks.values(), key=lambda n: n["netid"]))
        if len(parts) == 2 and method == "POST":
            netid, r4, r6 = body.get("netid", ""), body.get("addressrange", ""), body.get("addressrange6", "")
            if not r4 and not r6:
                return _err(400, "IPv4 or IPv6 CIDR required")
            nets = []
            for r in (r4, r6):
                if r:
                    try:
                        n = ipaddress.ip_network(r, strict=False)
                    except ValueError:
                        return _err(400, f"invalid CIDR address: {r}")
                    if n.max_prefixlen - n.prefixlen <= 1:
                        return _err(400, "cannot create network with /31 or /32 cidr")
                    nets.append(n)
            for other in self.networks.values():
                for r in (other["addressrange"], other["addressrange6"]):
                    if r and any(n.version == ipaddress.ip_network(r).version and n.overlaps(ipaddress.ip_network(r)) for n in nets):
                        return _err(400, "network cidr already in use")
            if netid in self.networks:
                return _err(400, "invalid network name")
            if not netid or any(c not in string.ascii_lowercase + string.digits + "-_" for c in netid):
                return _err(400, "invalid character(s) in network name")
            net = {"id": str(uuid.uuid4()), "netid": netid,
                   "addressrange": str(ipaddress.ip_network(r4, strict=False)) if r4 else "",
                   "addressrange6": str(ipaddress.ip_network(r6, strict=False)) if r6 else "",
                   "defaultkeepalive": 20, "defaultmtu": 1280, "auto_join": True, "auto_remove": False,
                   "auto_remove_tags": [], "auto_remove_threshold": 0}
            self.networks[netid] = net
            self._new_key([netid], [netid], unlimited=True, default=True)
            return httpx.Response(200, json=net)
        netid = parts[2]
        if method == "GET":
            if netid not in self.networks:
                return _err(404, "record not found")
            return httpx.Response(200, json=self.networks[netid])
        if method == "PUT":
            cur = self.networks.get(body.get("netid"))
            if cur is None:
                return _err(400, "record not found")
            for k in ("auto_remove", "auto_remove_threshold", "auto_remove_tags"):
                if k in body:
                    cur[k] = body[k]
            return httpx.Response(200, json=cur)
        if method == "DELETE":
            self.delete_network(netid)
            return httpx.Response(200, json={"Code": 200, "Message": "success", "Response": None})
        return _err(405, "method not allowed")

    def delete_network(self, netid: str) -> None:
        self.networks.pop(netid, None)
        for v, k in list(self.keys.items()):
            if netid in k["networks"]:
                k["networks"] = [n for n in k["networks"] if n != netid]
                if not k["networks"]:
                    del self.keys[v]
        for eid, e in list(self.egress.items()):
            if e["network"] == netid:
                del self.egress[eid]
        for nid, n in list(self.nodes.items()):
            if n["network"] == netid:
                del self.nodes[nid]

    # -- keys -----------------------------------------------------------------------------
    def _keys(self, method, parts, q, body) -> httpx.Response:
        if len(parts) == 3 and method == "GET":
            return httpx.Response(200, json=[self._key_out(k) for k in self.keys.values()])
        if len(parts) == 3 and method == "POST":
            tags = body.get("tags") or []
            if not tags or any(not 3 <= len(t) <= 32 for t in tags):
                return _err(400, "validation error: name length must be between 3 and 32: Key: 'APIEnrollmentKey.Tags[0]'")
            existing = {t for k in self.keys.values() for t in k["tags"]}
            if existing & set(tags):
                return _err(400, "key names must be unique")
            uses, exp, unl = body.get("uses_remaining", 0), body.get("expiration", 0), body.get("unlimited", False)
            k = self._new_key(tags, body.get("networks") or [], uses, exp, unl, bool(body.get("default")))
            if k is None:
                return _err(500, f"enrollment key is not valid: uses remaining: {max(uses, 0)}, expiration: {exp}, unlimited: {str(unl).lower()}")
            return httpx.Response(200, json=self._key_out(k))
        if len(parts) == 4 and method == "PUT":  # UpdateEnrollmentKey: relay, groups, auto_assign_gw, default
            k = self.keys.get(parts[3])
            if k is None:
                return _err(500, "no enrollmentkey found")
            k.update(groups=body.get("groups"), auto_assign_gw=bool(body.get("auto_assign_gw")),
                     relay=body.get("relay") or "00000000-0000-0000-0000-000000000000")
            if body.get("default") and not k["default"]:
                self._clear_defaults(k["networks"], k["tags"])
            k["default"] = bool(body.get("default"))
            return httpx.Response(200, json=self._key_out(k))
        if len(parts) == 4 and method == "DELETE":
            k = self.keys.get(parts[3])
            if k is None:
                return _err(400, "no enrollmentkey found")
            if k["default"]:
                return _err(500, "cannot delete default network key")
            del self.keys[parts[3]]
            return httpx.Response(200)
        return _err(405, "method not allowed")

    # -- hosts / nodes --------------------------------------------------------------------------
    def _hosts(self, method, parts, q, body) -> httpx.Response:
        if len(parts) == 2 and method == "GET":
            return httpx.Response(200, json=list(self.hosts.values()))
        if len(parts) == 3 and method == "DELETE":
            h = self.hosts.pop(parts[2], None)
            if h is None:
                return _err(400, "record not found")
            for nid in h["nodes"]:
                self.nodes.pop(nid, None)
            return httpx.Response(200, json=h)
        return _err(405, "method not allowed")

    def _nodes(self, method, parts, q, body) -> httpx.Response:
        if len(parts) == 3 and method == "GET":
            return httpx.Response(200, json=[n for n in self.nodes.values() if n["network"] == parts[2]])
        if len(parts) == 4 and method == "PUT":
            node = self.nodes.get(parts[3])
            if node is None:
                return _err(400, "error fetching node during parameter validation: record not found")
            if node["network"] != parts[2]:
                return _err(400, "network url param does not match node network")
            addr = body.get("address")
            if addr != node["address"] and any(n["address"] == addr for n in self.nodes.values() if n["network"] == parts[2]):
                return _err(400, f"ip specified is already allocated:  {addr}")
            node.update({k: v for k, v in body.items() if k in ("address", "address6")})
            return httpx.Response(200, json=node)
        if len(parts) == 5 and parts[4] == "gateway":
            return self._gateway(method, parts[2], parts[3], body)
        return _err(405, "method not allowed")

    def _gateway(self, method, network, node_id, body) -> httpx.Response:
        """v1.6.0 controllers/gateway.go: with is_internet_gw the node becomes a gateway
        and its clients relayed internet-gateway clients; DELETE releases them."""
        node = self.nodes.get(node_id)
        if node is None or node["network"] != network:
            return _err(400, "failed to create gateway on node: record not found")
        if method == "POST":
            clients = list(body.get("inet_node_client_ids") or []) if body.get("is_internet_gw") else []
            for cid in clients:
                client = self.nodes.get(cid)
                if client is None:
                    return _err(400, "record not found")
                if client.get("internetgw_node_id") not in ("", None, node_id):
                    return _err(400, "node is already using a internet gateway")
            node.update(is_gw=True, isinternetgateway=bool(body.get("is_internet_gw")), inet_node_req={"inet_node_client_ids": clients})
            for cid in clients:
                self.nodes[cid].update(internetgw_node_id=node_id, relayedby=node_id)
            return httpx.Response(200, json=node)
        if method == "DELETE":
            node.update(is_gw=False, isinternetgateway=False, inet_node_req={"inet_node_client_ids": None})
            for other in self.nodes.values():
                if other.get("internetgw_node_id") == node_id:
                    other.update(internetgw_node_id="", relayedby="")
            return httpx.Response(200, json=node)
        return _err(405, "method not allowed")

    # -- egress --------------------------------------------------------------------------------
    def _egress_validate(self, body) -> httpx.Response | dict[str, Any]:
        net = self.networks.get(body.get("network"))
        if net is None:
            return _err(400, "record not found")
        try:
            rng = str(ipaddress.ip_network(body.get("range", ""), strict=False))
        except ValueError as exc:
            return _err(400, f"invalid CIDR address: {exc}")
        n = ipaddress.ip_network(rng)
        if net["addressrange"] and n.version == 4 and n.subnet_of(ipaddress.ip_network(net["addressrange"])):
            return _err(400, "egress range must not overlap the Netmaker network IPv4 range")
        nodes = body.get("nodes") or {}
        if len(nodes) > 1:
            return _err(400, "can only set one routing node on CE")
        for nid in nodes:
            if nid not in self.nodes:
                return _err(400, "invalid routing node record not found")
        return {"range": rng, "nodes": nodes}

    def _egress(self, method, parts, q, body) -> httpx.Response:
        if method == "GET":
            if not q.get("network"):
                return _err(400, "network is required")
            return _wrapped([e for e in self.egress.values() if e["network"] == q["network"]], "fetched egress resource list")
        if method == "POST":
            v = self._egress_validate(body)
            if isinstance(v, httpx.Response):
                return v
            e = {"id": str(uuid.uuid4()), "name": body.get("name", ""), "network": body["network"],
                 "description": body.get("description", ""), "nodes": v["nodes"], "tags": {}, "range": v["range"],
                 "mode": "direct_nat" if body.get("nat") else "disabled", "nat": bool(body.get("nat")), "status": True}
            self.egress[e["id"]] = e
            return _wrapped(e, "created egress resource")
        if method == "PUT":
            v = self._egress_validate(body)
            if isinstance(v, httpx.Response):
                return v
            e = self.egress.get(body.get("id"))
            if e is None:
                return _err(400, "record not found")
            e.update(name=body.get("name", ""), description=body.get("description", ""), nodes=v["nodes"],
                     range=v["range"], nat=bool(body.get("nat")), status=bool(body.get("status")),
                     mode="direct_nat" if body.get("nat") else "disabled")
            return _wrapped(e, "updated egress resource")
        if method == "DELETE":
            eid = q.get("id")
            if not eid:
                return _err(400, "id is required")
            if eid not in self.egress:
                return _err(400, "record not found")
            del self.egress[eid]
            return _wrapped(None, "deleted egress resource")
        return _err(405, "method not allowed")


def register_host(client, token: str, host: dict) -> dict:
    """``POST /api/v1/host/register/{token}``: what a netclient does on join (no auth;
    the token is the credential), for tests and benches that stand in for one."""
    return client._json(
        "POST", f"/api/v1/host/register/{token}", json=dict(host), auth=False, shown_path="/api/v1/host/register/<token>"
    )

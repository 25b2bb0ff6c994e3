"""A small, synchronous client for the Netmaker REST API (pinned server: v1.6.0).

Every path, JSON field and error text used here was checked in the v1.6.0 source
(``controllers/{network,enrollmentkeys,egress,hosts,node,server}.go``, ``models/``,
``schema/``, ``logic/``) and against a running v1.6.0 server (tests/test_netmaker_live.py).

Response envelopes differ per endpoint (v1.6.0):

=====================================  =======================================================
endpoint                               success body
=====================================  =======================================================
GET/POST/PUT ``/api/networks[/id]``    bare ``schema.Network`` (list for GET /api/networks)
DELETE ``/api/networks/{id}``          ``{"Code":200,"Message":"success","Response":null}``
GET/POST ``/api/v1/enrollment-keys``   bare key object / bare list
DELETE ``/api/v1/enrollment-keys/{v}`` empty body
GET ``/api/hosts``                     bare list of ``models.ApiHost``
GET ``/api/nodes/{net}``               bare list of ``models.ApiNode``
PUT ``/api/nodes/{net}/{id}``          bare ``models.ApiNode``
``/api/v1/egress`` (all methods)       wrapped ``{"Code","Message","Response"}``
GET ``/api/server/status``             bare status object (no auth needed)
=====================================  =======================================================

Errors are always ``{"Code":<http status>,"Message":"<text>","Response":null}``.

Retry policy (``NetmakerClient._send``):

* connect failures (refused, DNS, connect timeout) are retried for every method: the
  request never reached the server;
* read-side failures (read timeout, connection dropped mid-response) are retried only for
  idempotent methods (GET/PUT/DELETE), because a POST may already have been applied;
* 502/503/504 are retried for every method; any other 5xx only for idempotent methods;
* 4xx is never retried.

Retries back off exponentially (``backoff * 2**n``) and the whole call, waits and timeouts
included, is bounded by ``total_timeout`` (default 28 s), so a dead server produces a clear
:class:`Unavailable` within 30 s.

The master key is only ever placed in the ``Authorization`` header. It is not stored in any
public attribute, not part of ``repr()``, and never part of an exception message.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# Path segments that are credentials: an enrollment key's value, a join token.
_SECRET_IN_PATH = re.compile(r"(/enrollment-keys/|/host/register/)[^/\s\"?]+")


class _RedactCredentials(logging.Filter):
    """httpx logs every request URL at INFO; a host process that turns that on must
    never see a credential, so URLs logged by httpx have them replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(_SECRET_IN_PATH.sub(r"\1<redacted>", str(a)) if isinstance(a, (str, httpx.URL)) else a
                                for a in (record.args if isinstance(record.args, tuple) else (record.args,)))
        record.msg = _SECRET_IN_PATH.sub(r"\1<redacted>", str(record.msg))
        return True


for _logger in ("httpx", "httpcore"):
    logging.getLogger(_logger).addFilter(_RedactCredentials())

__all__ = [
    "NetmakerError",
    "Unauthorized",
    "NotFound",
    "BadRequest",
    "ServerError",
    "Unavailable",
    "NetmakerClient",
]

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
GATEWAY_STATUSES = frozenset({502, 503, 504})

# Messages the v1.6.0 server returns for "this object does not exist" on endpoints that
# answer 400 instead of 404 (controllers/enrollmentkeys.go deleteEnrollmentKey,
# controllers/egress.go updateEgress/deleteEgress, gorm's ErrRecordNotFound).
KEY_NOT_FOUND = "no enrollmentkey found"
RECORD_NOT_FOUND = "record not found"


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
class NetmakerError(Exception):
    """A failed Netmaker API call.

    ``call`` names the request ("POST /api/networks"), ``status`` is the HTTP status
    (``None`` when no response arrived) and ``server_message`` is Netmaker's ``Message``.
    """

    def __init__(
        self,
        call: str,
        message: str,
        *,
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        self.call = call
        self.status = status
        self.server_message = server_message
        self.message = message
        super().__init__(f"{call}: {message}")


class Unauthorized(NetmakerError):
    """401/403: the master key (or override) is wrong or lacks the right."""


class NotFound(NetmakerError):
    """404, or a 400 whose message says the object does not exist."""


class BadRequest(NetmakerError):
    """Any other 4xx: Netmaker rejected the request; ``server_message`` says why."""


class AddressInUse(BadRequest):
    """A node's address cannot be set: another node holds it."""


class ServerError(NetmakerError):
    """A 5xx that was not retried or kept failing (Netmaker answers 500 for some
    deterministic validation errors, e.g. an enrollment key with no uses/expiry/unlimited)."""


class Unavailable(NetmakerError):
    """No usable answer: connection refused, timeouts, or 5xx after all retries."""


def _is_not_found_message(msg: str | None) -> bool:
    # exact texts only: "invalid routing node record not found" is a bad request about a
    # referenced node, not "the object addressed by this call does not exist"
    m = (msg or "").strip().lower()
    return m == KEY_NOT_FOUND or m == RECORD_NOT_FOUND


# --------------------------------------------------------------------------------------
# enrollment keys: lifetime as the server sees it
# --------------------------------------------------------------------------------------
ZERO_TIME = "0001-01-01T00:00:00Z"
MEMBER_KEY_SECONDS = 600
"""How long a member's one-use key may wait for its join (made seconds before it); an
unused key past that is replaced by the next `up` and reported by `verify`."""
EXPIRY_TAG = re.compile(r"^until-(\d+)-[0-9a-f]{6}$")
"""A tag that carries a Uses key's expiry: Netmaker v1.6.0 stores no expiry with a key that
has uses (the key type is uses, else expiry, else unlimited), so the provider that made it
puts it there for itself and for `verify`."""


def parse_time(value: Any) -> int | None:
    """Unix seconds from an int/float or an RFC 3339 string; None for unset/zero time."""
    if value is None or value == "" or value == ZERO_TIME:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return int(value) if value > 0 else None
    text = str(value).strip()
    if text.startswith("0001-01-01"):
        return None
    text = re.sub(r"(\.\d+)", "", text).replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def expiry_tag(name: str, expires: int) -> str:
    """The expiry tag of the key named `name` (tags are unique server-wide: the digest
    keeps two keys made in the same second apart)."""
    return f"until-{int(expires)}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def key_expires_at(key: Mapping[str, Any]) -> int | None:
    """When a key stops being usable: its server-side expiration, else its expiry tag."""
    expires = parse_time(key.get("expiration"))
    if expires is not None:
        return expires
    found = [int(m.group(1)) for m in map(EXPIRY_TAG.match, key.get("tags") or []) if m]
    return min(found) if found else None


def key_usable(key: Mapping[str, Any], now: float) -> bool:
    """models.EnrollmentKey.IsValid (v1.6.0): uses left, or an expiration still ahead, or
    unlimited (a key of undefined type never)."""
    if (key.get("uses_remaining") or 0) > 0:
        return True
    expires = parse_time(key.get("expiration"))
    if expires is not None and now < expires:
        return True
    return bool(key.get("type")) and bool(key.get("unlimited"))


def _ssl_context(ca_pem: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca_pem)
    return ctx


# --------------------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------------------
class NetmakerClient:
    """Synchronous Netmaker API client.

    :param base_url: e.g. ``http://127.0.0.1:8081`` or ``https://nm.lab``.
    :param master_key: the server's ``MASTER_KEY`` (sent as ``Authorization: Bearer``).
    :param ca_pem: PEM text of a CA to verify the server's certificate against (HTTPS).
    :param timeout: per-attempt read/write timeout in seconds.
    :param retries: extra attempts after the first (so ``retries=4`` means up to 5 tries).
    :param backoff: first back-off delay; doubles on each retry.
    :param connect_timeout: per-attempt TCP/TLS connect timeout.
    :param total_timeout: wall-clock bound for one call, retries and waits included.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        master_key: str,
        ca_pem: str | None = None,
        timeout: float = 20.0,
        retries: int = 4,
        backoff: float = 0.5,
        *,
        connect_timeout: float = 5.0,
        total_timeout: float = 28.0,
        transport: httpx.BaseTransport | None = None,
        sleep=time.sleep,
        clock=time.monotonic,
    ) -> None:
        if not base_url:
            raise ValueError("NetmakerClient: base_url is empty")
        if retries < 0 or backoff < 0 or timeout <= 0 or total_timeout <= 0:
            raise ValueError("NetmakerClient: retries/backoff must be >= 0, timeouts > 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.total_timeout = float(total_timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._sleep = sleep
        self._clock = clock
        self._auth = {"Authorization": f"Bearer {master_key}"} if master_key else {}
        self._server_date: tuple[float, float] | None = None  # (server's Date, self._clock() then)
        verify: Any
        if ca_pem:
            verify = _ssl_context(ca_pem)
        elif self.base_url.startswith("http://"):
            # plain HTTP never does TLS: skip building a CA-bundle context (~25 ms per client)
            verify = False
        else:
            verify = True
        self._http = httpx.Client(
            base_url=self.base_url,
            verify=verify,
            transport=transport,
            timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "bgp4mesh-netmaker-client"},
            follow_redirects=False,
        )

    # -- lifecycle ----------------------------------------------------------------------
    def __repr__(self) -> str:  # never the key
        return f"NetmakerClient(base_url={self.base_url!r})"

    __str__ = __repr__

    def __getstate__(self):  # refuse to be pickled (a client must never land in state)
        raise TypeError("NetmakerClient must not be pickled/serialized")

    def __enter__(self) -> "NetmakerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- core -----------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        shown_path: str | None = None,
    ) -> httpx.Response:
        call = f"{method} {shown_path or path}"
        if params:
            call += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        start = self._clock()
        deadline = start + self.total_timeout
        tries = 0
        last: str = ""
        while (remaining := deadline - self._clock()) > 0:
            tries += 1
            resp, last, retryable = self._attempt(method, path, call, remaining, json=json, params=params, auth=auth)
            if resp is not None:
                return resp
            if not retryable:
                raise Unavailable(call, last + " (not retried: the request may have been applied)")
            delay = self.backoff * (2 ** (tries - 1))
            if tries > self.retries or self._clock() + delay >= deadline:
                break
            self._sleep(delay)
        elapsed = self._clock() - start
        raise Unavailable(
            call,
            f"{last or 'no attempt possible'}; gave up after {tries} attempt(s) in {elapsed:.1f}s",
        )

    def _attempt(
        self, method: str, path: str, call: str, remaining: float, *, json: Any, params: Mapping[str, Any] | None, auth: bool
    ) -> tuple[httpx.Response | None, str, bool]:
        """One request within `remaining` seconds: (the response, "", False), or (None, why,
        whether another try is safe). A refusal (4xx, or a 5xx a non-idempotent call may
        have caused) raises."""
        timeout = httpx.Timeout(min(self.timeout, remaining), connect=min(self.connect_timeout, remaining))
        headers = dict(self._auth) if auth else {}
        try:
            resp = self._http.request(method, path, json=json, params=params, headers=headers, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return None, f"cannot connect to {self.base_url} ({type(exc).__name__}: {exc})", True
        except httpx.TimeoutException as exc:
            return None, f"no answer from {self.base_url} within {min(self.timeout, remaining):.1f}s ({type(exc).__name__})", method in IDEMPOTENT
        except httpx.TransportError as exc:
            return None, f"connection to {self.base_url} failed ({type(exc).__name__}: {exc})", method in IDEMPOTENT
        self._note_server_date(resp)
        if resp.status_code < 400:
            return resp, "", False
        err = self._error_for(call, resp)
        if resp.status_code >= 500 and (resp.status_code in GATEWAY_STATUSES or method in IDEMPOTENT):
            return None, err.message, True
        raise err

    @staticmethod
    def _error_for(call: str, resp: httpx.Response) -> NetmakerError:
        status = resp.status_code
        server_msg: str | None = None
        try:
            body = resp.json()
            if isinstance(body, dict):
                server_msg = body.get("Message") or body.get("message")
        except ValueError:
            body = None
        if server_msg is None:
            text = resp.text.strip()
            server_msg = text[:300] if text else resp.reason_phrase
        msg = f"HTTP {status}: {server_msg}"
        kw = dict(status=status, server_message=server_msg)
        if status in (401, 403):
            return Unauthorized(call, msg + " (check the Netmaker master key)", **kw)
        if status == 404 or (status == 400 and _is_not_found_message(server_msg)):
            return NotFound(call, msg, **kw)
        if 400 <= status < 500:
            return BadRequest(call, msg, **kw)
        return ServerError(call, msg, **kw)

    def _json(self, method: str, path: str, *, wrapped: bool = False, **kw) -> Any:
        resp = self._send(method, path, **kw)
        if not resp.content or not resp.content.strip():
            return None
        try:
            body = resp.json()
        except ValueError as exc:
            raise NetmakerError(
                f"{method} {kw.get('shown_path') or path}",
                f"HTTP {resp.status_code}: response is not JSON ({exc})",
                status=resp.status_code,
            ) from None
        if wrapped:
            if not isinstance(body, dict) or "Response" not in body:
                raise NetmakerError(
                    f"{method} {path}",
                    f"HTTP {resp.status_code}: expected a {{Code,Message,Response}} envelope",
                    status=resp.status_code,
                )
            return body["Response"]
        return body

    # -- server ---------------------------------------------------------------------------
    def server_status(self) -> dict[str, Any]:
        """``GET /api/server/status`` (no auth): db_connected, broker_connected, version, ..."""
        return self._json("GET", "/api/server/status", auth=False)

    def server_now(self) -> int:
        """The server's clock, from the Date header Go puts on every answer (the last one
        this client got, plus the time since), so that expiries the server checks are set
        and read against its clock, not this machine's; the local clock before any answer."""
        if self._server_date is None:
            return int(time.time())
        date, at = self._server_date
        return int(date + self._clock() - at)

    def _note_server_date(self, resp: httpx.Response) -> None:
        try:
            self._server_date = (parsedate_to_datetime(resp.headers["date"]).timestamp(), self._clock())
        except (KeyError, TypeError, ValueError):
            pass

    def server_settings(self) -> dict[str, Any]:
        """``GET /api/server/settings`` (wrapped): telemetry, basic_auth, ..."""
        return self._json("GET", "/api/server/settings", wrapped=True)

    def list_users(self) -> list[dict[str, Any]]:
        """``GET /api/users`` -> bare list of ``models.ReturnUser`` (username, issuperadmin, ...)."""
        return self._json("GET", "/api/users") or []

    def health(self) -> bool:
        """``GET /api/server/health`` (plain text, no auth)."""
        return self._send("GET", "/api/server/health", auth=False).status_code == 200

    # -- networks -------------------------------------------------------------------------
    def list_networks(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/networks") or []

    def get_network(self, netid: str) -> dict[str, Any]:
        """Bare ``schema.Network``; :class:`NotFound` (404 "record not found") if absent."""
        return self._json("GET", f"/api/networks/{netid}")

    def find_network(self, netid: str) -> dict[str, Any] | None:
        try:
            return self.get_network(netid)
        except NotFound:
            return None

    def create_network(
        self, netid: str, address_range: str | None = None, address_range6: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """``POST /api/networks`` -> 200 + bare network. Sends only what is given."""
        body: dict[str, Any] = {"netid": netid}
        if address_range:
            body["addressrange"] = address_range
        if address_range6:
            body["addressrange6"] = address_range6
        body.update(extra)
        return self._json("POST", "/api/networks", json=body)

    def update_network(self, netid: str, **changes: Any) -> dict[str, Any]:
        """``PUT /api/networks/{netid}`` with the current object merged with ``changes``.

        v1.6.0 only applies auto_join (device approval builds), auto_remove,
        auto_remove_threshold, auto_remove_tags and the virtual-NAT fields; netid and the
        ranges are immutable (the lookup uses ``netid`` from the body).
        """
        body = dict(self.get_network(netid))
        body.update(changes)
        body["netid"] = netid
        return self._json("PUT", f"/api/networks/{netid}", json=body)

    def delete_network(self, netid: str, force: bool = False) -> None:
        """``DELETE /api/networks/{netid}``; 200 even when it does not exist."""
        params = {"force": "true"} if force else None
        self._json("DELETE", f"/api/networks/{netid}", params=params)

    # -- enrollment keys --------------------------------------------------------------------
    def list_enrollment_keys(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/enrollment-keys") or []

    def create_enrollment_key(
        self,
        tags: Iterable[str],
        networks: Iterable[str] = (),
        *,
        uses: int = 0,
        expiration: int = 0,
        unlimited: bool = False,
        groups: Iterable[str] | None = None,
        relay: str | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v1/enrollment-keys`` -> bare ``models.EnrollmentKey`` with ``token``.

        ``expiration`` is unix seconds. The server derives the type: uses>0 -> 2 (Uses),
        else expiration>0 -> 1 (TimeExpiration), else unlimited -> 3 (Unlimited), else 500.
        """
        body: dict[str, Any] = {
            "tags": list(tags),
            "networks": list(networks),
            "uses_remaining": int(uses or 0),
            "expiration": int(expiration or 0),
            "unlimited": bool(unlimited),
        }
        if groups:
            body["groups"] = list(groups)
        if relay:
            body["relay"] = relay
        return self._json("POST", "/api/v1/enrollment-keys", json=body)

    def delete_enrollment_key(self, value: str) -> None:
        """``DELETE /api/v1/enrollment-keys/{value}``; :class:`NotFound` if it does not exist
        (the server answers 400 "no enrollmentkey found")."""
        self._json("DELETE", f"/api/v1/enrollment-keys/{value}", shown_path="/api/v1/enrollment-keys/<value>")

    def undefault_enrollment_key(self, key: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/v1/enrollment-keys/{value}`` with ``default: false``: the server refuses
        to delete a default key ("cannot delete default network key"). PUT also sets relay,
        groups and auto_assign_gw, so they are sent as the key has them."""
        body = {"default": False, "groups": key.get("groups"), "auto_assign_gw": bool(key.get("auto_assign_gw"))}
        relay = key.get("relay")
        if relay and relay != "00000000-0000-0000-0000-000000000000":
            body["relay"] = relay
        return self._json(
            "PUT", f"/api/v1/enrollment-keys/{key['value']}", json=body, shown_path="/api/v1/enrollment-keys/<value>"
        )

    def find_enrollment_key(self, value: str) -> dict[str, Any] | None:
        for k in self.list_enrollment_keys():
            if k.get("value") == value:
                return k
        return None

    def find_enrollment_key_by_tag(self, tag: str) -> dict[str, Any] | None:
        """Tags are unique across keys on the server, so at most one key matches."""
        for k in self.list_enrollment_keys():
            if tag in (k.get("tags") or []):
                return k
        return None

    # -- hosts and nodes --------------------------------------------------------------------
    def list_hosts(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/hosts") or []

    def find_hosts_by_name(self, name: str) -> list[dict[str, Any]]:
        return [h for h in self.list_hosts() if h.get("name") == name]

    def find_host_by_name(self, name: str) -> dict[str, Any] | None:
        """The host called ``name``; ``ValueError`` if several hosts share it (Netmaker does
        not enforce unique host names)."""
        hosts = self.find_hosts_by_name(name)
        if len(hosts) > 1:
            ids = ", ".join(h.get("id", "?") for h in hosts)
            raise ValueError(f"{len(hosts)} Netmaker hosts are named '{name}' ({ids}); names must be unique")
        return hosts[0] if hosts else None

    def delete_host(self, host_id: str, force: bool = True) -> None:
        params = {"force": "true"} if force else None
        self._json("DELETE", f"/api/hosts/{host_id}", params=params)

    def list_nodes(self, netid: str) -> list[dict[str, Any]]:
        """``GET /api/nodes/{netid}`` -> bare list of ApiNode (``[]`` for an unknown net)."""
        return self._json("GET", f"/api/nodes/{netid}") or []

    def get_node(self, netid: str, node_id: str) -> dict[str, Any]:
        """The ApiNode ``node_id`` of ``netid``.

        Read from the network's node list: v1.6.0's ``GET /api/nodes/{net}/{id}`` answers a
        ``models.NodeGet`` (internal ``Node`` + host + peers + server config) whose shape
        ``PUT`` does not accept."""
        for n in self.list_nodes(netid):
            if n.get("id") == node_id:
                return n
        raise NotFound(f"GET /api/nodes/{netid}", f"node {node_id} is not in network '{netid}'")

    def find_node_for_host(self, netid: str, host_name: str) -> dict[str, Any] | None:
        """The node that host ``host_name`` has in ``netid`` (hosts list -> nodes list)."""
        host = self.find_host_by_name(host_name)
        if host is None:
            return None
        for n in self.list_nodes(netid):
            if n.get("hostid") == host.get("id") and not n.get("is_static"):
                return n
        return None

    def set_node_address(self, netid: str, node_id: str, address: str) -> dict[str, Any]:
        """Pin a node's IPv4 mesh address (``"10.10.0.50"`` or ``"10.10.0.50/24"``).

        Checked here first, because v1.6.0 does not: its uniqueness check
        (``orchestrator.isIPv4UniqueInDB``) runs ``net.ParseIP`` on the CIDR-form address the
        PUT requires, gets nil and lets a duplicate through. A taken address or one outside
        the network's range -> :class:`BadRequest`.
        """
        call = f"PUT /api/nodes/{netid}/{node_id}"
        nodes = self.list_nodes(netid)
        node = next((n for n in nodes if n.get("id") == node_id), None)
        if node is None:
            raise NotFound(call, f"node {node_id} is not in network '{netid}'")
        try:
            iface = ipaddress.ip_interface(address)
        except ValueError as exc:
            raise BadRequest(call, f"invalid address '{address}': {exc}") from None
        rng = node.get("networkrange")
        if rng:
            net = ipaddress.ip_network(rng)
            if iface.ip not in net or iface.ip in (net.network_address, net.broadcast_address):
                raise BadRequest(call, f"address {iface.ip} is not a host address of network '{netid}' ({rng})")
            address = f"{iface.ip}/{net.prefixlen}"
        for other in nodes:
            addr = other.get("address")
            if other.get("id") != node_id and addr and ipaddress.ip_interface(addr).ip == iface.ip:
                raise AddressInUse(
                    call, f"ip specified is already allocated: {iface.ip} is used by node {other.get('id')} "
                    f"(host {other.get('hostid')})",
                )
        body = dict(node)
        body["address"] = address
        return self._json("PUT", f"/api/nodes/{netid}/{node_id}", json=body)

    # -- egress (/api/v1/egress, wrapped responses) ------------------------------------------
    def create_internet_gateway(self, netid: str, node_id: str, client_ids: list[str]) -> dict[str, Any]:
        """``POST /api/nodes/{net}/{id}/gateway`` with ``is_internet_gw``: v1.6.0 makes the node a
        gateway and its clients relayed IGW clients (each one's default route goes through it).
        The older ``/inet_gw`` endpoint answers 200 but leaves no gateway in v1.6.0: a node
        is an internet gateway only while it is a gateway."""
        body = {"is_internet_gw": True, "inet_node_client_ids": client_ids, "relayaddrs": []}
        return self._json("POST", f"/api/nodes/{netid}/{node_id}/gateway", json=body)

    def delete_gateway(self, netid: str, node_id: str) -> None:
        """``DELETE /api/nodes/{net}/{id}/gateway``: no longer a gateway; its clients are released."""
        self._json("DELETE", f"/api/nodes/{netid}/{node_id}/gateway")

    def list_egress(self, netid: str) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/egress", params={"network": netid}, wrapped=True) or []

    def get_egress(self, netid: str, egress_id: str) -> dict[str, Any] | None:
        for e in self.list_egress(netid):
            if e.get("id") == egress_id:
                return e
        return None

    @staticmethod
    def _egress_body(
        network: str, name: str, range_: str, nat: bool, nodes: Mapping[str, int],
        description: str, status: bool,
    ) -> dict[str, Any]:
        return {
            "name": name,
            "network": network,
            "description": description,
            "range": range_,
            "nat": bool(nat),
            "nodes": {k: int(v) for k, v in nodes.items()},
            "status": bool(status),
        }

    def create_egress(
        self, network: str, name: str, range_: str, *, nat: bool, nodes: Mapping[str, int],
        description: str = "",
    ) -> dict[str, Any]:
        """``POST /api/v1/egress`` -> wrapped ``schema.Egress``. One CIDR per object."""
        body = self._egress_body(network, name, range_, nat, nodes, description, True)
        return self._json("POST", "/api/v1/egress", json=body, wrapped=True)

    def update_egress(
        self, egress_id: str, network: str, name: str, range_: str, *, nat: bool,
        nodes: Mapping[str, int], description: str = "", status: bool = True,
    ) -> dict[str, Any]:
        """``PUT /api/v1/egress`` (full replacement; ``status`` false would disable it).
        The egress's ``network`` cannot change (it only selects the network to validate)."""
        body = self._egress_body(network, name, range_, nat, nodes, description, status)
        body["id"] = egress_id
        return self._json("PUT", "/api/v1/egress", json=body, wrapped=True)

    def delete_egress(self, egress_id: str) -> None:
        """``DELETE /api/v1/egress?id=``; :class:`NotFound` (400 "record not found") if absent."""
        self._json("DELETE", "/api/v1/egress", params={"id": egress_id}, wrapped=True)

"""EnrollmentKey: a Netmaker enrollment key (``/api/v1/enrollment-keys``).

Netmaker v1.6.0 has no GET for a single key and cannot change a key's networks, tags, uses,
expiry or unlimited flag (PUT only touches relay/groups/auto_assign_gw/default), so every
attribute change replaces the key (delete first: tags must be unique server-wide).

Resource ID = the key's first tag (tags are unique across keys on the server). The key's
``value`` is a credential (a token is just base64 ``{"server","value"}``), so it is not the
ID; ``value`` and ``token`` are secret outputs.

Exactly one of ``uses`` (> 0), ``expires_at`` (unix seconds or ISO-8601),
``valid_for_seconds`` and ``unlimited=True`` must be set: the server picks one of them by
itself (uses wins, then expiry, then unlimited) and answers 500 when none is set.
``valid_for_seconds`` makes a key that expires that long after it is created and is
replaced by the first diff that finds less than half of that left (or the key gone).

**A member's key** (``for_host``: the Netmaker host it is for) allows ``uses=1`` and may
also have ``valid_for_seconds``. The server stores no expiry with a key that has uses, so
the provider writes it into an extra tag (``until-<unix>-<digest>``, hidden from ``tags``)
and holds to it itself. Its diff:

* the host has joined every network of the key, and the key is spent or gone: consumed, no
  change (a member keeps its identity and never needs a key again);
* the host has joined but the key is still usable: a credential nobody needs, replaced;
* otherwise a key that is gone, spent (by someone else) or unused past its expiry is replaced
  with a fresh one (and the member's join runs again with it).

Creating the key for a host that has already joined makes none on the server and reports
an empty token (stacks made before member keys existed: the join finds the member joined
and reads no token).

If the server deletes the key behind our back (deleting a network deletes every key whose
only network it was), the next diff sees it gone and replaces it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pulumi.dynamic import CheckFailure

from bgp4mesh.netmaker_api import (
    EXPIRY_TAG,
    NetmakerClient,
    NetmakerError,
    expiry_tag,
    key_expires_at,
    key_usable,
    parse_time,
)
from bgp4mesh.providers.base import NetmakerProvider, NetmakerResource, as_int, is_unknown, known
from bgp4mesh.providers.fields import INPUT, OUTPUT, SECRET, Field, Fields

PROVIDER_VERSION = "3"
KIND = "netmaker-enrollment-key"
LIFETIMES = ("uses", "expires_at", "valid_for_seconds", "unlimited")
MEMBER_LIFETIME = ["uses", "valid_for_seconds"]
"""The one pair of lifetimes allowed together: a member's key, used once or expired."""
FIELDS = Fields(  # Netmaker cannot change a key: every input replaces it
    Field("networks", INPUT, replaces=True),
    Field("tags", INPUT, replaces=True, doc="the first names the key"),
    Field("uses", INPUT, replaces=True, default=None),
    Field("expires_at", INPUT, replaces=True, default=None, doc="unix seconds or ISO-8601"),
    Field("valid_for_seconds", INPUT, replaces=True, default=None, doc=(
        "expire this long after creation; renewed by the first diff past half of it (a member's key, "
        "with uses and for_host: replaced when unused past it)")),
    Field("unlimited", INPUT, replaces=True, default=False),
    Field("for_host", INPUT, replaces=True, default=None, doc=(
        "the Netmaker host (netclient name) this key is for: once it has joined, the key is consumed "
        "and never replaced (see the module docstring); needs uses=1")),
    Field("token", SECRET, drift=True, doc="what `netclient join -t` takes"),
    Field("value", SECRET, doc="the key id, also a credential"),
    Field("key_type", OUTPUT),
    Field("uses_remaining", OUTPUT),
    Field("expiration", OUTPUT),
)


class EnrollmentKeyProvider(NetmakerProvider):
    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[Fields] = FIELDS
    GONE_FIELD: ClassVar[str] = "tags"

    def validate(self, news: dict[str, Any]) -> list[CheckFailure]:
        return self._check_tags(news) + self._check_networks(news) + self._check_lifetime(news)

    @staticmethod
    def _check_tags(news: dict[str, Any]) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        tags = news.get("tags")
        if tags is None or (isinstance(tags, list) and not tags):
            failures.append(CheckFailure("tags", "at least one tag is required (the first names the key)"))
        elif isinstance(tags, list):
            seen: list[Any] = []
            for t in tags:
                if is_unknown(t):
                    seen.append(t)
                    continue
                t = str(t)
                if not 3 <= len(t) <= 32:
                    failures.append(CheckFailure("tags", f"tag '{t}': Netmaker needs 3-32 characters"))
                if EXPIRY_TAG.match(t):
                    failures.append(CheckFailure("tags", f"tag '{t}': the form until-<unix>-<digest> carries a key's expiry"))
                if t not in seen:
                    seen.append(t)
            news["tags"] = seen
        elif known(tags):
            failures.append(CheckFailure("tags", "must be a list of strings"))
        return failures

    @staticmethod
    def _check_networks(news: dict[str, Any]) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        tags, networks = news.get("tags"), news.get("networks")
        if networks is None:
            news["networks"] = networks = []
        if isinstance(networks, list):
            if not is_unknown(networks):
                news["networks"] = networks = sorted({str(n) for n in networks})
                if not networks:
                    failures.append(CheckFailure("networks", "at least one network is required"))
            if known(tags) and known(networks) and isinstance(tags, list):
                clash = set(news["tags"]) & set(networks)
                if clash:
                    failures.append(CheckFailure(
                        "tags",
                        f"tag(s) {sorted(clash)} equal a network name: the network keeps that tag on a "
                        "tombstone key (see NetmakerNetwork) and Netmaker requires unique tags",
                    ))
        elif known(networks):
            failures.append(CheckFailure("networks", "must be a list of network names"))
        return failures

    @staticmethod
    def _check_lifetime(news: dict[str, Any]) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        uses, exp, unlimited, valid_for = (news.get(n) for n in ("uses", "expires_at", "unlimited", "valid_for_seconds"))
        if known(valid_for):
            v = as_int(valid_for)
            if v is None or v < 60:
                failures.append(CheckFailure("valid_for_seconds", f"must be a whole number of seconds >= 60, got {valid_for!r}"))
            news["valid_for_seconds"] = v or None
        if known(uses):
            u = as_int(uses)
            if u is None or u < 0:
                failures.append(CheckFailure("uses", f"must be a positive integer, got {uses!r}"))
            news["uses"] = u or None
        if known(exp):
            try:
                news["expires_at"] = parse_time(exp)
            except (ValueError, TypeError) as e:
                failures.append(CheckFailure("expires_at", f"unix seconds or ISO-8601 time expected: {e}"))
        if known(unlimited) and not isinstance(unlimited, bool):
            failures.append(CheckFailure("unlimited", "must be a boolean"))
        if any(is_unknown(news.get(n)) for n in (*LIFETIMES, "for_host")):
            return failures
        chosen = [n for n in LIFETIMES if news.get(n)]
        if len(chosen) != 1 and chosen != MEMBER_LIFETIME:
            failures.append(CheckFailure(
                "uses",
                "set exactly one of uses (>0), expires_at, valid_for_seconds, unlimited=True, or uses with "
                "valid_for_seconds" + (f" (got {', '.join(chosen)})" if chosen else " (got none)"),
            ))
        if news.get("for_host") and news.get("uses") != 1:
            failures.append(CheckFailure("for_host", "a key for one host allows one use: set uses=1"))
        if chosen == MEMBER_LIFETIME and not news.get("for_host"):
            failures.append(CheckFailure("for_host", "uses with valid_for_seconds is a member's key: name its host"))
        return failures

    @staticmethod
    def _live(key: dict[str, Any]) -> dict[str, Any]:
        return {
            "networks": sorted(key.get("networks") or []),
            "tags": [t for t in key.get("tags") or [] if not EXPIRY_TAG.match(t)],
            "expires_at": key_expires_at(key),
            "unlimited": bool(key.get("unlimited")),
            "value": key.get("value"),
            "token": key.get("token"),
            "key_type": key.get("type"),
            "uses_remaining": key.get("uses_remaining"),
            "expiration": key.get("expiration"),
        }

    def create_object(self, client: NetmakerClient, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        tags, networks = list(props["tags"]), list(props.get("networks") or [])
        missing = [n for n in networks if client.find_network(n) is None]
        if missing:
            raise NetmakerError(
                "POST /api/v1/enrollment-keys",
                f"enrollment key '{tags[0]}': network(s) {missing} do not exist in Netmaker",
            )
        if props.get("for_host") and self._joined(client, props):
            return tags[0], {"token": "", "value": None, "key_type": None, "uses_remaining": 0, "expiration": None}
        now, exp = client.server_now(), props.get("expires_at")
        if props.get("valid_for_seconds"):
            exp = now + int(props["valid_for_seconds"])
        elif exp and exp <= now:
            raise ValueError(f"enrollment key '{tags[0]}': expires_at {exp} is in the past")
        uses = int(props.get("uses") or 0)
        key = client.create_enrollment_key(
            tags + ([expiry_tag(tags[0], exp)] if uses and exp else []), networks,
            uses=uses,
            expiration=0 if uses else int(exp or 0),
            unlimited=bool(props.get("unlimited")),
        )
        live = self._live(key)
        return tags[0], {k: v for k, v in live.items() if k not in self.FIELDS.inputs}

    @staticmethod
    def _joined(client: NetmakerClient, props: dict[str, Any]) -> bool:
        """Whether the key's host has a node in every network of the key."""
        return all(client.find_node_for_host(n, props["for_host"]) for n in props.get("networks") or [])

    def read_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        value = props.get("value")
        keys = client.list_enrollment_keys()
        if known(value):
            match = [k for k in keys if k.get("value") == value]
        else:  # no value in state (e.g. import, a member's consumed key): fall back to the tag
            match = [k for k in keys if id_ in (k.get("tags") or [])]
        if props.get("for_host") and known(props["for_host"]):
            return self._read_member_key(client, match[0] if match else None, props)
        if not match:
            return None
        live = self._live(match[0])
        valid_for = props.get("valid_for_seconds")
        if valid_for and known(valid_for):
            left = (live["expires_at"] or 0) - client.server_now()
            if left < int(valid_for) / 2:
                return None  # as good as gone: the diff replaces it with a fresh key
            live["expires_at"] = props.get("expires_at")  # computed at create, not an input
            live["valid_for_seconds"] = valid_for
        return live

    def _read_member_key(self, client: NetmakerClient, key: dict[str, Any] | None, props: dict[str, Any]) -> dict[str, Any] | None:
        """A member's key: consumed (the state as it is), or None (replace it)."""
        now = client.server_now()
        usable = key is not None and key_usable(key, now)
        if self._joined(client, props):
            # consumed: the state as it is; a usable key is a credential no one needs
            return None if usable else {f: props.get(f) for f in (*self.FIELDS.inputs, *self.FIELDS.outputs)}
        if not usable or now >= (key_expires_at(key) or now + 1):
            return None  # gone, spent (not by its host) or unused past its expiry
        return {**self._live(key), "expires_at": props.get("expires_at"), "valid_for_seconds": props.get("valid_for_seconds")}

    def delete_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> None:
        value = props.get("value")
        if not known(value):
            key = client.find_enrollment_key_by_tag(id_)
            if key is None:
                return
            value = key["value"]
        client.delete_enrollment_key(value)  # NotFound ("no enrollmentkey found") = done


EnrollmentKeyArgs = FIELDS.args_class("EnrollmentKeyArgs", PROVIDER_VERSION, __name__)


class EnrollmentKey(NetmakerResource, module="bgp4mesh", name="EnrollmentKey"):
    """A Netmaker enrollment key; its inputs and outputs are ``FIELDS`` above, with ``kind``
    (the SECRET ones and ``connection`` are kept encrypted in the state)."""

    PROVIDER = EnrollmentKeyProvider

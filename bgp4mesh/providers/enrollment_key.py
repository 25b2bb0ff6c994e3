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

If the server deletes the key behind our back (deleting a network deletes every key whose
only network it was), the next diff sees it gone and replaces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure

from bgp4mesh.netmaker_api import NetmakerClient, NetmakerError
from bgp4mesh.providers.base import (
    NetmakerConnection,
    NetmakerProvider,
    as_int,
    connection_input,
    is_unknown,
    known,
    merge_opts,
)

PROVIDER_VERSION = "2"
KIND = "netmaker-enrollment-key"
ZERO_TIME = "0001-01-01T00:00:00Z"


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


class EnrollmentKeyProvider(NetmakerProvider):
    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[tuple[str, ...]] = ("networks", "tags", "uses", "expires_at", "valid_for_seconds", "unlimited")
    REPLACE_ON: ClassVar[tuple[str, ...]] = FIELDS
    COMPUTED_DRIFT: ClassVar[tuple[str, ...]] = ("token",)
    GONE_FIELD: ClassVar[str] = "tags"
    DEFAULTS: ClassVar[dict[str, Any]] = {"unlimited": False}

    def validate(self, news: dict[str, Any]) -> list[CheckFailure]:
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
                if t not in seen:
                    seen.append(t)
            news["tags"] = seen
        elif known(tags):
            failures.append(CheckFailure("tags", "must be a list of strings"))

        networks = news.get("networks")
        if networks is None:
            news["networks"] = networks = []
        if isinstance(networks, list):
            if not is_unknown(networks):
                news["networks"] = networks = sorted({str(n) for n in networks})
                if not networks:
                    failures.append(CheckFailure("networks", "at least one network is required"))
            if known(tags) and known(networks):
                clash = set(news["tags"]) & set(networks)
                if clash:
                    failures.append(CheckFailure(
                        "tags",
                        f"tag(s) {sorted(clash)} equal a network name: every network's default key already "
                        "carries its name as a tag and Netmaker requires unique tags",
                    ))
        elif known(networks):
            failures.append(CheckFailure("networks", "must be a list of network names"))

        uses, exp, unlimited = news.get("uses"), news.get("expires_at"), news.get("unlimited")
        valid_for = news.get("valid_for_seconds")
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
        if not any(is_unknown(v) for v in (uses, exp, valid_for, unlimited)):
            chosen = [n for n in ("uses", "expires_at", "valid_for_seconds", "unlimited") if news.get(n)]
            if len(chosen) != 1:
                failures.append(CheckFailure(
                    "uses",
                    "set exactly one of uses (>0), expires_at, valid_for_seconds, unlimited=True"
                    + (f" (got {', '.join(chosen)})" if chosen else " (got none)"),
                ))
        return failures

    @staticmethod
    def _live(key: dict[str, Any]) -> dict[str, Any]:
        return {
            "networks": sorted(key.get("networks") or []),
            "tags": list(key.get("tags") or []),
            "expires_at": parse_time(key.get("expiration")),
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
        exp = props.get("expires_at")
        if props.get("valid_for_seconds"):
            exp = int(datetime.now(timezone.utc).timestamp()) + int(props["valid_for_seconds"])
        elif exp and exp <= datetime.now(timezone.utc).timestamp():
            raise ValueError(f"enrollment key '{tags[0]}': expires_at {exp} is in the past")
        key = client.create_enrollment_key(
            tags, networks,
            uses=int(props.get("uses") or 0),
            expiration=int(exp or 0),
            unlimited=bool(props.get("unlimited")),
        )
        live = self._live(key)
        return tags[0], {k: v for k, v in live.items() if k not in self.FIELDS}

    def read_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        value = props.get("value")
        keys = client.list_enrollment_keys()
        if known(value):
            match = [k for k in keys if k.get("value") == value]
        else:  # no value in state (e.g. import): fall back to the tag
            match = [k for k in keys if id_ in (k.get("tags") or [])]
        if not match:
            return None
        live = self._live(match[0])
        valid_for = props.get("valid_for_seconds")
        if valid_for and known(valid_for):
            left = (live["expires_at"] or 0) - datetime.now(timezone.utc).timestamp()
            if left < int(valid_for) / 2:
                return None  # as good as gone: the diff replaces it with a fresh key
            live["expires_at"] = props.get("expires_at")  # computed at create, not an input
            live["valid_for_seconds"] = valid_for
        return live

    def delete_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> None:
        value = props.get("value")
        if not known(value):
            key = client.find_enrollment_key_by_tag(id_)
            if key is None:
                return
            value = key["value"]
        client.delete_enrollment_key(value)  # NotFound ("no enrollmentkey found") = done


@dataclass
class EnrollmentKeyArgs:
    connection: NetmakerConnection | dict[str, Any] | pulumi.Input[dict[str, Any]]
    networks: pulumi.Input[list[pulumi.Input[str]]]
    tags: pulumi.Input[list[pulumi.Input[str]]]
    uses: pulumi.Input[int] | None = None
    expires_at: pulumi.Input[int] | pulumi.Input[str] | None = None
    valid_for_seconds: pulumi.Input[int] | None = None
    """Expire this long after creation; renewed by the first diff past half of it."""
    unlimited: pulumi.Input[bool] = False
    provider_version: str = field(default=PROVIDER_VERSION)


class EnrollmentKey(pulumi.dynamic.Resource, module="bgp4mesh", name="EnrollmentKey"):
    """A Netmaker enrollment key. Secret outputs: ``token`` (what ``netclient join -t``
    takes), ``value`` (the key id, also a credential) and ``connection``."""

    kind: pulumi.Output[str]
    networks: pulumi.Output[list[str]]
    tags: pulumi.Output[list[str]]
    token: pulumi.Output[str]
    value: pulumi.Output[str]
    key_type: pulumi.Output[int]
    uses_remaining: pulumi.Output[int]
    expiration: pulumi.Output[str]

    def __init__(self, name: str, args: EnrollmentKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "kind": KIND,
            "connection": connection_input(args.connection),
            "networks": args.networks,
            "tags": args.tags,
            "uses": args.uses,
            "expires_at": args.expires_at,
            "valid_for_seconds": args.valid_for_seconds,
            "unlimited": args.unlimited,
            "provider_version": args.provider_version,
            "token": None,
            "value": None,
            "key_type": None,
            "uses_remaining": None,
            "expiration": None,
        }
        super().__init__(EnrollmentKeyProvider(), name, props, merge_opts(opts, ["token", "value", "connection"]))

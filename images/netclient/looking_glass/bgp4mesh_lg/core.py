"""What a request may run, decided without a system: a URL becomes one of the allowed BIRD
commands (canonical words, every argument parsed and written back by Python) or a refusal
with its HTTP status and reason. Nothing else ever reaches birdc.

Allowed (BIRD's own words, unabbreviated):
  show protocols
  show protocols all <protocol>
  show route for <address or prefix>
  show route where net ~ <prefix>          (IPv4 /8 or longer, IPv6 /16 or longer)
  show route export <protocol>

URL API (GET only):
  /                        this text
  /?q=<command>            any allowed command, as typed (e.g. /?q=show+route+for+44.30.127.10)
  /protocols               show protocols
  /protocols/<protocol>    show protocols all <protocol>
  /route?for=<ip|prefix>   show route for ...
  /route?where=<prefix>    show route where net ~ ...
  /route?export=<protocol> show route export ...

Answers are text/plain: 200 with birdc's output; 400 a malformed query (bad address, extra
word, a character outside letters, digits and . _ : / ~ space); 403 a command that is not on
the list (configure, down, show route without a filter, ...) or a client outside the allowed
prefixes; 404 another path; 405 another method; 502 birdc failed (its output follows);
503 too many queries at once; 504 birdc took too long.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Union
from urllib.parse import parse_qs, unquote, urlsplit

USAGE = __doc__.split("\n\n", 1)[1]
MAX_QUERY = 200
"""Characters of a command at most: every allowed one is far shorter."""
SAFE = re.compile(r"[A-Za-z0-9._:/~ ]*")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""A BIRD protocol name (a symbol)."""
MIN_WHERE = {4: 8, 6: 16}
"""Shorter prefixes are nearly the whole table, which is not served."""
ALLOWED = ("show protocols", "show protocols all <protocol>", "show route for <address or prefix>",
           "show route where net ~ <prefix>", "show route export <protocol>")
ROUTE_FILTERS = {"for": "show route for <address or prefix>", "where": "show route where net ~ <prefix>",
                 "export": "show route export <protocol>"}


@dataclass(frozen=True)
class Query:
    """An allowed BIRD command, as birdc's arguments."""

    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True)
class Reply:
    """An answer given without running anything: a refusal, or the usage text."""

    status: int
    text: str


Decision = Union[Query, Reply]


def bad(reason: str) -> Reply:
    return Reply(400, reason)


def forbidden(reason: str) -> Reply:
    return Reply(403, f"{reason}; allowed: {', '.join(ALLOWED)}")


def parse_command(text: str) -> Decision:
    """The allowed command `text` is, or why it is refused."""
    if len(text) > MAX_QUERY:
        return bad(f"query longer than {MAX_QUERY} characters")
    if not SAFE.fullmatch(text):
        char = next(c for c in text if not SAFE.fullmatch(c))
        return bad(f"character {char!r} is not allowed (only letters, digits, '.', '_', ':', '/', '~' and space)")
    words = tuple(text.split())
    if words[:2] == ("show", "protocols"):
        return _protocols(words[2:])
    if words[:2] == ("show", "route"):
        return _route(words[2:])
    return forbidden(f"{' '.join(words[:2]) or 'an empty query'!r} is not allowed")


def _protocols(args: tuple[str, ...]) -> Decision:
    if not args:
        return Query(("show", "protocols"))
    if args[0] != "all" or len(args) != 2:
        return bad("show protocols takes nothing, or `all <protocol>`")
    name = _name(args[1])
    return name if isinstance(name, Reply) else Query(("show", "protocols", "all", name))


def _route(args: tuple[str, ...]) -> Decision:
    if not args or args[0] not in ROUTE_FILTERS:
        what = f"show route {' '.join(args)}".strip()
        return forbidden(f"{what!r} is not allowed: show route needs one filter (the full table is not served)")
    form, rest = args[0], args[1:]
    if form == "for" and len(rest) == 1:
        target = _address_or_prefix(rest[0])
        return target if isinstance(target, Reply) else Query(("show", "route", "for", target))
    if form == "where" and len(rest) == 3 and rest[:2] == ("net", "~"):
        prefix = _where_prefix(rest[2])
        return prefix if isinstance(prefix, Reply) else Query(("show", "route", "where", "net", "~", prefix))
    if form == "export" and len(rest) == 1:
        name = _name(rest[0])
        return name if isinstance(name, Reply) else Query(("show", "route", "export", name))
    return bad(f"the form is `{ROUTE_FILTERS[form]}`, with nothing more")


def _name(word: str) -> Union[str, Reply]:
    return word if NAME.fullmatch(word) else bad(f"{word!r} is not a BIRD protocol name")


def _prefix(word: str) -> Union[ipaddress.IPv4Network, ipaddress.IPv6Network, Reply]:
    try:
        return ipaddress.ip_network(word, strict=True) if "/" in word else bad(f"{word!r} is not a prefix (address/length)")
    except ValueError as e:
        return bad(f"{word!r} is not a prefix: {e}")


def _address_or_prefix(word: str) -> Union[str, Reply]:
    if "/" in word:
        net = _prefix(word)
        return net if isinstance(net, Reply) else str(net)
    try:
        return str(ipaddress.ip_address(word))
    except ValueError:
        return bad(f"{word!r} is not an IP address or prefix")


def _where_prefix(word: str) -> Union[str, Reply]:
    net = _prefix(word)
    if isinstance(net, Reply):
        return net
    shortest = MIN_WHERE[net.version]
    if net.prefixlen < shortest:
        return forbidden(f"{net} is nearly the whole table: ask for a /{shortest} or longer")
    return str(net)


def parse_url(url: str) -> Decision:
    """The decision for a GET of `url` (path and query string)."""
    parts = urlsplit(url)
    try:
        params = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query), errors="strict")
    except (ValueError, UnicodeDecodeError):
        return bad("malformed query string")
    if any(len(v) > 1 for v in params.values()):
        return bad("a parameter is given more than once")
    one = {k: v[0] for k, v in params.items()}
    path = unquote(parts.path)
    if path == "/":
        return _root(one)
    if path == "/route":
        return _route_params(one)
    if path == "/protocols" or path.startswith("/protocols/"):
        if one:
            return bad(f"{path} takes no parameters")
        name = path[len("/protocols/"):]
        return parse_command(f"show protocols all {name}" if name else "show protocols")
    return Reply(404, f"no such page: {path}\n\n{USAGE}")


def _root(params: dict[str, str]) -> Decision:
    if not params:
        return Reply(200, USAGE)
    if set(params) != {"q"}:
        return bad(f"/ takes q=<command> alone, not {sorted(params)}")
    return parse_command(params["q"])


def _route_params(params: dict[str, str]) -> Decision:
    if not params:
        return parse_command("show route")
    if len(params) != 1 or not set(params) <= set(ROUTE_FILTERS):
        return bad(f"/route takes exactly one of for=, where=, export=, not {sorted(params)}")
    (form, value), = params.items()
    return parse_command(f"show route {'where net ~' if form == 'where' else form} {value}")


def source_allowed(address: str, allowed) -> bool:
    """The client `address` (IPv4-mapped IPv6 read as IPv4) lies in one of `allowed`."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in allowed)


def birdc_argv(birdc: str, socket: str, query: Query) -> list[str]:
    """birdc in restricted mode (-r: BIRD itself refuses anything but show commands) on
    `socket`, the command as separate arguments: no shell ever sees it."""
    return [birdc, "-r", "-s", socket, *query.words]

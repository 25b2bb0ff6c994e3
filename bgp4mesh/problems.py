"""The config's error vocabulary: a Problem names the key path of one broken rule, and
ConfigError carries every problem found, formatted for the operator (secrets never shown)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Iterable, Sequence

from pydantic import SecretStr

NAMESPACE = "bgp4mesh"

@dataclass(frozen=True)
class Problem:
    """One broken rule. `key` is relative to the section that found it."""

    key: str
    value: Any
    rule: str
    has_value: bool = True


def problem(key: str, rule: str) -> Problem:
    """A problem with no single offending value (a missing or a whole-list rule)."""
    return Problem(key, None, rule, has_value=False)


class ConfigError(ValueError):
    """Invalid stack configuration; str() is the operator-facing message. Raised
    inside a model validator, its problems are re-rooted at the model's key path."""

    def __init__(self, message: str = "", problems: Sequence[Problem] = ()):
        self.problems = list(problems)
        super().__init__(message or format_problems(self.problems))


MAX_LINES = 100
SHOW_MAX = 60
SECRET_SHOWN = "[secret]"


def format_problems(problems: Sequence[Problem], secret_keys: Iterable[str] = ()) -> str:
    """`invalid stack configuration:` and one `bgp4mesh:<key> = <value>: <rule>` line
    per problem; values of password keys, SecretStr values and whole secret keys
    are never shown."""
    secret_keys = set(secret_keys)
    lines = []
    for p in problems[:MAX_LINES]:
        head = f"{NAMESPACE}:{p.key}" if p.key else NAMESPACE
        if p.has_value:
            hidden = _is_secret_key(p.key) or p.key in secret_keys
            head += f" = {SECRET_SHOWN if hidden else show(p.value)}"
        lines.append(f"{head}: {p.rule}")
    if len(problems) > MAX_LINES:
        lines.append(f"... and {len(problems) - MAX_LINES} more")
    return "invalid stack configuration:\n  " + "\n  ".join(lines)


def _is_secret_key(key: str) -> bool:
    return any("password" in part.lower() for part in re.split(r"[.\[\]]", key))


def show(value: Any) -> str:
    """A value shown briefly: never a dump of a whole section, never 10 MB."""
    if isinstance(value, SecretStr):
        return SECRET_SHOWN
    if isinstance(value, str):
        if len(value) > SHOW_MAX:
            return f"{value[:40]!r}... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, dict):
        return f"{{...}} (a mapping of {len(value)} keys)"
    if isinstance(value, (list, tuple)):
        return f"[...] (a list of {len(value)} items)"
    if value is None or isinstance(value, (bool, int, float, IPv4Address, IPv6Address, IPv4Network, IPv6Network)):
        text = str(value)
        return text if len(text) <= SHOW_MAX else f"{text[:40]}... ({len(text)} digits)"
    return f"a {type(value).__name__}"


def key_part(part: Any) -> str:
    """One key of a path as written in a message (odd or huge keys shown briefly)."""
    if isinstance(part, int) and not isinstance(part, bool):
        return f"[{part}]"
    text = str(part)
    if re.fullmatch(r"[A-Za-z0-9_:-]{1,40}", text):
        return text
    return show(text) if isinstance(part, str) else f"<{show(part)}>"


def join_key(*parts: str) -> str:
    out = ""
    for part in parts:
        if part:
            out += part if (not out or part.startswith("[")) else f".{part}"
    return out



"""Load a stack's `bgp4mesh:*` configuration and validate it into a StackConfig.

Two sources give the same dict: the Pulumi runtime (inside `pulumi up`, or the
test harness) and `Pulumi.<stack>.yaml` read directly (the CLI, which needs no
Pulumi engine). Errors become one ConfigError line per problem, each naming the
key, the value and the rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import ConfigError, StackConfig

NAMESPACE = "bgp4mesh"
PROJECT_DIR = Path(__file__).resolve().parent.parent
SECRET_PLACEHOLDER = "[secret]"


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def raw_from_file(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, Any], set[str]]:
    """The stack file's `bgp4mesh:` keys (prefix stripped) and which keys hold secrets.

    Encrypted `secure:` values cannot be read without the Pulumi engine; they are
    replaced by a placeholder so validation still sees that they are set."""
    path = stack_file(stack, project_dir)
    if not path.exists():
        raise ConfigError(f"no {path.name} in {project_dir}")
    doc = yaml.safe_load(path.read_text()) or {}
    raw, secrets = {}, set()
    for key, value in (doc.get("config") or {}).items():
        ns, _, name = key.partition(":")
        if ns != NAMESPACE:
            continue
        value, had_secret = _strip_secure(value)
        raw[name] = value
        if had_secret:
            secrets.add(name)
    return raw, secrets


def raw_from_pulumi() -> dict[str, Any]:
    """Every `bgp4mesh:*` key the engine passed, including ones no code asks for,
    so unknown keys are caught (pulumi.Config can only look keys up by name)."""
    from pulumi.runtime import config as rc

    keys = set(rc.CONFIG.get()) | set(rc.get_config_env())
    raw = {}
    for key in keys:
        ns, _, name = key.partition(":")
        if ns == NAMESPACE:
            raw[name] = _decode(rc.get_config(key))
    return raw


def validate(raw: dict[str, Any]) -> StackConfig:
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None


def load_file(stack: str, project_dir: Path = PROJECT_DIR) -> StackConfig:
    return validate(raw_from_file(stack, project_dir)[0])


def format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        key = _key(err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{NAMESPACE}:{key}: unknown key (a typo?); it is rejected, not ignored")
        elif err["type"] == "missing":
            lines.append(f"{NAMESPACE}:{key}: required but not set")
        elif key and not _names_a_key(msg):
            lines.append(f"{NAMESPACE}:{key} = {_show(err.get('input'))}: {msg}")
        else:
            lines.append(f"{NAMESPACE}:{key + ': ' if key else ''}{msg}")
    return "invalid stack configuration:\n  " + "\n  ".join(lines)


def _names_a_key(msg: str) -> bool:
    """Model-level rules already name their keys ("mesh.range = ...")."""
    return " = " in msg.split(":")[0]


def _key(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith("function-") or part in ("lax-or-strict", "json-or-python"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) < 80 else text[:77] + "..."
    return repr(value) if isinstance(value, str) else str(value)


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _strip_secure(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        found = False
        out = {}
        for k, v in value.items():
            out[k], f = _strip_secure(v)
            found |= f
        return out, found
    if isinstance(value, list):
        pairs = [_strip_secure(v) for v in value]
        return [v for v, _ in pairs], any(f for _, f in pairs)
    return value, False

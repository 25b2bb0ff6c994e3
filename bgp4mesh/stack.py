"""Load a stack's `bgp4mesh:*` configuration and validate it into a StackConfig.

Two sources give the same dict: the Pulumi runtime (inside `pulumi up`, or the
test harness) and `Pulumi.<stack>.yaml` read directly (the CLI, which needs no
Pulumi engine). Both return `(raw, secret_keys)`: the `bgp4mesh:` keys with the
prefix stripped, and which of them hold a secret.

The file reader is built for hostile input: only a regular file is opened (a FIFO
or a device never blocks it), it must be UTF-8, YAML errors name the line, a key
may appear once per mapping and must be text, and nesting depth and the size of
the document after alias expansion are bounded before anything walks it. Every
problem ends as a ConfigError (the CLI exits 2), never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from .config import StackConfig
from .plan import StackPlan, build_plan, lab_addressing
from .rules import cross_section_problems
from .problems import NAMESPACE, ConfigError, Problem, format_problems, join_key, key_part, problem
from .scalars import BOOL_HINT

PROJECT_DIR = Path(__file__).resolve().parent.parent
SECRET_PLACEHOLDER = "[secret]"
SECRET_ENV_PREFIX = "BGP4MESH_SECRET_"
STACK_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
"""Pulumi's rule for a stack name (the last part of org/project/stack)."""
MAX_FILE_BYTES = 16 * 2**20
MAX_DEPTH = 32
MAX_VALUES = 100_000
"""Values in the document once YAML aliases are expanded: refuses alias bombs."""
NAMESPACE_TYPO_DISTANCE = 2

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 3-5x faster
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class StackSource:
    """A stack file as read: the raw keys, which hold secrets, and where each
    encrypted (`secure:`) value sits, e.g. ('upstreams', 0, 'password')."""

    raw: dict[str, Any]
    secret_keys: set[str]
    secure: list[tuple] = field(default_factory=list)


# ---- the two sources -----------------------------------------------------------------


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    if not isinstance(stack, str) or not STACK_NAME_RE.fullmatch(stack):
        raise ConfigError(f"stack name {_brief(stack)}: 1-100 characters of A-Z, a-z, 0-9, '-', '_' and '.' (Pulumi's rule)")
    return Path(project_dir) / f"Pulumi.{stack}.yaml"


def read_stack(stack: str, project_dir: Path = PROJECT_DIR) -> StackSource:
    """The stack file's `bgp4mesh:` keys. Encrypted `secure:` values cannot be read
    without the Pulumi engine: they become a placeholder (validation still sees that
    they are set) and their paths are listed in `secure`."""
    path = stack_file(stack, project_dir)
    doc = _parse_yaml(_read_text(path), path.name)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path.name}: the top level must be a mapping with a 'config:' key, not {_kind(doc)}")
    config = {} if doc.get("config") is None else doc["config"]
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: 'config:' must be a mapping of namespace:key entries, not {_kind(config)}")
    check_shape(config, path.name)
    source = StackSource({}, set())
    for name, value in _own_keys(config.items(), path.name):
        source.raw[name], secure = _strip_secure(value, (name,))
        source.secure += secure
        if secure:
            source.secret_keys.add(name)
    return source


def raw_from_file(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, Any], set[str]]:
    source = read_stack(stack, project_dir)
    return source.raw, source.secret_keys


def raw_from_pulumi() -> tuple[dict[str, Any], set[str]]:
    """Every `bgp4mesh:*` key the engine passed, including ones no code asks for,
    so unknown keys are caught (pulumi.Config can only look keys up by name), and
    the ones the engine marks secret."""
    from pulumi.runtime import config as rc

    keys = set(rc.CONFIG.get()) | set(rc.get_config_env())
    secret = set(rc.get_config_secret_keys_env())
    raw, secret_keys = {}, set()
    for name, key in _own_keys(((k, k) for k in sorted(keys)), "the Pulumi config"):
        raw[name] = _decode(rc.get_config(key))
        if rc.is_config_secret(key) or key in secret:
            secret_keys.add(name)
    return raw, secret_keys


def plan_stack(raw: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> StackPlan:
    """The deployment plan, or a ConfigError listing every problem found: the sections',
    else the rules across them together with what planning finds (values of `secret_keys`
    and of password keys are never shown)."""
    check_shape(raw, "the stack config")
    try:
        model = StackConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_problems(problems_of(exc), secret_keys)) from None
    problems = cross_section_problems(model)
    try:
        plan = lab_addressing(model) if problems else build_plan(model, frozenset(secret_keys))
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(format_problems(problems, secret_keys))
    return plan


def validate(raw: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> StackConfig:
    """The model of a stack that passes every check (its plan included)."""
    return plan_stack(raw, secret_keys).model


def load_file(stack: str, project_dir: Path = PROJECT_DIR) -> StackConfig:
    return validate(*raw_from_file(stack, project_dir))


def load_plan(stack: str, project_dir: Path = PROJECT_DIR) -> StackPlan:
    return plan_stack(*raw_from_file(stack, project_dir))


# ---- secrets outside the engine --------------------------------------------------------


def secret_env(path: tuple) -> str:
    """The environment variable that supplies a `secure:` value to the CLI, e.g.
    ('upstreams', 0, 'password') -> BGP4MESH_SECRET_UPSTREAMS_0_PASSWORD."""
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", "_".join(str(p) for p in path).upper()).strip("_")


def fill_secrets(source: StackSource, environ: Mapping[str, str]) -> list[tuple]:
    """Put each `secure:` value given in the environment into `source.raw`; the
    paths still missing are returned."""
    missing = []
    for path in source.secure:
        value = environ.get(secret_env(path))
        if value is None:
            missing.append(path)
            continue
        target = source.raw
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return missing


def key_path(path: tuple) -> str:
    return join_key(*(key_part(p) for p in path))


# ---- validation errors -> problems ------------------------------------------------------


def problems_of(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        key = _loc(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError) and cause.problems:
            out += [Problem(join_key(key, p.key), p.value, p.rule, p.has_value) for p in cause.problems]
        elif err["type"] == "extra_forbidden":
            out.append(problem(key, "unknown key (a typo?); it is rejected, not ignored"))
        elif err["type"] == "missing":
            out.append(problem(key, "required but not set"))
        else:
            rule = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            value = err.get("input")
            if isinstance(value, bool) and BOOL_HINT not in rule:
                rule += f" ({BOOL_HINT})"
            out.append(Problem(key, value, rule))
    return out


def _loc(loc: tuple) -> str:
    skip = lambda p: isinstance(p, str) and (p.startswith("function-") or p in ("lax-or-strict", "json-or-python"))  # noqa: E731
    return join_key(*(key_part(p) for p in loc if not skip(p)))


# ---- reading the file ---------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """A regular file's text. A FIFO, device or directory is refused before it is
    opened; O_NONBLOCK keeps a swapped-in FIFO from blocking the open."""
    try:
        _require_regular(path, os.stat(path))
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            _require_regular(path, os.fstat(fd))
            data = os.read(fd, MAX_FILE_BYTES + 1)
            while len(data) <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - len(data))):
                data += chunk
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise ConfigError(f"no {path.name} in {path.parent}") from None
    except OSError as exc:
        raise ConfigError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path.name}: larger than {MAX_FILE_BYTES // 2**20} MiB; not a stack file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path.name} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def _require_regular(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
        kind = next((k for test, k in kinds if test(st.st_mode)), "not a regular file")
        raise ConfigError(f"{path.name} in {path.parent} is {kind}, not a stack file")


class _Loader(_Base):
    """Safe YAML; the structural checks run on the node graph before anything is built."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > 40:
            raise yaml.constructor.ConstructorError(None, None, f"a number of {len(node.value)} digits", node.start_mark)
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _parse_yaml(text: str, name: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_keys(node, name)
        return loader.construct_document(node)
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_message(exc, name, text)) from None
    except (ValueError, OverflowError) as exc:  # a constructor's own check, e.g. a date like 2024-02-30
        raise ConfigError(f"{name}: a value YAML cannot build ({_brief(str(exc))})") from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply") from None
    finally:
        loader.dispose()


def _check_keys(root: yaml.Node, name: str) -> None:
    """Every mapping key is text and appears once (YAML would keep the last value).
    Each node is visited once, so aliases cost nothing here."""
    seen_nodes, todo = set(), [root]
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Mark] = {}
            for key, value in node.value:
                todo += [key, value]
                if key.tag == _MERGE_TAG:
                    continue
                if not isinstance(key, yaml.ScalarNode) or key.tag != _STR_TAG:
                    raise ConfigError(f"{_at(name, key.start_mark)}: a key must be text, not {_node_kind(key)}; quote it")
                if key.value in first:
                    raise ConfigError(
                        f"{_at(name, key.start_mark)}: key {_brief(key.value)} appears twice in one mapping "
                        f"(first on line {first[key.value].line + 1}); YAML would silently keep the last value"
                    )
                first[key.value] = key.start_mark
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return f"{node.tag.rsplit(':', 1)[-1]} {_brief(node.value)}"
    return "a mapping" if isinstance(node, yaml.MappingNode) else "a list"


def _yaml_message(exc: yaml.YAMLError, name: str, text: str) -> str:
    """The problem and where, never a snippet of the file (it may hold a secret)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f"{name}: not valid YAML: {exc.reason} (character #x{exc.character:04x} at position {exc.position})"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or type(exc).__name__
    context = getattr(exc, "context", None)
    message = f"{context}, {what}" if context else what
    line = text.split("\n")[mark.line] if mark is not None and mark.line < text.count("\n") + 1 else ""
    if "\t" in line[: len(line) - len(line.lstrip())] or "'\\t'" in message:
        message += " (a tab: YAML indents with spaces only)"
    where = _at(name, mark) if mark is not None else name
    return f"{where}: not valid YAML: {message}"


def _at(name: str, mark: yaml.Mark) -> str:
    return f"{name} line {mark.line + 1} column {mark.column + 1}"


def check_shape(value: Any, where: str) -> None:
    """Bound nesting depth and the number of values after alias expansion, counted
    once per distinct object (so an alias bomb is refused at once, unexpanded)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    stack: list[tuple[Any, tuple, bool]] = [(value, (), False)]
    active: set[int] = set()
    while stack:
        obj, path, done = stack.pop()
        children = _children(obj)
        if children is None:
            continue
        if done:
            active.discard(id(obj))
            sizes[id(obj)] = 1 + sum(sizes.get(id(c), 1) for _, c in children)
            depths[id(obj)] = 1 + max((depths.get(id(c), 0) for _, c in children), default=0)
            if sizes[id(obj)] > MAX_VALUES:
                raise ConfigError(f"{where}: {key_path(path) or 'the document'} expands to more than {MAX_VALUES} values (YAML aliases?); refused")
            if depths[id(obj)] > MAX_DEPTH:
                raise ConfigError(f"{where}: {key_path(path) or 'the document'} is nested more than {MAX_DEPTH} levels deep; refused")
            continue
        if id(obj) in sizes:
            continue
        if id(obj) in active or len(path) > MAX_DEPTH:
            raise ConfigError(f"{where}: {key_path(path[:MAX_DEPTH])} contains itself or is nested more than {MAX_DEPTH} levels deep; refused")
        active.add(id(obj))
        stack.append((obj, path, True))
        stack += [(child, path + (k,), False) for k, child in children]


def _children(obj: Any) -> list | None:
    if isinstance(obj, dict):
        return list(obj.items())
    if isinstance(obj, list):
        return list(enumerate(obj))
    return None


# ---- keys and values ---------------------------------------------------------------------


def _own_keys(items, where: str):
    """(name, value) of each `bgp4mesh:name` key. A namespace a small edit away
    from ours (a typo) or a key without a namespace is refused: it would be ignored."""
    problems = []
    for key, value in items:
        ns, colon, name = key.partition(":")
        if ns == NAMESPACE and name:
            yield name, value
        elif not colon or not name:
            problems.append(f"{_brief(key)}: not a Pulumi config key; write {NAMESPACE}:<key>")
        elif ns != NAMESPACE and _distance(ns.lower(), NAMESPACE) <= NAMESPACE_TYPO_DISTANCE:
            problems.append(f"{_brief(key)}: namespace {_brief(ns)} looks like a typo of '{NAMESPACE}'; the key would be ignored")
    if problems:
        raise ConfigError(f"{where}: keys refused:\n  " + "\n  ".join(problems))


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (a swap of two letters counts 1)."""
    if abs(len(a) - len(b)) > NAMESPACE_TYPO_DISTANCE:
        return NAMESPACE_TYPO_DISTANCE + 1
    d = [[i + j if not i * j else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:40] + f"... ({len(str(value))} characters)"


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text"}.get(type(value), f"a {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
        except RecursionError:
            raise ConfigError(f"a config value is nested more than {MAX_DEPTH} levels deep; refused") from None
    return value


def _strip_secure(value: Any, path: tuple) -> tuple[Any, list[tuple]]:
    """(value with every `{secure: ...}` replaced by the placeholder, their paths)."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, [path]
        out, found = {}, []
        for k, v in value.items():
            out[k], f = _strip_secure(v, path + (k,))
            found += f
        return out, found
    if isinstance(value, list):
        pairs = [_strip_secure(v, path + (i,)) for i, v in enumerate(value)]
        return [v for v, _ in pairs], [p for _, f in pairs for p in f]
    return value, []

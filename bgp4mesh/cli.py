"""`python -m bgp4mesh`: check, render, verify and draw a stack without the Pulumi CLI.

check  validate Pulumi.<stack>.yaml and print its plan (a summary; --json: all of it, secrets
       masked) (exit 0, or 2 if invalid); a WARNING
       on stderr for each image pulled by tag alone (not pinned by digest)
render write every generated daemon config; DIR/<router>/ is that container's /etc/bird
verify check a running deployment from the outside (exit 0 when every check passes)
graph  draw the plan as Mermaid or Graphviz dot text (--format mermaid|dot; exit 2 if invalid);
       --live colours sessions and tunnels from the running stack

Secrets: a `secure:` value in the stack file is encrypted for the Pulumi engine and
cannot be read here. `check` validates the rest; `render` refuses (exit 2) unless the
value is given in the environment as BGP4MESH_SECRET_<KEY PATH>, the key path in
capitals with every other character as '_', e.g. bgp4mesh:upstreams[0].password
-> BGP4MESH_SECRET_UPSTREAMS_0_PASSWORD. Rendered files are written 0600 in 0700
directories, and never through a symlink.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .config import StackConfig
from .graph import FORMATS
from .neighbours import neighbour_warning
from .plan import RouterPlan, StackPlan
from .problems import NAMESPACE, ConfigError
from .stack import PROJECT_DIR, fill_secrets, key_path, plan_stack, read_stack, secret_env

EXIT_INVALID = 2
PROJECT_DIR_ENV = "BGP4MESH_PROJECT_DIR"


class OutputError(Exception):
    """`render --out` cannot be written as asked."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        plan = load(args.stack, args.project_dir, need_secrets=args.command == "render")
        if args.command == "check":
            _render_in_memory(plan)
            print(json.dumps(plan_data(plan), indent=1) if args.json else summary(args.stack, plan))
            for line in tag_only_warnings(plan.model) + [w for w in [neighbour_warning(plan)] if w]:
                print(line, file=sys.stderr)
            return 0
        if args.command == "graph":
            print(FORMATS[args.format](plan, _observed(plan, args.stack) if args.live else None), end="")
            return 0
        if args.command == "render":
            for path in write_rendered(plan, _out_dir(args.out)):
                print(path)
            return 0
    except ConfigError as exc:
        print(f"stack {_quoted(args.stack)}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except OutputError as exc:
        print(f"render --out {_quoted(args.out)}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    from .verify import run_verify

    return run_verify(args.stack, plan, args.wait)


def _parser() -> argparse.ArgumentParser:
    """Every subcommand takes --stack and --project-dir (a folder holding Pulumi.<stack>.yaml)."""
    parser = argparse.ArgumentParser(prog="python -m bgp4mesh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", required=True)
    common.add_argument(
        "--project-dir",
        type=Path,
        default=Path(os.environ.get(PROJECT_DIR_ENV) or PROJECT_DIR),
        help=f"folder holding Pulumi.<stack>.yaml (default: ${PROJECT_DIR_ENV} or the repository)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", parents=[common], help="validate a stack's config and print its plan")
    p_check.add_argument("--json", action="store_true", help="print the whole plan as JSON (secrets masked) instead of a summary")
    p_render = sub.add_parser(
        "render",
        parents=[common],
        help="write every generated config file",
        description="Write every generated config file (0600). A `secure:` value comes from BGP4MESH_SECRET_<KEY PATH>, "
        "e.g. BGP4MESH_SECRET_UPSTREAMS_0_PASSWORD for bgp4mesh:upstreams[0].password; without it render exits 2.",
    )
    p_render.add_argument("--out", required=True, help="directory to write into (DIR/<router>/bird.conf)")
    p_verify = sub.add_parser("verify", parents=[common], help="check a running deployment (BGP, routes, mesh, pings)")
    p_verify.add_argument("--wait", type=float, default=60.0, help="seconds each check may retry (default 60)")
    p_graph = sub.add_parser("graph", parents=[common], help="draw the stack's plan: routers, upstreams, iBGP, Netmaker, members, gateways")
    p_graph.add_argument("--format", choices=sorted(FORMATS), default="mermaid", help="mermaid (default) or dot (Graphviz: dot -Tsvg)")
    p_graph.add_argument("--live", action="store_true", help="colour BGP sessions and members' tunnels to the gateways from the running stack")
    return parser


def _observed(plan: StackPlan, stack: str):
    """The running stack's state for `graph --live` (reads the containers, as verify does)."""
    from .graph_live import observe

    return observe(plan, stack)


def load(stack: str, project_dir: Path, need_secrets: bool = False) -> StackPlan:
    """The validated stack's plan, with `secure:` values taken from the environment where
    given. `need_secrets`: a missing one is an error naming its variable."""
    source = read_stack(stack, project_dir)
    missing = fill_secrets(source, os.environ)
    if need_secrets and missing:
        lines = [f"{NAMESPACE}:{key_path(p)} = [secret]: encrypted (secure:) for the Pulumi engine; set {secret_env(p)} to render it" for p in missing]
        raise ConfigError("cannot render without the stack's secrets:\n  " + "\n  ".join(lines))
    return plan_stack(source.raw, source.secret_keys)


def _render_in_memory(plan: StackPlan) -> None:
    """`check` fails on anything `render` would."""
    from .render import render_all

    render_all(plan)


def _quoted(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:40]) + f"... ({len(text)} characters)"


def tag_only_warnings(cfg: StackConfig) -> list[str]:
    """One WARNING per image the hosts pull by tag alone: valid, but whoever can push to
    that tag (or sits between host and registry) decides what runs there."""
    return [
        f"WARNING: {NAMESPACE}:{key}: {ref} is pulled by tag alone; pin it by digest (a push to the tag changes what runs)"
        for key, ref in cfg.tag_only_pulls().items()
    ]


def summary(stack: str, plan: StackPlan) -> str:
    cfg = plan.model
    own = sorted({p.version for p in cfg.prefixes})
    longest = ", ".join(f"/{cfg.policy.length_range(v)[1]}" for v in own)
    lines = [
        f"stack {stack}: valid",
        f"  AS {cfg.asn} announcing {', '.join(str(p) for p in cfg.prefixes)} (IPv{'/'.join(map(str, own))})",
        f"  policy: bogon filter {'on' if cfg.policy.bogon_filter else 'OFF'}, max {longest}, "
        f"path <= {cfg.policy.max_as_path_length}, hold {cfg.policy.timers.hold}s",
    ]
    for r in plan.routers:
        lines += _router_lines(r)
    egress = ["the Internet (*)"] * cfg.mesh.internet_gateway + [str(x) for v in plan.families for x in plan.egress[v]]
    ranges = f"{cfg.mesh.range}" + (f" and {cfg.mesh.range6}" if cfg.mesh.range6 else "")
    lines.append(f"  mesh {cfg.mesh.network} on {ranges}, egress {', '.join(egress) or 'none'}")
    if len(plan.gateways.egress) > 1:
        lines.append(f"    gateways in order: {', '.join(plan.member_name(a) for a in plan.gateways.egress)}")
    for m in (x.member for x in (*plan.routers, *plan.nodes)):
        after = f", joins after {', '.join(m.join_after)}" if m.join_after else ""
        lines.append(f"    {m.name}: {m.pinned if m.pinned else 'assigned by Netmaker at join'} (host {m.host}{after})")
    for h in (h for h in plan.hosts if cfg.host(h.name).ssh is not None):
        opened = ", ".join(sorted({f"{o.proto}/{o.port if isinstance(o.port, int) else ','.join(map(str, o.port))}" for o in h.openings}))
        lines.append(f"  host {h.name}: {', '.join(h.roles) or 'no role'}; opens ssh{', ' + opened if opened else ''}")
    return "\n".join(lines + _observability_lines(plan))


def _observability_lines(plan: StackPlan) -> list[str]:
    mon, lg = plan.monitoring, plan.model.looking_glass
    lines = []
    if mon is not None:
        where = f" with its network, scraping from {mon.address}" if mon.host_network else f" at {mon.address}"
        lines.append(f"  monitoring on host {mon.host}{where}: {len(mon.targets)} targets every {mon.scrape_interval}s")
        tunnel = f" (ssh -L {mon.web.rpartition(':')[2]}:{mon.web} to host {mon.host})" if mon.host_network else ""
        lines.append(f"    Prometheus at {mon.url}{tunnel}; the control-plane exporter reads the broker at {mon.broker}")
        lines += [f"    not scraped (no address Prometheus reaches): {', '.join(mon.unscraped)}"] if mon.unscraped else []
    if lg is not None:
        lines.append(f"  looking glass on every border router, tcp/{lg.port}, for {', '.join(map(str, lg.allow))} only")
    return lines


def _router_lines(r: RouterPlan) -> list[str]:
    spec = r.spec
    drained = ", MAINTENANCE: drained" if spec.maintenance else ""
    lines = [f"  border router {r.name} (router id {spec.router_id}, host {spec.host}{drained})"]
    for s in r.sessions:
        u = s.upstream
        extra = f", local-pref {u.local_pref}" + (f", prepend {u.prepend}" if u.prepend else "")
        extra += f", BFD {u.bfd.interval_ms} ms x {u.bfd.multiplier}" if u.bfd else ""
        lines.append(
            f"    session {u.name} ({s.kind}, BIRD {s.protocol}): {s.local_address} -> {s.neighbor} AS {u.asn}, "
            f"max {u.max_prefixes} prefixes ({u.limit_action}){extra}"
        )
    lines += [f"    iBGP {p.router} ({p.protocol}): -> {p.address}" for p in r.ibgp]
    return lines


def plan_data(value: Any) -> Any:
    """The plan as JSON data: dataclasses and config sections as objects, addresses as
    text, secrets masked (pydantic's json mode shows a SecretStr as stars)."""
    if dataclasses.is_dataclass(value):
        return {f.name: plan_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): plan_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plan_data(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# ---- writing rendered files --------------------------------------------------------------


def _out_dir(text: str) -> Path:
    if not text or not text.strip() or "\0" in text:
        raise OutputError("must name a directory")
    out = Path(text)
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError("exists and is not a directory") from None
    except OSError as exc:
        raise OutputError(f"cannot create it ({exc.strerror or exc})") from None
    if not out.is_dir():
        raise OutputError("exists and is not a directory")
    return out


def write_rendered(plan: StackPlan, out: Path) -> list[Path]:
    """Write every container's files under `out`: directories 0700, files 0600
    (a border's bird.conf may hold a TCP-MD5 password). Below `out` nothing is
    followed: a symlink where a folder goes is refused, one where a file goes is
    replaced, not written through."""
    from .render import render_all

    written = []
    for container, files in render_all(plan).items():
        for rel, content in files.items():
            path = out / container / rel
            for parent in reversed(path.relative_to(out).parents[:-1]):
                _private_dir(out / parent)
            _private_file(path, content)
            written.append(path)
    return written


def _private_dir(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
        return
    except FileExistsError:
        pass
    except OSError as exc:
        raise OutputError(f"cannot create {path} ({exc.strerror or exc})") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{path} is a symlink; refusing to write through it (remove it)")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path} exists and is not a directory")
    os.chmod(path, 0o700)


def _private_file(path: Path, content: str) -> None:
    """Written to a new 0600 file in the same folder, then renamed over `path`."""
    try:
        if path.is_dir() and not path.is_symlink():
            raise OutputError(f"{path} is a directory")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(content)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from None

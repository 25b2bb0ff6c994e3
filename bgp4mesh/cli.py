"""`python -m bgp4mesh`: check, render and verify a stack without the Pulumi CLI.

check  validate Pulumi.<stack>.yaml and print the plan (exit 0, or 2 if invalid)
render write every generated daemon config; DIR/<router>/ is that container's /etc/bird
verify check a running deployment from the outside (exit 0 when every check passes)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError, StackConfig
from .stack import load_file

EXIT_INVALID = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgp4mesh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="validate a stack's config and print its plan")
    p_check.add_argument("--stack", required=True)
    p_render = sub.add_parser("render", help="write every generated config file")
    p_render.add_argument("--stack", required=True)
    p_render.add_argument("--out", required=True, type=Path)
    p_verify = sub.add_parser("verify", help="check a running deployment (BGP, routes, mesh, pings)")
    p_verify.add_argument("--stack", required=True)
    p_verify.add_argument("--wait", type=float, default=60.0, help="seconds each check may retry (default 60)")
    args = parser.parse_args(argv)

    try:
        cfg = load_file(args.stack)
    except ConfigError as exc:
        print(f"stack '{args.stack}': {exc}", file=sys.stderr)
        return EXIT_INVALID

    if args.command == "check":
        print(summary(args.stack, cfg))
        return 0
    if args.command == "render":
        for path in write_rendered(cfg, args.out):
            print(path)
        return 0
    from .verify import run_verify

    return run_verify(args.stack, cfg, args.wait)


def summary(stack: str, cfg: StackConfig) -> str:
    from .addressing import mesh_plan

    lines = [
        f"stack {stack}: valid",
        f"  AS {cfg.asn} announcing {', '.join(str(p) for p in cfg.prefixes)}",
        f"  policy: bogon filter {'on' if cfg.policy.bogon_filter else 'OFF'}, max /{cfg.policy.max_prefix_length_v4}, "
        f"path <= {cfg.policy.max_as_path_length}, hold {cfg.policy.timers.hold}s",
    ]
    for r in cfg.border_routers:
        lines.append(f"  border router {r.name} (router id {r.router_id}, host {r.host})")
        for u in cfg.upstreams_of(r):
            mock = " [mock ISP]" if u.mock else ""
            lines.append(
                f"    session {u.name}: {u.local_address} -> {u.neighbor} AS {u.asn}, "
                f"max {u.max_prefixes} prefixes ({u.limit_action}){mock}"
            )
    lines.append(f"  mesh {cfg.mesh.network} on {cfg.mesh.range}, egress {', '.join(str(r) for r in cfg.mesh.egress_ranges) or 'none'}")
    for name, ip in mesh_plan(cfg).pinned.items():
        lines.append(f"    {name}: {ip if ip else 'assigned by Netmaker at join'}")
    return "\n".join(lines)


def write_rendered(cfg: StackConfig, out: Path) -> list[Path]:
    from .render import render_all

    written = []
    for container, files in render_all(cfg).items():
        for rel, content in files.items():
            path = out / container / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            written.append(path)
    return written

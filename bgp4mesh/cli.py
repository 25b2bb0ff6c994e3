"""`python -m bgp4mesh`: check, render and verify a stack without the Pulumi CLI.

check  validate Pulumi.<stack>.yaml and print the plan (exit 0, or 2 if invalid); a WARNING
       on stderr for each image pulled by tag alone (not pinned by digest)
render write every generated daemon config; DIR/<router>/ is that container's /etc/bird
verify check a running deployment from the outside (exit 0 when every check passes)

Secrets: a `secure:` value in the stack file is encrypted for the Pulumi engine and
cannot be read here. `check` validates the rest; `render` refuses (exit 2) unless the
value is given in the environment as BGP4MESH_SECRET_<KEY PATH>, the key path in
capitals with every other character as '_', e.g. bgp4mesh:upstreams[0].password
-> BGP4MESH_SECRET_UPSTREAMS_0_PASSWORD. Rendered files are written 0600 in 0700
directories, and never through a symlink.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from pathlib import Path

from .config import NAMESPACE, ConfigError, StackConfig
from .stack import PROJECT_DIR, fill_secrets, key_path, read_stack, secret_env, validate

EXIT_INVALID = 2
PROJECT_DIR_ENV = "BGP4MESH_PROJECT_DIR"


class OutputError(Exception):
    """`render --out` cannot be written as asked."""


def main(argv: list[str] | None = None) -> int:
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
    sub.add_parser("check", parents=[common], help="validate a stack's config and print its plan")
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
    args = parser.parse_args(argv)

    try:
        cfg = load(args.stack, args.project_dir, need_secrets=args.command == "render")
        if args.command == "check":
            _render_in_memory(cfg)
            print(summary(args.stack, cfg))
            for line in tag_only_warnings(cfg):
                print(line, file=sys.stderr)
            return 0
        if args.command == "render":
            for path in write_rendered(cfg, _out_dir(args.out)):
                print(path)
            return 0
    except ConfigError as exc:
        print(f"stack {_quoted(args.stack)}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except OutputError as exc:
        print(f"render --out {_quoted(args.out)}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    from .verify import run_verify

    return run_verify(args.stack, cfg, args.wait)


def load(stack: str, project_dir: Path, need_secrets: bool = False) -> StackConfig:
    """The validated stack, with `secure:` values taken from the environment where
    given. `need_secrets`: a missing one is an error naming its variable."""
    source = read_stack(stack, project_dir)
    missing = fill_secrets(source, os.environ)
    if need_secrets and missing:
        lines = [f"{NAMESPACE}:{key_path(p)} = [secret]: encrypted (secure:) for the Pulumi engine; set {secret_env(p)} to render it" for p in missing]
        raise ConfigError("cannot render without the stack's secrets:\n  " + "\n  ".join(lines))
    return validate(source.raw, source.secret_keys)


def _render_in_memory(cfg: StackConfig) -> None:
    """`check` fails on anything `render` would."""
    from .render import render_all

    render_all(cfg)


def _quoted(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:40]) + f"... ({len(text)} characters)"


def tag_only_warnings(cfg: StackConfig) -> list[str]:
    """One WARNING per image the hosts pull by tag alone: valid, but whoever can push to
    that tag (or sits between host and registry) decides what runs there."""
    return [
        f"WARNING: {NAMESPACE}:{key}: {ref} is pulled by tag alone; pin it by digest (a push to the tag changes what runs)"
        for key, ref in cfg.tag_only_pulls().items()
    ]


def summary(stack: str, cfg: StackConfig) -> str:
    from .addressing import mesh_plan

    lines = [
        f"stack {stack}: valid",
        f"  AS {cfg.asn} announcing {', '.join(str(p) for p in cfg.prefixes)}",
        f"  policy: bogon filter {'on' if cfg.policy.bogon_filter else 'OFF'}, max /{cfg.policy.max_prefix_length_v4}, "
        f"path <= {cfg.policy.max_as_path_length}, hold {cfg.policy.timers.hold}s",
    ]
    from .addressing import ibgp_addresses

    ibgp = ibgp_addresses(cfg)
    for r in cfg.border_routers:
        drained = ", MAINTENANCE: drained" if r.maintenance else ""
        lines.append(f"  border router {r.name} (router id {r.router_id}, host {r.host}{drained})")
        for u in cfg.upstreams_of(r):
            mock = " [mock ISP]" if u.mock else ""
            extra = f", local-pref {u.local_pref}" + (f", prepend {u.prepend}" if u.prepend else "")
            extra += f", BFD {u.bfd.interval_ms} ms x {u.bfd.multiplier}" if u.bfd else ""
            lines.append(
                f"    session {u.name}: {u.local_address} -> {u.neighbor} AS {u.asn}, "
                f"max {u.max_prefixes} prefixes ({u.limit_action}){extra}{mock}"
            )
        for other in (o for o in cfg.border_routers if o.name != r.name and o.name in ibgp):
            lines.append(f"    iBGP {other.name}: {ibgp[r.name]} -> {ibgp[other.name]}")
    lines.append(f"  mesh {cfg.mesh.network} on {cfg.mesh.range}, egress {', '.join(['the Internet (*)'] * cfg.mesh.internet_gateway + [str(r) for r in cfg.mesh.egress_ranges]) or 'none'}")
    for name, ip in mesh_plan(cfg).pinned.items():
        lines.append(f"    {name}: {ip if ip else 'assigned by Netmaker at join'}")
    return "\n".join(lines)


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


def write_rendered(cfg: StackConfig, out: Path) -> list[Path]:
    """Write every container's files under `out`: directories 0700, files 0600
    (a border's bird.conf may hold a TCP-MD5 password). Below `out` nothing is
    followed: a symlink where a folder goes is refused, one where a file goes is
    replaced, not written through."""
    from .render import render_all

    written = []
    for container, files in render_all(cfg).items():
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

"""`./scripts/lab up|outputs|down --stack NAME`: the live harness for people."""

from __future__ import annotations

import argparse
import json
import sys

from bgp4mesh.config import ConfigError
from .live import LiveError, deploy, destroy, state_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./scripts/lab")
    parser.add_argument("action", choices=["up", "outputs", "down"])
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

    if args.action == "up":
        try:
            dep = deploy(args.stack, log=log)
        except (ConfigError, LiveError) as exc:
            print(f"lab up --stack {args.stack} failed (everything it created was removed): {exc}", file=sys.stderr)
            return 1
        print(json.dumps(dep.masked_outputs(), indent=2, default=str))
        print(f"stack {args.stack} up in {dep.seconds:.1f}s; `./scripts/lab down --stack {args.stack}` removes it", file=sys.stderr)
        return 0
    if args.action == "outputs":
        path = state_dir(args.stack) / "outputs.json"
        if not path.exists():
            print(f"stack {args.stack} is not up (no {path})", file=sys.stderr)
            return 1
        print(path.read_text())
        return 0
    problems = destroy(args.stack, log=log)
    print(f"stack {args.stack} removed" + (f" ({len(problems)} notes above)" if problems else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`./scripts/lab up|preview|outputs|refresh|down --stack NAME`: thin wrappers over
`pulumi up --yes`, `pulumi preview`, `pulumi stack output --json`, `pulumi refresh` and
`pulumi destroy --yes` with the offline settings of harness.engine."""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from bgp4mesh.stack import stack_file
from harness.engine import EngineError, Stack, available, ran_with


def stack_for(name: str) -> Stack:
    """A shipped stack as it is, staging (and its two-router variant) with the
    simulation's values filled in, or a stack that exists only in the config the engine
    last ran it with (a generated one, harness.generated: a bench or test that stopped
    half-way leaves it for `down`)."""
    if name in ("staging", "staging-ha"):
        from harness import staging

        return staging.stack(name)
    if not stack_file(name).exists() and ran_with(name).exists():
        return Stack(name, yaml.safe_load(ran_with(name).read_text())["config"])
    return Stack(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./scripts/lab", description=__doc__)
    parser.add_argument("action", choices=["up", "preview", "outputs", "refresh", "down"])
    parser.add_argument("--stack", required=True)
    parser.epilog = "Anything after -- is passed on to pulumi, e.g. -- --expect-no-changes --diff."
    args, extra = parser.parse_known_args(argv)
    args.pulumi_args = extra[1:] if extra[:1] == ["--"] else extra
    if not available():
        print("no Pulumi engine: run ./scripts/build-pulumi (or ./scripts/bootstrap) first", file=sys.stderr)
        return 1
    stack = stack_for(args.stack)
    try:
        if args.action == "up":
            result = stack.up(*args.pulumi_args)
        elif args.action == "preview":
            result = stack.preview(*args.pulumi_args)
        elif args.action == "refresh":
            result = stack.refresh(*args.pulumi_args)
        elif args.action == "down":
            result = stack.destroy()
        else:
            print(json.dumps(stack.outputs(), indent=2))
            return 0
    except EngineError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(result.stdout, end="")
    print(f"pulumi {args.action} --stack {args.stack}: {result.seconds:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

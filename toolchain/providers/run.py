"""Entry point of the stand-in provider plugins: `python run.py NAME ENGINE_ADDRESS [flags]`.

scripts/build-pulumi installs one wrapper per plugin (pulumi-resource-NAME) that runs this file
with the project's virtualenv python."""

import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from standin import PROVIDERS  # noqa: E402
from standin.base import serve  # noqa: E402


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in PROVIDERS:
        sys.exit(f"usage: run.py {{{','.join(PROVIDERS)}}} ENGINE_ADDRESS")
    module, cls = PROVIDERS[sys.argv[1]]
    provider = getattr(importlib.import_module(module), cls)
    args = sys.argv[2:]
    if "--version" in args or "-version" in args:
        print(provider.version)
        return
    serve(provider, args)


if __name__ == "__main__":
    main()

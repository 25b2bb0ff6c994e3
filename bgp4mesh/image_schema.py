"""Load a schema module that ships inside an image (the agent's, the looking glass's, the
control exporter's) by its path in the repo, so the product and the image share one file
and the image needs nothing of bgp4mesh."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_image_schema(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module

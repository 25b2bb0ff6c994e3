"""The one Jinja2 environment every daemon config and script is rendered with: templates
lay out what the plan decided; a name they use that the data lacks is an error."""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def _onoff(value: bool) -> str:
    return "on" if value else "off"


_ENV: jinja2.Environment | None = None


def _env() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            autoescape=False,
        )
        env.filters["onoff"] = _onoff
        _ENV = env
    return _ENV


def template(name: str) -> jinja2.Template:
    """One of bgp4mesh/templates, from the one environment every daemon config uses."""
    return _env().get_template(name)

"""The exporter's HTTP side: every scrape of /metrics reads WireGuard and the agent's state
anew (nothing is cached, so a scrape shows the member as it is) and answers with core's text.
A source that cannot be read fails the scrape (HTTP 500): Prometheus's `up` then says so.

  bgp4mesh-exporter IP:PORT
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from bgp4mesh_agent.schema import NODE_STATE, ROUTER_STATE

from . import core

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATE_ROOT = "/"
"""Where the agent's state files (schema paths) are read: the container's root."""


def gather() -> str:
    """The member now, as exposition text (raises when a source cannot be read)."""
    proc = subprocess.run(["wg", "show", "all", "dump"], capture_output=True, text=True, timeout=5)
    if proc.returncode != 0:
        raise RuntimeError(f"wg show all dump: {proc.stderr.strip() or proc.returncode}")
    families = core.wireguard(core.parse_dump(proc.stdout))
    path = next((p for p in (ROUTER_STATE, NODE_STATE) if _read(p) is not None), ROUTER_STATE)  # its agent writes one
    families += core.agent(path, _read(path), _read(path + ".at"), time.time())
    return core.exposition(families)


def _read(path: str) -> Optional[str]:
    try:
        with open(os.path.join(STATE_ROOT, path.lstrip("/"))) as f:
            return f.read()
    except FileNotFoundError:
        return None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self._answer(404, "text/plain", "bgp4mesh member exporter: see /metrics\n")
            return
        try:
            self._answer(200, CONTENT_TYPE, gather())
        except Exception as e:  # any source failing fails the scrape, with its reason
            print(f"bgp4mesh-exporter: scrape failed: {e}", file=sys.stderr, flush=True)
            self._answer(500, "text/plain", f"scrape failed: {e}\n")

    def _answer(self, status: int, kind: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        """Quiet: a scrape every few seconds is not news (failures are printed above)."""


def listen_address(text: str) -> tuple[str, int]:
    """IP:PORT or [IPv6]:PORT."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"listen address {text!r}: want IP:PORT")
    return host.strip("[]"), int(port)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = listen_address(argv[0])
    server_class = type("Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    server = server_class((host, port), Handler)
    print(f"bgp4mesh-exporter: listening on {argv[0]}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0

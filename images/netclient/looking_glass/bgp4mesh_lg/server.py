"""The HTTP side of the looking glass and its command line: a request is checked (source,
then core.parse_url) before birdc runs, and only an allowed query runs it.

  bgp4mesh-lg [CONFIG]     serve; CONFIG defaults to /etc/bgp4mesh/looking-glass.json
"""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from . import birdc, core
from .schema import CONFIG_PATH, Config

MAX_RUNNING = 4
"""birdc runs at once; a query beyond them gets 503 instead of a queue."""
IDLE_S = 10
"""A client that sends nothing for this long is dropped (no thread held by a silent one)."""


def log(text: str) -> None:
    print(f"[looking-glass] {text}", file=sys.stderr, flush=True)


def answer(config: Config, slots: threading.Semaphore, source: str, url: str) -> tuple[int, str]:
    """Status and text for a GET of `url` from `source`."""
    if not core.source_allowed(source, config.networks):
        return 403, f"{source} may not query this looking glass\n"
    decision = core.parse_url(url)
    if isinstance(decision, core.Reply):
        return decision.status, decision.text.rstrip("\n") + "\n"
    if not slots.acquire(blocking=False):
        return 503, "too many queries at once; try again\n"
    try:
        done = birdc.run(core.birdc_argv(config.birdc, config.socket, decision), config.timeout_ms / 1000, config.max_output)
    finally:
        slots.release()
    text = done.output.decode("utf-8", errors="replace")
    if done.timed_out:
        return 504, f"{decision.text}: no answer within {config.timeout_ms} ms\n{text}"
    if done.truncated:
        return 200, f"{text}\n[output cut at {config.max_output} bytes]\n"
    if done.status != 0:
        return 502, f"{decision.text}: birdc exited with status {done.status}\n{text}"
    return 200, text


class Handler(BaseHTTPRequestHandler):
    server_version = "bgp4mesh-lg"
    sys_version = ""
    timeout = IDLE_S

    def do_GET(self) -> None:
        self._send(*answer(self.server.config, self.server.slots, self.client_address[0], self.path))

    def _refuse_method(self) -> None:
        self._send(405, "only GET is served\n", {"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def _send(self, status: int, text: str, headers: Optional[dict[str, str]] = None) -> None:
        body = text.encode()
        self.send_response(status)
        for name, value in {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body)),
                            "Cache-Control": "no-store", **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        log(f"{self.client_address[0]} {format % args}")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: Config):
        self.config = config
        self.slots = threading.BoundedSemaphore(MAX_RUNNING)
        self.address_family = socket.AF_INET6 if ":" in config.listen else socket.AF_INET
        super().__init__((config.listen, config.port), Handler)


def main(argv: list[str]) -> int:
    if len(argv) > 1 or argv[:1] in (["-h"], ["--help"]):
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[0] if argv else CONFIG_PATH
    try:
        with open(path) as f:
            config = Config.from_json(f.read())
    except (OSError, ValueError, TypeError) as e:
        log(f"{path}: {e}")
        return 1
    server = Server(config)
    log(f"serving on {config.listen}:{server.server_address[1]} to {', '.join(config.allow)} (birdc -r on {config.socket})")
    server.serve_forever()
    return 0

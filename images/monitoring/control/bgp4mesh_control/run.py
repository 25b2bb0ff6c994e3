"""The exporter's HTTP server: every GET /metrics reads both sources afresh, at once, each
within the config's timeout, and answers in the Prometheus text format.

  bgp4mesh-control-exporter [CONFIG]      (default /etc/bgp4mesh/control-exporter.json)
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import adapters, core
from .schema import CONFIG_PATH, ControlConfig

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Exporter:
    def __init__(self, config: ControlConfig):
        self.config = config
        self.netmaker = adapters.Netmaker(config.netmaker)
        self.broker = adapters.Broker(config.broker) if config.broker else None
        self._pool = ThreadPoolExecutor(max_workers=4)

    def scrape(self) -> str:
        netmaker = self._pool.submit(self._netmaker)
        broker = self._pool.submit(self._broker) if self.broker else None
        families = netmaker.result() + (broker.result() if broker else [])
        return core.exposition(families)

    def _netmaker(self) -> list[core.Family]:
        try:
            hosts, nodes, now = self.netmaker.lists(self.config.timeout)
        except (OSError, ValueError) as e:
            adapters.log(f"netmaker: {e}")
            return core.netmaker_families(None, None, self.config.netmaker.network, 0)
        return core.netmaker_families(hosts, nodes, self.config.netmaker.network, now)

    def _broker(self) -> list[core.Family]:
        text, problem = self.broker.read(self.config.timeout)
        if problem:
            adapters.log(f"broker: {problem}")
        return core.broker_families(core.parse_sys(text))


def handler(exporter: Exporter):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] != "/metrics":
                self._answer(404, "text/plain", b"see /metrics\n")
                return
            self._answer(200, CONTENT_TYPE, exporter.scrape().encode())

        def _answer(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # one line per scrape is noise
            pass

    return Handler


def main(argv: list[str]) -> int:
    path = argv[0] if argv else CONFIG_PATH
    try:
        with open(path) as f:
            config = ControlConfig.from_json(f.read())
    except (OSError, ValueError) as e:
        print(f"bgp4mesh-control-exporter: {path}: {e}", file=sys.stderr)
        return 2
    host, _, port = config.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), handler(Exporter(config)))
    adapters.log(f"listening on {config.listen}: netmaker {config.netmaker.api_url} network {config.netmaker.network}"
                 + (f", broker {config.broker.host}:{config.broker.port}" if config.broker else ", no broker"))
    server.serve_forever()
    return 0

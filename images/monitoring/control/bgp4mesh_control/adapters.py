"""The exporter's two reads, thin on purpose (every decision is in core.py): Netmaker's
node and host lists over its REST API, and the broker's $SYS topics with mosquitto_sub.
Neither credential reaches an argument list, a log line or an exception text."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any, Optional

from .core import BROKER_TOPICS
from .schema import BrokerSource, NetmakerSource


def log(text: str) -> None:
    print(f"[control-exporter] {text}", file=sys.stderr, flush=True)


class Netmaker:
    """GET /api/hosts and /api/nodes/{network} (Netmaker v1.6.0: bare JSON lists of
    models.ApiHost and models.ApiNode; `Authorization: Bearer <master key>`, which the
    TLS front also lets through to operator routes)."""

    def __init__(self, source: NetmakerSource):
        self.base = source.api_url.rstrip("/")
        self.network = source.network
        self._headers = {"Authorization": f"Bearer {source.master_key}", "Accept": "application/json",
                         "User-Agent": "bgp4mesh-control-exporter"}
        self._tls = ssl.create_default_context(cadata=source.ca_pem) if source.ca_pem else ssl.create_default_context()

    def __repr__(self) -> str:  # never the key
        return f"Netmaker({self.base!r})"

    def lists(self, timeout: float) -> tuple[list, list, float]:
        """(hosts, nodes, the server's clock from its Date header), both calls within
        `timeout`; raises OSError or ValueError with the call and the reason."""
        deadline = time.monotonic() + timeout
        hosts, _ = self._get("/api/hosts", timeout)
        nodes, now = self._get(f"/api/nodes/{urllib.parse.quote(self.network, safe='')}", max(0.1, deadline - time.monotonic()))
        if not isinstance(hosts, list) or not isinstance(nodes, list):
            raise ValueError("Netmaker answered something other than a list")
        return hosts, nodes, now

    def _get(self, path: str, timeout: float) -> tuple[Any, float]:
        request = urllib.request.Request(self.base + path, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._tls) as answer:
                body, date = answer.read(), answer.headers.get("Date")
        except urllib.error.HTTPError as e:
            raise OSError(f"GET {path}: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise OSError(f"GET {path}: {getattr(e, 'reason', e)}") from None
        return json.loads(body), _server_time(date)


def _server_time(date: Optional[str]) -> float:
    """Go's net/http dates every answer; the check-in age is measured on the server's clock."""
    try:
        return parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        return time.time()


class Broker:
    """mosquitto_sub as the monitoring user: the credentials go in an options file of a
    private directory (XDG_CONFIG_HOME/mosquitto_sub, read by mosquitto_sub 2.0), so no
    process listing shows them."""

    def __init__(self, source: BrokerSource):
        self.host, self.port = source.host, source.port
        self._home = tempfile.mkdtemp(prefix="bgp4mesh-control-")  # 0700
        options = os.path.join(self._home, "mosquitto_sub")
        with os.fdopen(os.open(options, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(f"-u {source.username}\n-P {source.password}\n")

    def __repr__(self) -> str:
        return f"Broker({self.host!r}, {self.port})"

    def command(self, timeout: int) -> list[str]:
        """One message per topic (each is retained), tab between topic and payload (a
        topic has a space: `retained messages/count`)."""
        topics = [arg for t in BROKER_TOPICS for arg in ("-t", t.topic)]
        return ["mosquitto_sub", "-h", self.host, "-p", str(self.port), "-C", str(len(BROKER_TOPICS)),
                "-W", str(timeout), "-F", "%t\t%p", *topics]

    def read(self, timeout: int) -> tuple[str, Optional[str]]:
        """(what arrived, why not everything did: None when all topics came)."""
        env = {**os.environ, "XDG_CONFIG_HOME": self._home}
        try:
            done = subprocess.run(self.command(timeout), capture_output=True, text=True, timeout=timeout + 2, env=env)
        except (subprocess.TimeoutExpired, OSError) as e:
            return "", f"mosquitto_sub: {type(e).__name__}"
        if done.returncode == 0:
            return done.stdout, None
        return done.stdout, f"mosquitto_sub exit {done.returncode}: {done.stderr.strip()[:200]}"

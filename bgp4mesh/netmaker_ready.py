"""Netmaker's readiness check, run by NetmakerServer's `{name}-ready` command on the
machine running Pulumi (its text is the command's script: stdlib only, no bgp4mesh import).

1. Wait until /api/server/status reports db and broker connected through the TLS front.
2. Make sure the super-admin exists and is bgp4mesh's: Netmaker v1.6.0 serves
   POST /api/users/adm/createsuperadmin to anyone while no super-admin exists, so the
   first `up` takes that place itself. The route needs basic auth on, which the server
   otherwise keeps off (a super-admin can still log in with basic auth off): it is on only
   for the creation. A super-admin that bgp4mesh did not make fails the check by name.
3. Put back the runtime settings that keep the server off the Internet and basic auth off
   (they are copied from the environment on the first start only).

Environment: NM_API_URL, NM_CA_PEM, NM_MASTER_KEY, NM_READY_TIMEOUT, NM_RUNTIME_SETTINGS
(JSON), NM_ADMIN_USER, NM_ADMIN_PASSWORD, NM_HINT (appended to the timeout message).
Prints one JSON line: seconds waited, the status, the admin ("created" or "kept") and the
settings corrected.
"""

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request


class Api:
    """The Netmaker REST API through the TLS front, as the master key."""

    def __init__(self, url: str, key: str, ca_pem: str):
        self.url, self.key = url.rstrip("/"), key
        self.ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()

    def call(self, method: str, path: str, body=None):
        """The front lets the operator's routes through with the master key, so every call carries it."""
        req = urllib.request.Request(self.url + path, method=method, data=None if body is None else json.dumps(body).encode())
        req.add_header("Content-Type", "application/json")
        if self.key:
            req.add_header("Authorization", "Bearer " + self.key)
        with urllib.request.urlopen(req, timeout=10, context=self.ctx if self.url.startswith("https") else None) as resp:
            answer = json.loads(resp.read() or b"null")
        return answer.get("Response", answer) if isinstance(answer, dict) and "Response" in answer else answer


def wait_ready(api: Api, timeout: float, hint: str) -> tuple[float, dict]:
    start, last = time.monotonic(), "no answer yet"
    while True:
        try:
            status = api.call("GET", "/api/server/status")
            if status.get("db_connected") and status.get("broker_connected"):
                return time.monotonic() - start, status
            last = json.dumps(status)
        except (OSError, ValueError) as exc:  # URLError, ssl errors, refused, bad JSON
            last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if time.monotonic() - start > timeout:
            sys.exit(f"netmaker at {api.url} not ready after {timeout:.0f}s (need db_connected and broker_connected); last: {last}{hint}")
        time.sleep(0.5)


def set_settings(api: Api, want: dict) -> list[str]:
    """PUT `want` over the server's settings where they differ; the keys changed."""
    settings = api.call("GET", "/api/server/settings")
    changed = sorted(k for k, v in want.items() if settings.get(k) != v)
    if changed:
        api.call("PUT", "/api/server/settings", {**settings, **want})
        again = api.call("GET", "/api/server/settings")
        still = sorted(k for k, v in want.items() if again.get(k) != v)
        if still:
            sys.exit(f"netmaker at {api.url}: could not set runtime settings {still}")
    return changed


def super_admins(api: Api) -> list[str]:
    users = api.call("GET", "/api/users") or []
    return sorted(u["username"] for u in users if u.get("issuperadmin") or u.get("platform_role_id") == "super-admin")


def ensure_admin(api: Api, user: str, password: str) -> str:
    """Create the super-admin unless it is there; refuse one that bgp4mesh did not make;
    prove the password logs in."""
    admins = super_admins(api)
    outcome = "kept"
    if admins and user not in admins:
        sys.exit(f"netmaker at {api.url}: super-admin(s) {admins} exist that bgp4mesh did not create (it creates '{user}'); "
                 "someone may have taken the server: remove them with the master key, then run `pulumi up` again")
    if not admins:
        set_settings(api, {"basic_auth": True})  # createsuperadmin answers "basic auth is disabled" otherwise
        api.call("POST", "/api/users/adm/createsuperadmin", {"username": user, "password": password})
        outcome = "created"
    try:
        api.call("POST", "/api/users/adm/authenticate", {"username": user, "password": password})
    except urllib.error.HTTPError as exc:
        sys.exit(f"netmaker at {api.url}: super-admin '{user}' exists but its password from the Pulumi state does not log in ({exc.code})")
    return outcome


def main() -> None:
    env = os.environ
    api = Api(env["NM_API_URL"], env.get("NM_MASTER_KEY", ""), env.get("NM_CA_PEM", ""))
    waited, status = wait_ready(api, float(env.get("NM_READY_TIMEOUT", "120")), env.get("NM_HINT", ""))
    want = json.loads(env.get("NM_RUNTIME_SETTINGS", "{}"))
    admin, changed = None, []
    if api.key:
        try:
            if env.get("NM_ADMIN_USER"):
                admin = ensure_admin(api, env["NM_ADMIN_USER"], env["NM_ADMIN_PASSWORD"])
        except urllib.error.HTTPError as exc:
            sys.exit(f"netmaker at {api.url}: {exc.code} from {exc.url.removeprefix(api.url)}: {exc.read()[:300].decode(errors='replace')}")
        finally:  # basic auth goes off again even when the creation failed
            changed = set_settings(api, want) if want else []
    print(json.dumps({"ready_after_s": round(waited, 1), "status": status, "admin": admin, "settings_corrected": changed}))


if __name__ == "__main__":
    main()

#!/bin/bash
# Join the Netmaker network once, then run the netclient daemon in the foreground.
#
# Environment:
#   NETCLIENT_TOKEN      enrollment token (needed for the first start only)
#   NETCLIENT_NAME       host name on the server (default: the container hostname)
#   NETCLIENT_ENDPOINT   this host's WireGuard endpoint IP (static; no public-IP
#                        lookup, no STUN). Strongly advised in labs.
#   NETCLIENT_PORT       WireGuard listen port (static), e.g. 51821
#   NETCLIENT_INTERFACE  WireGuard interface name (must start with "netmaker")
#   NETCLIENT_FIREWALL   iptables | nftables (default: netclient picks)
#   NETCLIENT_VERBOSITY  0-4
#   NETCLIENT_CA_PEM     PEM of the CA that signed the API certificate, or
#   NETCLIENT_CA_FILE    a path to it (default /etc/bgp4mesh/ca.pem, if uploaded)
#   NETCLIENT_OFFLINE    1 (default): any HTTP(S) request to a host not in
#                        NO_PROXY fails at once on loopback instead of trying the
#                        Internet (geo lookup, public IP, update download)
#   NETCLIENT_PROXY      where such requests go instead (default: a dead loopback
#                        port; a recording proxy shows what would leave the lab)
#   NETCLIENT_NO_PROXY   extra NO_PROXY entries (hosts, domains, CIDRs) that must
#                        stay reachable when offline; the API host from the
#                        token / servers.json is added automatically
#
# /etc/netclient keeps the host identity (id, keys, server, nodes); mount a volume
# there and a restart reuses it instead of joining again.
set -euo pipefail

log() { echo "[netclient-entrypoint] $*" >&2; }

CONF=/etc/netclient
mkdir -p "$CONF"

# --- trust the private CA that signed the API certificate --------------------
ca_file="${NETCLIENT_CA_FILE:-/etc/bgp4mesh/ca.pem}"
if [[ -n "${NETCLIENT_CA_PEM:-}" ]]; then
    mkdir -p "$(dirname "$ca_file")"
    printf '%s\n' "$NETCLIENT_CA_PEM" > "$ca_file"
fi
if [[ -s "$ca_file" ]]; then
    cp "$ca_file" /usr/local/share/ca-certificates/bgp4mesh-ca.crt
    update-ca-certificates >/dev/null 2>&1 || { log "update-ca-certificates failed"; exit 1; }
    log "trusting CA $ca_file"
fi

# --- host identity seeds -------------------------------------------------------
# netclient looks up its geo location on the Internet (api.ipapi.is, cloudflare,
# ipinfo.io) on every start while location/country_code are empty, and the server
# does the same for such hosts on every check-in. Seed neutral values instead.
if [[ ! -s "$CONF/netclient.json" ]]; then
    printf '{"location":"0.000000,0.000000","country_code":"ZZ"}\n' > "$CONF/netclient.json"
fi

api_host() {   # the API host this node talks to: from the token, else servers.json
    local h=""
    if [[ -n "${NETCLIENT_TOKEN:-}" ]]; then
        h="$(printf '%s' "$NETCLIENT_TOKEN" | base64 -d 2>/dev/null | sed -n 's/.*"server":"\([^"]*\)".*/\1/p')"
    fi
    if [[ -z "$h" && -s "$CONF/servers.json" ]]; then
        # servers.json: {"<server>": {"API": "host:port", ...}}
        h="$(sed -n 's/.*"API": *"\([^"]*\)".*/\1/p' "$CONF/servers.json" | head -1)"
    fi
    h="${h#https://}"; h="${h%%/*}"; h="${h%:*}"
    printf '%s' "$h"
}

if [[ "${NETCLIENT_OFFLINE:-1}" == "1" ]]; then
    np="localhost,127.0.0.1,::1"
    host="$(api_host)"
    [[ -n "$host" ]] && np="$np,$host"
    [[ -n "${NETCLIENT_NO_PROXY:-}" ]] && np="$np,$NETCLIENT_NO_PROXY"
    proxy="${NETCLIENT_PROXY:-http://127.0.0.1:9}"   # nothing listens on port 9
    export HTTP_PROXY="$proxy" HTTPS_PROXY="$proxy" NO_PROXY="$np"
    export http_proxy="$HTTP_PROXY" https_proxy="$HTTPS_PROXY" no_proxy="$NO_PROXY"
fi

verbosity=()
[[ -n "${NETCLIENT_VERBOSITY:-}" ]] && verbosity=(-v "$NETCLIENT_VERBOSITY")

joined() { [[ -s "$CONF/servers.json" ]] && grep -q '"API": *"[^"]' "$CONF/servers.json"; }

if joined; then
    log "already joined ($(api_host)); keeping identity from $CONF"
elif [[ -n "${NETCLIENT_TOKEN:-}" ]]; then
    args=(join -t "$NETCLIENT_TOKEN" -o "${NETCLIENT_NAME:-$(hostname)}")
    [[ -n "${NETCLIENT_ENDPOINT:-}" ]] && args+=(-e "$NETCLIENT_ENDPOINT")
    [[ -n "${NETCLIENT_PORT:-}" ]] && args+=(-p "$NETCLIENT_PORT")
    [[ -n "${NETCLIENT_INTERFACE:-}" ]] && args+=(-I "$NETCLIENT_INTERFACE")
    [[ -n "${NETCLIENT_FIREWALL:-}" ]] && args+=(-f "$NETCLIENT_FIREWALL")
    log "joining as ${NETCLIENT_NAME:-$(hostname)} via $(api_host)"
    netclient "${args[@]}" "${verbosity[@]}"
    joined || { log "join did not register with a server (see output above)"; exit 1; }
else
    log "not joined and NETCLIENT_TOKEN is empty: nothing to do"
    exit 1
fi

exec netclient daemon "${verbosity[@]}"

# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
# Shared by the netclient entrypoint and the scripts bgp4mesh runs with `docker exec`
# (netclient-join, netclient-converge), so every netclient call sees the same
# identity directory, CA trust and offline proxy settings.
CONF=/etc/netclient
MESH_INTERFACE="${NETCLIENT_INTERFACE:-netmaker}"
READY_MARK=/run/bgp4mesh-netclient-ready
JOIN_LOCK=/run/bgp4mesh-netclient-join.lock   # held by netclient-join while it runs
DAEMON_PID=/run/bgp4mesh-netclient-daemon.pid   # the daemon, as its supervisor started it
AGENT_CONFIG=/etc/bgp4mesh/agent.json           # the HA agent's (bgp4mesh/agent_config.py)

log() { echo "[$(basename "$0")] $*" >&2; }

joined() { [[ -s "$CONF/servers.json" ]] && grep -q '"API": *"[^"]' "$CONF/servers.json"; }

# member_of NETWORK: this host has a node in NETWORK (as far as its local state knows)
member_of() { joined && netclient list 2>/dev/null | grep -q "\"network\": \"$1\""; }

# api_host [TOKEN]: the API host this node talks to, from the token or servers.json
api_host() {
    local h=""
    if [[ -n "${1:-}" ]]; then
        h="$(printf '%s' "$1" | base64 -d 2>/dev/null | sed -n 's/.*"server":"\([^"]*\)".*/\1/p')"
    fi
    if [[ -z "$h" && -s "$CONF/servers.json" ]]; then
        h="$(sed -n 's/.*"API": *"\([^"]*\)".*/\1/p' "$CONF/servers.json" | head -1)"
    fi
    h="${h#https://}"; h="${h%%/*}"; h="${h%:*}"
    printf '%s' "$h"
}

# offline_env [TOKEN]: with NETCLIENT_OFFLINE=1 (default), any HTTP(S) request to a host
# outside NO_PROXY fails at once on a dead loopback port instead of trying the Internet
# (geo lookup, public IP, update download); the API host stays reachable.
offline_env() {
    [[ "${NETCLIENT_OFFLINE:-1}" == "1" ]] || return 0
    local np="localhost,127.0.0.1,::1" host
    host="$(api_host "${1:-}")"
    [[ -n "$host" ]] && np="$np,$host"
    [[ -n "${NETCLIENT_NO_PROXY:-}" ]] && np="$np,$NETCLIENT_NO_PROXY"
    local proxy="${NETCLIENT_PROXY:-http://127.0.0.1:9}"   # nothing listens on port 9
    export HTTP_PROXY="$proxy" HTTPS_PROXY="$proxy" NO_PROXY="$np"
    export http_proxy="$proxy" https_proxy="$proxy" no_proxy="$np"
}

verbosity=()
if [[ -n "${NETCLIENT_VERBOSITY:-}" ]]; then verbosity=(-v "$NETCLIENT_VERBOSITY"); fi

# ---- supervision ------------------------------------------------------------------------
# supervise NAME PIDFILE DELAY COMMAND... (the bird image's supervise.sh, copied into this image)
# shellcheck source=../bird/supervise.sh
source /usr/local/lib/bgp4mesh/supervise.sh
# restart_daemon: the netclient daemon ends and its supervisor starts it again (fails when
# no daemon runs)
# interface_fault: what is wrong with the mesh interface (nothing printed: nothing): "is gone",
# or "listens on no port" (wireguard-go's bind refused: peers set, nothing received)
interface_fault() {
    ip link show dev "$MESH_INTERFACE" >/dev/null 2>&1 || { echo "is gone"; return; }
    [[ "$(wg show "$MESH_INTERFACE" listen-port 2>/dev/null)" != 0 ]] || echo "listens on no port"
}

restart_daemon() {
    local pid
    pid="$(cat "$DAEMON_PID" 2>/dev/null)" && [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null
}

# ---- retries ----------------------------------------------------------------------------
# retry_backoff SECONDS COMMAND...: run COMMAND until it succeeds, for at most SECONDS in
# all, waiting RETRY_FIRST_WAIT (default 5) s, then twice as long each time up to 30 s, plus
# up to half as much again of jitter (members that failed together do not come back
# together), between attempts. COMMAND exits 0 (done), 1 (worth another attempt) or anything
# else (it never will be: stop). ATTEMPT holds the attempt's number, for COMMAND's messages.
# Returns COMMAND's last status.
retry_backoff() {
    local budget="$1" deadline=$((SECONDS + $1)) wait="${RETRY_FIRST_WAIT:-5}" rc pause
    shift
    ATTEMPT=1
    while :; do
        rc=0; "$@" || rc=$?
        (( rc == 1 )) || return "$rc"
        pause=$((wait + RANDOM % (wait / 2 + 1)))
        if (( SECONDS + pause >= deadline )); then
            log "giving up after $ATTEMPT attempt(s) in ${budget}s"
            return 1
        fi
        log "attempt $ATTEMPT failed: again in ${pause}s"
        sleep "$pause"
        ATTEMPT=$((ATTEMPT + 1)); wait=$((wait * 2 > 30 ? 30 : wait * 2))
    done
}

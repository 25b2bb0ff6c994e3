# Shared by the netclient entrypoint and the scripts bgp4mesh runs with `docker exec`
# (netclient-join, netclient-converge), so every netclient call sees the same
# identity directory, CA trust and offline proxy settings.
CONF=/etc/netclient
MESH_INTERFACE="${NETCLIENT_INTERFACE:-netmaker}"
READY_MARK=/run/bgp4mesh-netclient-ready
JOIN_LOCK=/run/bgp4mesh-netclient-join.lock   # held by netclient-join while it runs
DAEMON_PID=/run/bgp4mesh-netclient-daemon.pid   # the daemon the entrypoint supervises

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

# ---- probes of mesh members (egress-failover, border-health) ----------------------------
# probe_start PORT ADDR...: a TCP connect to each ADDR:PORT in a fork of this shell (no new
# program); probe_collect MS: once every connect ended, or after MS milliseconds, PROBE_OK[ADDR]
# is 1 where it completed, 0 where it failed or is still pending (killed). nap MS sleeps
# without a process.
declare -A PROBE_PID=() PROBE_OK=()
probe_start() {
    local port="$1" a; shift
    for a in "$@"; do ( exec 3<>"/dev/tcp/$a/$port" ) 2>/dev/null & PROBE_PID[$a]=$!; done
}
probe_collect() {
    local a pid waited=0 pending
    while (( waited < $1 )); do
        pending=0
        for pid in "${PROBE_PID[@]}"; do kill -0 "$pid" 2>/dev/null && { pending=1; break; }; done
        (( pending )) || break
        nap 10; waited=$(( waited + 10 ))
    done
    for a in "${!PROBE_PID[@]}"; do
        pid="${PROBE_PID[$a]}"
        if kill "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null; PROBE_OK[$a]=0
        else wait "$pid"; PROBE_OK[$a]=$(( $? == 0 )); fi
    done
    PROBE_PID=()
}
# mesh_allowed_ips: `wg show` of the mesh interface's peers, "<key> <allowed ip>..." per line
# (bounded: an agent must not hang on a busy userspace WireGuard)
mesh_allowed_ips() { timeout 5 wg show "$MESH_INTERFACE" allowed-ips 2>/dev/null; }
# report FILE STATE: the agent's state (key=value lines) for `verify`, written when it changed,
# whole (a reader never sees half of it); FILE.at gets the time on every call, so a state whose
# agent died or hangs is seen to be stale
REPORTED=""
report() {
    printf '%s\n' "$EPOCHSECONDS" >"$1.at"
    [[ "$2" == "$REPORTED" ]] && return 0
    printf '%s' "$2" >"$1.new" && mv "$1.new" "$1" && REPORTED="$2"
}
# flip VALUE STREAK OK [DOWN_AFTER]: VALUE (0/1, a variable's name, array elements too) takes
# OK once OK has differed from it DOWN_AFTER (default down_after) rounds in a row when VALUE is
# 1, or up_after when 0; STREAK counts those rounds. Succeeds when VALUE flipped.
flip() {
    local -n flip_value="$1" flip_streak="$2"
    local down="${4:-$down_after}"
    if (( $3 != flip_value )); then flip_streak=$((flip_streak + 1)); else flip_streak=0; fi
    (( (flip_value && flip_streak >= down) || (!flip_value && flip_streak >= up_after) )) || return 1
    flip_value=$(( !flip_value )); flip_streak=0
}
nap() {
    local s
    (( $1 > 0 )) || return 0
    # read-write: there is always a writer, so a read on it only ever times out
    [[ -n "${NAP_FD:-}" ]] || exec {NAP_FD}<> <(:)
    printf -v s '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 ))
    read -r -t "$s" -u "$NAP_FD" _ || :
}

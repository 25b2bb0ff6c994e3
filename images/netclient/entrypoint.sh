#!/bin/bash
# Prepare the host identity, wait until it has joined, then run the netclient daemon.
#
# The enrollment token never enters the container's configuration: bgp4mesh joins
# with `docker exec -i <container> netclient-join` (token on stdin) once this
# entrypoint has marked the container ready. /etc/netclient keeps the identity (id,
# keys, server, nodes); mount a volume there and a restart needs no token at all.
#
# Environment:
#   NETCLIENT_NAME       host name on the server (default: the container hostname)
#   NETCLIENT_ENDPOINT   this host's WireGuard endpoint IP (static; no public-IP lookup)
#   NETCLIENT_PORT       WireGuard listen port (static), e.g. 51821
#   NETCLIENT_INTERFACE  WireGuard interface name (must start with "netmaker")
#   NETCLIENT_FIREWALL   iptables | nftables (default: netclient picks)
#   NETCLIENT_VERBOSITY  0-4
#   NETCLIENT_CA_FILE    PEM of the CA that signed the API certificate (default
#                        /etc/bgp4mesh/ca.pem, if uploaded)
#   NETCLIENT_OFFLINE    1 (default): HTTP(S) to hosts outside NO_PROXY fails at once
#   NETCLIENT_PROXY      where such requests go instead (default: a dead loopback port)
#   NETCLIENT_NO_PROXY   extra NO_PROXY entries that must stay reachable when offline
#   (/etc/bgp4mesh/agent.json, uploaded by bgp4mesh: run the HA agent, bgp4mesh-agent)
#   EXPORTER_LISTEN      IP:PORT: run the member exporter there (bgp4mesh-exporter:
#                        WireGuard peers and the HA agent's state for Prometheus)
#   (/etc/bgp4mesh/looking-glass.json, uploaded by bgp4mesh to a border router: run the
#   looking glass, bgp4mesh-lg)
#   EDGE_RULES           this member's edge firewall (default /etc/bgp4mesh/edge.rules,
#                        rendered by bgp4mesh): loaded before anything else, kept by
#                        edge-firewall watch
set -euo pipefail
# shellcheck source=lib.sh
source /usr/local/lib/bgp4mesh/netclient.sh

mkdir -p "$CONF" /run/bgp4mesh
rm -f "$READY_MARK"

# Every long-running process of the container runs under `supervise` (lib.sh), started
# here; they stop with this entrypoint (the daemon last: it restores the host's routes).
SUPERVISORS=()
run_supervised() {   # NAME COMMAND...
    supervise "$1" "/run/bgp4mesh/$1.pid" 1 "${@:2}" &
    SUPERVISORS+=("$!")
}
stop_all() {
    local pid
    (( ${#SUPERVISORS[@]} )) && kill -TERM "${SUPERVISORS[@]}" 2>/dev/null
    pid="$(cat "$DAEMON_PID" 2>/dev/null)" || pid=""
    [[ -n "$pid" ]] || return 0
    for _ in {1..100}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}
trap stop_all EXIT
trap 'exit 0' TERM INT

# The public mesh address is closed before netclient brings the interface up; the watcher
# keeps the rules first in line while netclient (re)writes its own.
if [[ -s "${EDGE_RULES:-/etc/bgp4mesh/edge.rules}" ]]; then
    edge-firewall apply || log "edge firewall not applied yet: edge-firewall watch keeps trying"
    run_supervised edge-firewall edge-firewall watch
fi
# The HA agent (a router's or a node's): from the start, so a router refuses the nodes and
# announces drained until its mesh works.
if [[ -s "$AGENT_CONFIG" ]]; then
    run_supervised agent bgp4mesh-agent run
fi
# Observability, from the start too: the member exporter shows a member that never joins.
if [[ -n "${EXPORTER_LISTEN:-}" ]]; then
    run_supervised exporter bgp4mesh-exporter "$EXPORTER_LISTEN"
fi
if [[ -s /etc/bgp4mesh/looking-glass.json ]]; then
    run_supervised looking-glass bgp4mesh-lg /etc/bgp4mesh/looking-glass.json
fi

ca_file="${NETCLIENT_CA_FILE:-/etc/bgp4mesh/ca.pem}"
if [[ -s "$ca_file" ]]; then
    cp "$ca_file" /usr/local/share/ca-certificates/bgp4mesh-ca.crt
    update-ca-certificates >/dev/null 2>&1 || { log "update-ca-certificates failed"; exit 1; }
    log "trusting CA $ca_file"
fi

# netclient looks up its geo location on the Internet on every start while
# location/country_code are empty, and the server does the same on every check-in.
if [[ ! -s "$CONF/netclient.json" ]]; then
    printf '{"location":"0.000000,0.000000","country_code":"ZZ"}\n' > "$CONF/netclient.json"
fi
touch "$READY_MARK"

waited=0
until joined; do
    (( waited % 60 == 0 )) && log "not joined yet: waiting for netclient-join (token on stdin)"
    sleep 0.5; waited=$((waited + 1))
done
flock "$JOIN_LOCK" true   # a join still under way finishes first
log "joined ($(api_host)); identity in $CONF"
if ip link add bgp4mesh-wgprobe type wireguard 2>/dev/null; then
    ip link del bgp4mesh-wgprobe
    log "WireGuard: the kernel's"
else
    log "WireGuard: no kernel module on this host; netclient runs it in userspace (wireguard-go on /dev/net/tun), at more CPU per packet"
fi
offline_env ""   # no token: the API host from servers.json
# netclient v1.6.0 can lose its interface for good when a peer update lands while the daemon
# starts (two configure runs race and one removes the other's UAPI socket: "could not
# configure netmaker interface: file does not exist"); the daemon keeps running without it.
# Or keep the interface with no listening port, when wireguard-go's bind was refused ("wguser:
# errno=-98", the port briefly still held): peers are set, yet nothing reaches it, and netclient
# does not retry. A pull configures it again, so a member whose interface stays gone or deaf
# for two looks pulls.
keep_interface() {
    local missing=0 fault
    while sleep 5; do
        fault="$(interface_fault)"
        if [[ -z "$fault" ]]; then missing=0; continue; fi
        missing=$((missing + 1))
        (( missing >= 2 )) || continue
        log "$MESH_INTERFACE $fault while the daemon runs: netclient pull"
        timeout 30 netclient pull >/dev/null 2>&1 || log "netclient pull failed ($?)"
        missing=0
    done
}
run_supervised interface-watch keep_interface
# The daemon: netclient-converge and the agent restart it when it is stuck (restart_daemon).
supervise "netclient daemon" "$DAEMON_PID" 1 netclient daemon "${verbosity[@]}" &
SUPERVISORS+=("$!")
wait

#!/bin/bash
# BIRD container (mock ISP and border router): one entrypoint for both images.
#   ISP_ADDRESSES="198.51.100.1/32 ..."  put on lo so they answer ping (mock ISP)
#   ROUTES_FROM_BGP_ONLY=1               drop Docker's default route; BGP provides one
#   NETCLIENT=1                          also run netclient beside BIRD (border image,
#                                        which has netclient; see start_netclient)
# With the HA agent's config (/etc/bgp4mesh/agent.json, border image) BIRD starts drained
# (bird-drained.conf); the agent, which netclient's entrypoint runs, announces normally once
# the router can serve.
# The container lives exactly as long as BIRD: if BIRD exits, so does the
# container, and Docker's restart policy brings it back.
set -euo pipefail

if [ "${NETCLIENT:-0}" = "1" ]; then
  # shellcheck source=../netclient/lib.sh
  source /usr/local/lib/bgp4mesh/netclient.sh   # supervise, AGENT_CONFIG (the border image has netclient's)
fi
CONF=/etc/bird/bird.conf   # after lib.sh, which has a CONF of its own
SOCKET=/run/bird/bird.ctl   # Debian's default, so plain `birdc` works

log() { echo "entrypoint: $*" >&2; }

# netclient runs beside BIRD under the image's supervisor (lib.sh): if it exits (e.g. the
# Netmaker server is unreachable at start), it is started again while BIRD keeps
# the sessions and the own-prefix announcement up. The mesh never takes BGP down.
NETCLIENT_PID=""
start_netclient() {
  mkdir -p /run/bgp4mesh
  supervise netclient /run/bgp4mesh/netclient.pid 3 /usr/local/bin/netclient-entrypoint &
  NETCLIENT_PID=$!
  log "netclient supervisor started (pid $NETCLIENT_PID)"
}

for addr in ${ISP_ADDRESSES:-}; do
  log "adding $addr to lo"
  ip addr replace "$addr" dev lo
done

if [ "${ROUTES_FROM_BGP_ONLY:-0}" = "1" ] && [ -n "$(ip -4 route show default)" ]; then
  log "removing Docker's default route (ROUTES_FROM_BGP_ONLY=1)"
  ip -4 route del default
fi

if [ ! -f "$CONF" ]; then
  log "FATAL: $CONF missing (config files are uploaded before start)"
  exit 1
fi
if [ -n "${AGENT_CONFIG:-}" ] && [ -s "$AGENT_CONFIG" ]; then
  bird -p -c "$CONF" || { log "FATAL: $CONF does not parse (bird -p)"; exit 1; }
  CONF=/etc/bird/bird-drained.conf
fi
if ! bird -p -c "$CONF"; then
  log "FATAL: $CONF does not parse (bird -p)"
  exit 1
fi

mkdir -p /run/bird
rm -f "$SOCKET"
log "starting BIRD ($(bird --version 2>&1))"
bird -f -c "$CONF" -s "$SOCKET" &
BIRD_PID=$!

# shellcheck disable=SC2317  # run by the trap
stop() {
  log "stopping"
  if [ -n "$NETCLIENT_PID" ]; then kill -TERM "$NETCLIENT_PID" 2>/dev/null || true; fi
  kill -TERM "$BIRD_PID" 2>/dev/null || true
}
trap stop TERM INT

if [ "${NETCLIENT:-0}" = "1" ]; then
  start_netclient
fi

# `wait` returns early when a trapped signal arrives; keep waiting until BIRD is gone.
while :; do
  status=0
  wait "$BIRD_PID" || status=$?
  kill -0 "$BIRD_PID" 2>/dev/null || break
done
if [ -n "$NETCLIENT_PID" ]; then kill -TERM "$NETCLIENT_PID" 2>/dev/null || true; fi
log "BIRD exited (status $status); container stops"
exit "$status"

#!/bin/bash
# Border router container: BIRD, and netclient when NETCLIENT_TOKEN is set.
#   ROUTES_FROM_BGP_ONLY=1  drop Docker's default route; BGP provides one
#   NETCLIENT_TOKEN=...     also join the Netmaker mesh (see start_netclient)
# The container lives exactly as long as BIRD: if BIRD exits, so does the
# container, and Docker's restart policy brings it back.
set -euo pipefail

CONF=/etc/bird/bird.conf
SOCKET=/run/bird/bird.ctl   # Debian's default, so plain `birdc` works

log() { echo "entrypoint: $*" >&2; }

# ---------------------------------------------------------------------------
# HOOK (mesh engineer): join the mesh with $NETCLIENT_TOKEN and keep netclient
# running in the background; set NETCLIENT_PID if you start a process so it is
# stopped with the container. For now this only logs.
# ---------------------------------------------------------------------------
NETCLIENT_PID=""
start_netclient() {
  log "NETCLIENT_TOKEN is set; start_netclient is a stub (netclient not started yet)"
}

if [ "${ROUTES_FROM_BGP_ONLY:-0}" = "1" ] && [ -n "$(ip -4 route show default)" ]; then
  log "removing Docker's default route (ROUTES_FROM_BGP_ONLY=1)"
  ip -4 route del default
fi

if [ ! -f "$CONF" ]; then
  log "FATAL: $CONF missing (config files are uploaded before start)"
  exit 1
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

stop() {
  log "stopping"
  [ -n "$NETCLIENT_PID" ] && kill -TERM "$NETCLIENT_PID" 2>/dev/null || true
  kill -TERM "$BIRD_PID" 2>/dev/null || true
}
trap stop TERM INT

if [ -n "${NETCLIENT_TOKEN:-}" ]; then
  start_netclient
fi

# `wait` returns early when a trapped signal arrives; keep waiting until BIRD is gone.
while :; do
  status=0
  wait "$BIRD_PID" || status=$?
  kill -0 "$BIRD_PID" 2>/dev/null || break
done
[ -n "$NETCLIENT_PID" ] && kill -TERM "$NETCLIENT_PID" 2>/dev/null || true
log "BIRD exited (status $status); container stops"
exit "$status"

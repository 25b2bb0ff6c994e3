#!/bin/bash
# BIRD container (mock ISP and border router): one entrypoint for both images.
#   ISP_ADDRESSES="198.51.100.1/32 2001:db8:5100::1/128 ..."  put on lo so they answer ping (mock ISP)
#   ROUTES_FROM_BGP_ONLY=1               drop Docker's default route; BGP provides one
#   NETCLIENT=1                          also run netclient beside BIRD (border image,
#                                        which has netclient; see start_netclient)
#   BIRD_EXPORTER_LISTEN=IP:PORT         run prometheus-bird-exporter there (see start_exporter)
# With the HA agent's config (/etc/bgp4mesh/agent.json, border image) BIRD starts drained
# (bird-drained.conf); the agent, which netclient's entrypoint runs, announces normally once
# the router can serve.
# The container lives exactly as long as BIRD: if BIRD exits, so does the
# container, and Docker's restart policy brings it back.
set -euo pipefail

# shellcheck source=supervise.sh
source /usr/local/lib/bgp4mesh/supervise.sh
if [ "${NETCLIENT:-0}" = "1" ]; then
  # shellcheck source=../netclient/lib.sh
  source /usr/local/lib/bgp4mesh/netclient.sh   # AGENT_CONFIG (the border image has netclient's)
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

# Debian's prometheus-bird-exporter (1.4.1) reads BIRD over its socket on every scrape:
# -bird.v2 for BIRD 2's channels (one series per channel, label ip_version); -format.new
# (bird_protocol_up, bird_protocol_prefix_import_count...) and -proto.bfd (bird_bfd_session_up)
# are its defaults, named here because bgp4mesh/metrics.py reads exactly those series.
# Supervised like netclient: a dead exporter never takes BIRD down.
EXPORTER_PID=""
start_exporter() {
  mkdir -p /run/bgp4mesh
  supervise bird-exporter /run/bgp4mesh/bird-exporter.pid 1 prometheus-bird-exporter \
    -bird.v2 -bird.socket="$SOCKET" -format.new=true -proto.bfd=true \
    -web.listen-address="$BIRD_EXPORTER_LISTEN" &
  EXPORTER_PID=$!
  log "bird exporter supervisor started on $BIRD_EXPORTER_LISTEN (pid $EXPORTER_PID)"
}

for addr in ${ISP_ADDRESSES:-}; do
  log "adding $addr to lo"
  ip addr replace "$addr" dev lo
done

for family in -4 -6; do
  if [ "${ROUTES_FROM_BGP_ONLY:-0}" = "1" ] && [ -n "$(ip "$family" route show default)" ]; then
    log "removing Docker's default route, ip $family (ROUTES_FROM_BGP_ONLY=1)"
    ip "$family" route del default
  fi
done

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
  for pid in $NETCLIENT_PID $EXPORTER_PID; do kill -TERM "$pid" 2>/dev/null || true; done
  kill -TERM "$BIRD_PID" 2>/dev/null || true
}
trap stop TERM INT

if [ "${NETCLIENT:-0}" = "1" ]; then
  start_netclient
fi
if [ -n "${BIRD_EXPORTER_LISTEN:-}" ]; then
  start_exporter
fi

# `wait` returns early when a trapped signal arrives; keep waiting until BIRD is gone.
while :; do
  status=0
  wait "$BIRD_PID" || status=$?
  kill -0 "$BIRD_PID" 2>/dev/null || break
done
for pid in $NETCLIENT_PID $EXPORTER_PID; do kill -TERM "$pid" 2>/dev/null || true; done
log "BIRD exited (status $status); container stops"
exit "$status"

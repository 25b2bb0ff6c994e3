#!/bin/bash
# Mock ISP / plain BIRD container.
#   ISP_ADDRESSES="198.51.100.1/32 ..."  put on lo so they answer ping
#   ROUTES_FROM_BGP_ONLY=1               drop Docker's default route; BGP provides one
# Then check /etc/bird/bird.conf and run BIRD in the foreground as PID 1.
set -euo pipefail

CONF=/etc/bird/bird.conf
SOCKET=/run/bird/bird.ctl   # Debian's default, so plain `birdc` works

log() { echo "entrypoint: $*" >&2; }

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
if ! bird -p -c "$CONF"; then
  log "FATAL: $CONF does not parse (bird -p)"
  exit 1
fi

mkdir -p /run/bird
rm -f "$SOCKET"
log "starting BIRD ($(bird --version 2>&1))"
exec bird -f -c "$CONF" -s "$SOCKET"

#!/bin/bash
# Start netmaker so that it never needs the Internet:
#  1. answer PUBLIC_IP_SERVICE on loopback with SERVER_HOST (netmaker calls its
#     public-IP lookup on startup, per enrollment token and per registration,
#     even when SERVER_HTTP_HOST etc. are set; the first URL that answers 200 wins,
#     so ifconfig.me / ipify / ipinfo are never tried);
#  2. wait (bounded) for the MQTT broker: netmaker exits if it cannot connect
#     within ~10 s of trying;
#  3. exec netmaker as PID 1's only long-lived child.
set -eu

ip_dir=/run/netmaker-publicip
mkdir -p "$ip_dir"
printf '%s' "${SERVER_HOST:-127.0.0.1}" > "$ip_dir/ip"
port="${PUBLIC_IP_RESPONDER_PORT:-8099}"
busybox httpd -p "127.0.0.1:$port" -h "$ip_dir"

broker="${SERVER_BROKER_ENDPOINT:-}"
if [ -n "$broker" ]; then
    hostport="${broker#*://}"
    hostport="${hostport%%/*}"
    host="${hostport%:*}"
    bport="${hostport##*:}"
    [ "$bport" = "$hostport" ] && bport=1883
    wait_s="${BROKER_WAIT_SECONDS:-60}"
    i=0
    until timeout 1 bash -c ">/dev/tcp/$host/$bport" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -ge "$wait_s" ]; then
            echo "netmaker-entrypoint: broker $host:$bport not reachable after ${wait_s}s; starting anyway" >&2
            break
        fi
        sleep 1
    done
fi

exec /usr/local/bin/netmaker "$@"

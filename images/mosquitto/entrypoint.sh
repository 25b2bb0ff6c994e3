#!/bin/sh
# Hash the broker user's password into mosquitto's password file, then run
# mosquitto in the foreground. The password comes from a 0600 file that
# bgp4mesh uploads (MQ_PASSWORD_FILE) and goes to mosquitto_passwd on stdin: it
# is never in the environment or an argument list. Netmaker hands this same
# user to every netclient; the rendered ACL limits what clients can do with it.
set -eu

: "${MQ_USERNAME:?MQ_USERNAME must be set (the MQTT user of the Netmaker server)}"
secret="${MQ_PASSWORD_FILE:-/run/secrets/mq-password}"
passwd=/run/mosquitto/passwd

if [ ! -s "$secret" ]; then
  echo "mosquitto-entrypoint: no password in $secret (bgp4mesh uploads it before the first start)" >&2
  exit 1
fi
umask 077
rm -f "$passwd"
pw="$(cat "$secret")"
printf '%s\n%s\n' "$pw" "$pw" | mosquitto_passwd -c "$passwd" "$MQ_USERNAME" >/dev/null
chown mosquitto:mosquitto "$passwd"

# A stack with monitoring: the clients' listeners' file (netmaker_env.CLIENTS_PASSWD) also
# holds the control-plane exporter's user, whose password comes the same way; the server
# listener's file never does.
if [ -n "${MONITOR_USERNAME:-}" ]; then
  monitor_secret="${MONITOR_PASSWORD_FILE:-/run/secrets/mq-monitor-password}"
  if [ ! -s "$monitor_secret" ]; then
    echo "mosquitto-entrypoint: no password in $monitor_secret for $MONITOR_USERNAME" >&2
    exit 1
  fi
  clients=/run/mosquitto/clients-passwd
  rm -f "$clients"
  cp "$passwd" "$clients"
  pw="$(cat "$monitor_secret")"
  printf '%s\n%s\n' "$pw" "$pw" | mosquitto_passwd "$clients" "$MONITOR_USERNAME" >/dev/null
  chown mosquitto:mosquitto "$clients"
fi

exec mosquitto -c /etc/mosquitto/mosquitto.conf "$@"

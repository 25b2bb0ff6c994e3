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

exec mosquitto -c /etc/mosquitto/mosquitto.conf "$@"

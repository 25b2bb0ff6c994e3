#!/bin/sh
# Make the broker's password file from the environment, then run mosquitto in
# the foreground. Netmaker hands these same credentials to every netclient.
set -eu

: "${MQ_USERNAME:?MQ_USERNAME must be set (the Netmaker server's MQTT user)}"
: "${MQ_PASSWORD:?MQ_PASSWORD must be set}"

passwd=/run/mosquitto/passwd
umask 077
rm -f "$passwd"
mosquitto_passwd -b -c "$passwd" "$MQ_USERNAME" "$MQ_PASSWORD"
chown mosquitto:mosquitto "$passwd"
unset MQ_PASSWORD

exec mosquitto -c /etc/mosquitto/mosquitto.conf "$@"

#!/bin/sh
# As eclipse-mosquitto's: give /mosquitto to the mosquitto user, then run the command.
set -e
user="$(id -u)"
if [ "$user" = '0' ]; then
  if [ -d /mosquitto ]; then chown -R mosquitto:mosquitto /mosquitto || true; fi
fi
exec "$@"

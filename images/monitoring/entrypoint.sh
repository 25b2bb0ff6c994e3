#!/bin/bash
# The monitoring container: Prometheus on $PROMETHEUS_LISTEN (its API and console pages;
# default 0.0.0.0:9090, a lab's networks; a real host's loopback, with host networking),
# Alertmanager on 127.0.0.1:9093 (Prometheus's alerts, read through its API), and, when
# bgp4mesh uploaded its config, the control-plane exporter on 127.0.0.1:9587. Each runs
# under supervise (supervise.sh) and is started again a second after it exits; Prometheus
# and Alertmanager as Debian's `prometheus` user. A config promtool or amtool rejects stops
# the container at once, with the reason in its log.
#   PROMETHEUS_RETENTION   how long Prometheus keeps samples (default 2d: a lab's window)
#   PROMETHEUS_LISTEN      ip:port Prometheus serves on (bgp4mesh sets the plan's)
set -euo pipefail
# shellcheck source=../bird/supervise.sh
source /usr/local/lib/bgp4mesh/supervise.sh

ETC=/etc/prometheus
CONTROL_CONFIG=/etc/bgp4mesh/control-exporter.json
DATA=/var/lib/prometheus

log() { echo "monitoring: $*" >&2; }

promtool check config "$ETC/prometheus.yml" >&2 || { log "FATAL: $ETC/prometheus.yml rejected by promtool"; exit 1; }
amtool check-config "$ETC/alertmanager.yml" >&2 || { log "FATAL: $ETC/alertmanager.yml rejected by amtool"; exit 1; }

mkdir -p /run/bgp4mesh
SUPERVISORS=()
run_supervised() {   # NAME COMMAND...
    supervise "$1" "/run/bgp4mesh/$1.pid" 1 "${@:2}" &
    SUPERVISORS+=("$!")
}
# shellcheck disable=SC2317  # run by the trap
stop_all() {
    local pidfile pid
    kill -TERM "${SUPERVISORS[@]}" 2>/dev/null || true
    for pidfile in /run/bgp4mesh/*.pid; do   # Prometheus closes its database before the container ends
        pid="$(cat "$pidfile" 2>/dev/null)" || continue
        for _ in {1..80}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
}
trap 'stop_all; exit 0' TERM INT

as_prometheus=(setpriv --reuid=prometheus --regid=prometheus --clear-groups)
run_supervised alertmanager "${as_prometheus[@]}" prometheus-alertmanager \
    --config.file="$ETC/alertmanager.yml" --storage.path="$DATA/alertmanager" \
    --web.listen-address=127.0.0.1:9093 --cluster.listen-address=
run_supervised prometheus "${as_prometheus[@]}" prometheus \
    --config.file="$ETC/prometheus.yml" --storage.tsdb.path="$DATA/metrics2" \
    --storage.tsdb.retention.time="${PROMETHEUS_RETENTION:-2d}" \
    --web.listen-address="${PROMETHEUS_LISTEN:-0.0.0.0:9090}" \
    --web.console.templates="$ETC/consoles" --web.console.libraries="$ETC/console_libraries"
if [[ -s "$CONTROL_CONFIG" ]]; then
    run_supervised control-exporter bgp4mesh-control-exporter "$CONTROL_CONFIG"
fi
log "started: ${#SUPERVISORS[@]} supervised processes"
wait

# shellcheck shell=bash
# The one supervisor of bgp4mesh's images, sourced by the BIRD entrypoint (mock ISP and
# border router) and by netclient's lib.sh (mesh members): the bird image is the smallest of
# them, so it ships this file and the netclient image copies it from there.
#
# supervise NAME PIDFILE DELAY COMMAND...: run COMMAND, and again DELAY seconds after each exit,
# with its pid in PIDFILE: the one way a long-running process of these images runs. Run it in
# the background; a TERM to it ends COMMAND too. A process is restarted by ending it
# (lib.sh's restart_daemon).
supervise() {
    local name="$1" pidfile="$2" delay="$3" child="" status
    shift 3
    trap '[[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null; exit 0' TERM
    while :; do
        "$@" &
        child=$!
        echo "$child" >"$pidfile"
        status=0; wait "$child" || status=$?
        echo "[$(basename "$0")] $name exited ($status); starting it again in ${delay}s" >&2
        sleep "$delay"
    done
}

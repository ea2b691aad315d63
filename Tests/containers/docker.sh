#!/bin/bash
# A real Docker engine: Debian's docker.io, started by this test with its own data-root,
# exec-root and socket (no bridge, no iptables), an image made offline (`docker import` of a
# tree holding the workload binary and the libraries ldd lists — nothing is pulled), and a
# named container with Compose labels running a leaker in its own network namespace
# (--network none: loopback only). closewaitd on the host reads Docker's state under that
# data-root ([containers] docker_roots) and must name the container in the alert (text and
# CLOSEWAIT_CONTAINER_NAME, CLOSEWAIT_COMPOSE_*), snapshot --json, status, the metrics
# textfile and `explain NAME`. Everything started is ended by pid from a trap.
#
# Usage: Tests/containers/docker.sh [BIN_DIR]   (default: swift build --show-bin-path)
set -u
HERE=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=$(cd "${1:-$(cd "$HERE" && swift build --show-bin-path)}" && pwd)
WORK=$(mktemp -d /tmp/closewaitd-docker.XXXXXX)
NAME=shop-orders-$$
IMAGE=closewaitd-test-leaker:$$
DOCKERD="" DAEMON=""
DOCKER_BIN=/usr/bin/docker   # Debian's client, the engine's own version
D() { "$DOCKER_BIN" -H "unix://$WORK/docker.sock" "$@"; }
log() { echo "docker-test: $*"; }
cleanup() {
    if [ -n "$DOCKERD" ]; then
        D rm -f "$NAME" >/dev/null 2>&1
        D rmi -f "$IMAGE" >/dev/null 2>&1
        # dockerd stops the containerd it started; both by pid, then wait.
        local containerd
        containerd=$(pgrep -P "$DOCKERD" containerd)
        kill "$DOCKERD" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$DOCKERD" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DOCKERD" $containerd 2>/dev/null
    fi
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    umount -R "$WORK/data" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
die() {
    log "FAIL - $*"; echo "--- daemon"; tail -5 "$WORK/daemon.log" 2>/dev/null
    echo "--- container"; D logs --tail 5 "$NAME" 2>&1; echo "--- dockerd"; tail -3 "$WORK/dockerd.log"; exit 1
}
. "$HERE/Tests/containers/lib.sh"
command -v dockerd >/dev/null && [ -x "$DOCKER_BIN" ] || die "Docker is not installed (apt-get install docker.io)"

dockerd --data-root "$WORK/data" --exec-root "$WORK/exec" -H "unix://$WORK/docker.sock" \
    --pidfile "$WORK/dockerd.pid" --iptables=false --ip6tables=false --bridge=none >"$WORK/dockerd.log" 2>&1 &
DOCKERD=$!
if ! wait_for 60 D info >/dev/null 2>&1; then
    # The engine itself must start here; if it cannot, that is this machine: say so and stop.
    log "SKIP - dockerd does not start on this machine: $(tail -2 "$WORK/dockerd.log" | tr '\n' ' ')"
    exit 0
fi
"$HERE/packaging/container/mkroot.sh" "$WORK/root" "$BIN_DIR/closewaitd-workload:/usr/bin/closewaitd-workload" \
    || die "could not assemble the image's root"
tar -C "$WORK/root" -c . | D import - "$IMAGE" >/dev/null || die "docker import failed"
log "image $IMAGE imported offline ($(du -sh "$WORK/root" | cut -f1) root)"

write_config "$(printf '[metrics]\ntextfile = "%s"\n[containers]\ndocker_roots = ["%s"]' "$WORK/closewaitd.prom" "$WORK/data")"
start_daemon

# --network none turns IPv6 off on lo; the workload listens on ::1 as well.
CID=$(D run -d --name "$NAME" --network none --sysctl net.ipv6.conf.all.disable_ipv6=0 --sysctl net.ipv6.conf.lo.disable_ipv6=0 --label com.docker.compose.project=shop \
    --label com.docker.compose.service=orders "$IMAGE" /usr/bin/closewaitd-workload --processes 1 --v4 6 --duration 120 \
    2>"$WORK/run.err") || die "docker run: $(cat "$WORK/run.err")"
log "container $CID ($NAME)"
[ "$(D ps --no-trunc --format '{{.ID}} {{.Names}}' --filter id="$CID")" = "$CID $NAME" ] || die "docker ps does not list $CID as $NAME"

alerted() { grep -q "CLOSEWAIT_CONTAINER_ID=$CID CLOSEWAIT_CONTAINER_NAME=$NAME" "$WORK/daemon.log"; }
wait_for 30 alerted || die "no alert naming $NAME ($CID)"
line=$(grep "CLOSEWAIT_CONTAINER_ID=$CID" "$WORK/daemon.log" | head -1)
log "alert: $(echo "$line" | cut -c1-160)"
echo "$line" | grep -q "(container $NAME (docker:${CID:0:12}), pid [0-9]* inside[^)]*) holds 6 CLOSE_WAIT sockets" \
    || die "the alert text does not name the container"
echo "$line" | grep -q "CLOSEWAIT_COMPOSE_PROJECT=shop CLOSEWAIT_COMPOSE_SERVICE=orders" || die "no Compose fields"
log "PASS - the alert names $NAME (docker:${CID:0:12}) with its Compose project and service"

snapshot_container "$CID" "(c['runtime'], c['name'], c['composeProject'], c['composeService']) == ('docker', '$NAME', 'shop', 'orders')" \
    || die "snapshot --json does not name the container"
log "PASS - snapshot --json names it (runtime docker, name, composeProject/Service)"

wait_for 10 grep -q "container=\"$NAME\",pod=\"\",namespace=\"\"} 6" "$WORK/closewaitd.prom" \
    || die "the metrics textfile has no series with container=\"$NAME\""
"$BIN_DIR/closewaitd" status --state-file "$WORK/state.json" >"$WORK/status.txt"
grep -q " $NAME pid [0-9]" "$WORK/status.txt" || die "closewaitd status does not show $NAME: $(cat "$WORK/status.txt")"
log "PASS - the metrics carry container=\"$NAME\" and closewaitd status shows it"

"$BIN_DIR/closewaitd" explain "$NAME" --config "$WORK/closewaitd.toml" --state-file "$WORK/state.json" >"$WORK/explain.txt" \
    || die "explain $NAME failed"
grep -q "(container $NAME (docker:${CID:0:12}), pid [0-9]* inside" "$WORK/explain.txt" || die "explain does not name it: $(head -3 "$WORK/explain.txt")"
log "PASS - closewaitd explain $NAME finds it"

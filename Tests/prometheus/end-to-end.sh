#!/bin/bash
# End to end against a real Prometheus (Debian's `prometheus` binary): closewaitd serves
# GET /metrics on loopback, Prometheus scrapes it every second and evaluates the shipped
# alerting rules (their `for:` shortened to 2s for the test), a real leaking workload holds
# 120 CLOSE_WAIT sockets. Asserts through Prometheus's HTTP API that the leaker's series
# carries its pid and count, and that the shipped CloseWaitLeakCount alert reaches firing.
# Loopback only; every process is ended by pid from the trap.
#
# Usage: Tests/prometheus/end-to-end.sh [BIN_DIR]   (default: swift build --show-bin-path)
set -u
HERE=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=${1:-$(cd "$HERE" && swift build --show-bin-path)}
WORK=$(mktemp -d /tmp/closewaitd-e2e.XXXXXX)
PIDS=()
log() { echo "prometheus-e2e: $*"; }
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
die() { log "FAIL - $*"; for f in "$WORK"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }
wait_for() {  # SECONDS WHAT COMMAND...
    local deadline=$((SECONDS + $1)) what=$2; shift 2
    until "$@"; do [ $SECONDS -ge $deadline ] && return 1; sleep 0.5; done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

command -v prometheus >/dev/null || die "prometheus is not installed (apt-get install prometheus)"
METRICS_PORT=$(free_port)
PROM_PORT=$(free_port)

"$BIN_DIR/closewaitd-workload" --processes 1 --v4 120 --duration 300 >"$WORK/workload.out" 2>"$WORK/workload.log" &
PIDS+=($!)
wait_for 60 "workload" grep -q '"ready":true' "$WORK/workload.out" || die "the workload did not get ready"
LEAKER=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["holders"][0])' "$WORK/workload.out")
log "leaker pid $LEAKER holds 120 CLOSE_WAIT sockets"

cat >"$WORK/closewaitd.toml" <<EOF
[daemon]
interval = "1s"
[metrics]
listen = "127.0.0.1:$METRICS_PORT"
EOF
"$BIN_DIR/closewaitd" run --config "$WORK/closewaitd.toml" --log stderr --state-file "" 2>"$WORK/closewaitd.log" &
PIDS+=($!)
wait_for 30 "closewaitd" curl -sf -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics" || die "closewaitd does not serve /metrics"
log "closewaitd serves http://127.0.0.1:$METRICS_PORT/metrics"

sed 's/^\( *for:\) .*/\1 2s/' "$HERE/packaging/prometheus/closewaitd.rules.yml" >"$WORK/rules.yml"
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$WORK/rules.yml"]
scrape_configs:
  - job_name: closewaitd
    static_configs: [{targets: ["127.0.0.1:$METRICS_PORT"]}]
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn 2>"$WORK/prometheus.log" &
PIDS+=($!)
API="http://127.0.0.1:$PROM_PORT/api/v1"
wait_for 60 "prometheus" curl -sf -o /dev/null "$API/status/buildinfo" || die "prometheus did not start"
log "prometheus $(curl -s "$API/status/buildinfo" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["version"])') on 127.0.0.1:$PROM_PORT"

series_ok() {
    curl -s -G "$API/query" --data-urlencode "query=closewaitd_process_close_wait_sockets{pid=\"$LEAKER\"}" >"$WORK/query.json" &&
        python3 - "$WORK/query.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
sys.exit(0 if len(r) == 1 and r[0]["value"][1] == "120" and r[0]["metric"]["comm"] == "closewaitd-work" and r[0]["metric"]["job"] == "closewaitd" else 1)
EOF
}
wait_for 60 "the leaker's series" series_ok || die "Prometheus has no closewaitd_process_close_wait_sockets{pid=\"$LEAKER\"} = 120: $(cat "$WORK/query.json")"
log "PASS - Prometheus holds closewaitd_process_close_wait_sockets{pid=\"$LEAKER\",comm=\"closewaitd-work\"} 120"

firing() {
    curl -s "$API/alerts" >"$WORK/alerts.json" &&
        python3 - "$WORK/alerts.json" "$LEAKER" <<'EOF'
import json, sys
alerts = json.load(open(sys.argv[1]))["data"]["alerts"]
sys.exit(0 if any(a["labels"]["alertname"] == "CloseWaitLeakCount" and a["labels"].get("pid") == sys.argv[2]
                  and a["labels"]["severity"] == "warning" and a["state"] == "firing" for a in alerts) else 1)
EOF
}
wait_for 60 "CloseWaitLeakCount firing" firing || die "the shipped CloseWaitLeakCount alert did not fire for pid $LEAKER: $(cat "$WORK/alerts.json")"
log "PASS - the shipped CloseWaitLeakCount alert is firing for pid $LEAKER (severity warning)"
up=$(curl -s -G "$API/query" --data-urlencode 'query=up{job="closewaitd"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')
[ "$up" = 1 ] || die "up{job=\"closewaitd\"} is $up"
log "PASS - up{job=\"closewaitd\"} = 1"

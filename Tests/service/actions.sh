# actions.sh — sourced by service-test.sh: [[action]] in the booted systemd, as the shipped
# hardened service (DynamicUser) runs them. orders.service leaks a growing number of CLOSE_WAIT
# sockets (critical fd-exhaustion in seconds); its holder is a child of the unit's main
# process and renames itself to hostile bytes. Checks, in order: restart_unit's dry run (says
# what it would restart, restarts nothing); without the polkit rule polkit says no (said);
# with the rule from `closewaitd polkit-rule` the unit is restarted once — alert, action,
# recovery in that order in the journal — and the leak that comes back is held by the unit's
# cooldown; with a short cooldown, max_per_hour holds; exec gets the alert (escaped) in its
# environment, a hanging command is killed at its timeout, a flood is cut; destroy_sockets
# (with its drop-in) destroys a static leaker's CLOSE_WAIT sockets and nothing of a bystander's.
# Uses C, check, pass, fail, log, wait_for, $WORK from service-test.sh.

A_CROSSED=e185260dfe7242159da48af8f29f2002
A_RECOVERED=0e38331a0a3c46a499f602cb5680faeb
A_STARTED=1f7c2e9a4b6d4c08a3e5f9d1b7c2a604
A_SKIPPED=6a0d3b8e2f1c47d59e4a8c7b3d2f1e05
A_FINISHED=c4e8a1f07b3d4e2a9f6c5b8d1e7a3f92
# The holder's comm: "ord", newline, ESC [ 2 J (clear screen), an invalid UTF-8 byte.
A_HOSTILE_HEX=6f72640a1b5b324aff
A_HOSTILE_ESCAPED='ord\n\x1b[2J\xff'

# --all: journalctl -o json shows fields over 4 KiB (a command's output) as null without it.
a_journal() { C journalctl -u closewaitd.service -o json --all --no-pager "$@"; }
a_count() { a_journal "$@" | grep -c .; }
a_has() { a_journal "$@" | grep -q .; }
a_main() { C systemctl show -p MainPID --value "$1"; }
# a_report ACTION SECONDS FILE: waits for ACTION's "finished" entry, writes the first to FILE.
a_report() {
    a_finished() { a_has MESSAGE_ID=$A_FINISHED CLOSEWAIT_ACTION="$1"; }
    wait_for "$2" "action $1's report" a_finished "$1" || return 1
    a_journal MESSAGE_ID=$A_FINISHED CLOSEWAIT_ACTION="$1" | head -1 >"$3"
}

# a_config MAX_PER_HOUR ACTIONS: fast ticks, fd-exhaustion critical within 20 minutes, reminders
# every 3 s (so an action added by a reload sees the alert that already fires), the actions.
a_config() {
    C sh -c "cat > /etc/closewaitd/closewaitd.toml" <<CONF
[daemon]
interval = "1s"
window = "10s"
[alerts]
hold = 2
reminder = "3s"
cooldown = "0"
[thresholds]
count_warning = 5
count_critical = 100000
growth_warning = 0
growth_critical = 0
age_warning = 0
age_critical = 0
exhaustion_warning = "40min"
exhaustion_critical = "30min"
[actions]
max_per_hour = $1
$2
CONF
}

restart_action() {  # restart_action NAME COOLDOWN [DRY_RUN]
    printf '[[action]]\nname = "%s"\nlevel = "critical"\nreason = "fd-exhaustion"\nmatch_unit = "orders.service"\nrestart_unit = true\ncooldown = "%s"\ndry_run = %s\ntimeout = "20s"\n' \
        "$1" "$2" "${3:-false}"
}

# orders.service: 10 sockets at once, 3 more a second; its holder (a child of the main
# process) may open 1024 fds, so exhaustion is predicted minutes away.
C sh -c 'cat > /etc/systemd/system/orders.service' <<UNIT
[Unit]
Description=orders (leaks CLOSE_WAIT sockets; closewaitd's service test)
[Service]
ExecStart=/mnt/pkg/closewaitd-workload --processes 1 --v4 10 --grow-per-second 3 --grow-max 600 --nofile 1024 --comm-hex $A_HOSTILE_HEX --duration 600
UNIT
C systemctl daemon-reload
a_config 10 "$(restart_action orders-dry 1h true)"
C systemctl restart closewaitd.service
check "orders.service (a leaking service) starts" C systemctl start orders.service
ORDERS_MAIN=$(a_main orders.service)
log "orders.service main pid $ORDERS_MAIN"

# --- dry run: says what it would restart and why, restarts nothing ---------------------
if a_report orders-dry 60 "$WORK/dry.json"; then
    python3 - "$WORK/dry.json" "$ORDERS_MAIN" <<'PY' && pass "dry run: 'would restart', nothing done" || fail "dry run report"
import json, sys
e = json.loads(open(sys.argv[1]).read())
print("service-test: dry run:", e["MESSAGE"])
ok = (e.get("CLOSEWAIT_ACTION_UNIT") == "orders.service"
      and f"would restart orders.service (the main process of orders.service, pid {sys.argv[2]}, is its parent); dry run, nothing done" in e["MESSAGE"])
sys.exit(0 if ok else 1)
PY
    check "dry run journaled before as dry-run" a_has MESSAGE_ID=$A_STARTED CLOSEWAIT_ACTION=orders-dry CLOSEWAIT_ACTION_STATE=dry-run
    check "dry run restarted nothing (main pid $ORDERS_MAIN)" test "$(a_main orders.service)" = "$ORDERS_MAIN"
else
    fail "the dry run's report"
    a_journal | tail -5 | sed 's/^/service-test: journal: /'
fi

# --- a real restart without the polkit rule: polkit says no, and it is said --------------
C rm -f /etc/polkit-1/rules.d/50-closewaitd.rules
a_config 10 "$(restart_action orders-nopolkit 1h)"
C systemctl reload closewaitd.service
if a_report orders-nopolkit 30 "$WORK/denied.json"; then
    python3 - "$WORK/denied.json" <<'PY' && pass "without the polkit rule the restart is refused by polkit, said with the fix" || fail "polkit refusal report"
import json, sys
e = json.loads(open(sys.argv[1]).read())
print("service-test: no rule:", e["MESSAGE"][:220])
sys.exit(0 if e.get("CLOSEWAIT_ACTION_RESULT") == "failure" and "closewaitd polkit-rule" in e.get("CLOSEWAIT_ACTION_ERROR", "") else 1)
PY
    check "nothing restarted without the rule" test "$(a_main orders.service)" = "$ORDERS_MAIN"
else
    fail "the refused restart's report"
fi

# --- with the rule: restarted once; the leak comes back and the cooldown holds --------------
a_config 10 "$(restart_action orders-restart 1h)"
C sh -c 'closewaitd polkit-rule > /etc/polkit-1/rules.d/50-closewaitd.rules'
C cat /etc/polkit-1/rules.d/50-closewaitd.rules >"$WORK/polkit.rules"
check "polkit-rule allows restart of orders.service only" grep -q 'var units = \["orders.service"\];' "$WORK/polkit.rules"
C closewaitd check-config /etc/closewaitd/closewaitd.toml >"$WORK/check-actions.txt" 2>&1
check "check-config sees the rule naming the unit" grep -q "restart_unit: orders.service; /etc/polkit-1/rules.d/50-closewaitd.rules names it" "$WORK/check-actions.txt"
C systemctl reload closewaitd.service
if a_report orders-restart 45 "$WORK/restart.json"; then
    NEW_MAIN=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read()).get("CLOSEWAIT_ACTION_MAIN_PID_AFTER",""))' "$WORK/restart.json")
    OLD_HOLDER=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["CLOSEWAIT_PID"])' "$WORK/restart.json")
    python3 - "$WORK/restart.json" "$ORDERS_MAIN" <<'PY' && pass "restarted: $(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["MESSAGE"][:230])' "$WORK/restart.json")" || fail "the restart's report"
import json, sys
e = json.loads(open(sys.argv[1]).read())
ok = (e.get("CLOSEWAIT_ACTION_RESULT") == "success" and e.get("CLOSEWAIT_ACTION_MAIN_PID_BEFORE") == sys.argv[2]
      and e.get("CLOSEWAIT_ACTION_MAIN_PID_AFTER") not in (None, "0", sys.argv[2])
      and e.get("CLOSEWAIT_ACTION_UNIT_STATE") == "active (running)" and e.get("CLOSEWAIT_REASON") == "fd-exhaustion")
if not ok: print("service-test: restart:", e)
sys.exit(0 if ok else 1)
PY
    check "orders.service runs its new main process $NEW_MAIN" test "$(a_main orders.service)" = "$NEW_MAIN"
    # alert -> action started -> finished -> recovery, for the old holder, in the journal's order
    # (the recovery comes with the first tick that finds the holder gone).
    a_recovered() { a_has MESSAGE_ID=$A_RECOVERED CLOSEWAIT_PID="$OLD_HOLDER" CLOSEWAIT_REASON=fd-exhaustion; }
    wait_for 20 "the old holder's recovery" a_recovered
    a_journal CLOSEWAIT_PID="$OLD_HOLDER" >"$WORK/trail.json"
    python3 - "$WORK/trail.json" <<'PY' && pass "journal trail: critical fd-exhaustion alert, action started, restarted, recovered" || fail "journal trail order"
import json, sys
ids = {"e185260dfe7242159da48af8f29f2002": "alert", "59d9d1d17c8e42edaa255b43e98775e9": "alert",
       "1f7c2e9a4b6d4c08a3e5f9d1b7c2a604": "started", "c4e8a1f07b3d4e2a9f6c5b8d1e7a3f92": "finished",
       "0e38331a0a3c46a499f602cb5680faeb": "recovered"}
trail = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("CLOSEWAIT_REASON") != "fd-exhaustion": continue
    if e.get("CLOSEWAIT_ACTION") not in (None, "orders-restart"): continue
    what = ids.get(e.get("MESSAGE_ID"))
    if what and (not trail or trail[-1] != what): trail.append(what)
print("service-test: trail:", " -> ".join(trail))
want = ["alert", "started", "finished", "recovered"]
it = iter(trail)
sys.exit(0 if all(w in it for w in want) else 1)
PY
    a_held() { a_journal MESSAGE_ID=$A_SKIPPED CLOSEWAIT_ACTION=orders-restart | grep -q '"CLOSEWAIT_ACTION_SKIPPED":"cooldown: '; }
    wait_for 45 "the come-back leak held by the cooldown" a_held \
        && pass "the leak came back in the new process: held by the unit's cooldown ($(a_journal MESSAGE_ID=$A_SKIPPED CLOSEWAIT_ACTION=orders-restart | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["CLOSEWAIT_ACTION_SKIPPED"])'))" \
        || fail "cooldown held the come-back leak"
    check "restarted once: one report, main pid still $NEW_MAIN" \
        test "$(a_count MESSAGE_ID=$A_FINISHED CLOSEWAIT_ACTION=orders-restart)" = 1 -a "$(a_main orders.service)" = "$NEW_MAIN"
else
    fail "the restart's report"
    a_journal MESSAGE_ID=$A_FINISHED | tail -3 | sed 's/^/service-test: journal: /'
fi

# --- a short cooldown: max_per_hour holds a leak that keeps coming back ---------------------
a_config 2 "$(restart_action orders-loop 1s)"
C systemctl restart closewaitd.service
a_capped() { a_journal MESSAGE_ID=$A_SKIPPED CLOSEWAIT_ACTION=orders-loop | grep -q '"CLOSEWAIT_ACTION_SKIPPED":"max_per_hour: 2 actions started in the last hour"'; }
if wait_for 120 "max_per_hour holding the third restart" a_capped; then
    loops=$(a_count MESSAGE_ID=$A_FINISHED CLOSEWAIT_ACTION=orders-loop CLOSEWAIT_ACTION_RESULT=success)
    check "max_per_hour = 2: two restarts ($loops), then held (said)" test "$loops" = 2
else
    fail "max_per_hour holding the third restart ($(a_count MESSAGE_ID=$A_FINISHED CLOSEWAIT_ACTION=orders-loop) restarts)"
fi

# --- exec: the alert in its environment (escaped), a timeout, a flood -------------------
a_config 10 "$(printf '[[action]]\nname = "env"\nlevel = "critical"\nmatch_unit = "orders.service"\nexec = ["/usr/bin/env"]\n[[action]]\nname = "hang"\nlevel = "critical"\nmatch_unit = "orders.service"\nexec = ["/bin/sleep", "600"]\ntimeout = "2s"\n[[action]]\nname = "flood"\nlevel = "critical"\nmatch_unit = "orders.service"\nexec = ["/usr/bin/yes", "closewaitd"]\ntimeout = "1s"\n')"
C systemctl restart closewaitd.service
a_execs_done() { for n in env hang flood; do a_has MESSAGE_ID=$A_FINISHED CLOSEWAIT_ACTION=$n || return 1; done; }
if wait_for 60 "the exec actions' reports" a_execs_done; then
    for n in env hang flood; do a_journal MESSAGE_ID=$A_FINISHED CLOSEWAIT_ACTION=$n | head -1 >"$WORK/exec-$n.json"; done
    python3 - "$WORK" "$A_HOSTILE_ESCAPED" <<'PY' && pass "exec: environment with the escaped hostile comm, hang killed at 2s, flood cut at 16 KiB" || fail "exec reports"
import json, sys
w, hostile = sys.argv[1], sys.argv[2]
env = json.loads(open(f"{w}/exec-env.json").read())
out = env.get("CLOSEWAIT_ACTION_OUTPUT", "")
if isinstance(out, list): out = bytes(out).decode("utf-8", "replace")
lines = out.splitlines()
ok_env = (env.get("CLOSEWAIT_ACTION_EXIT_STATUS") == "0" and f"CLOSEWAIT_PID={env['CLOSEWAIT_PID']}" in lines
          and "CLOSEWAIT_UNIT=orders.service" in lines and f"CLOSEWAIT_COMM={hostile}" in lines
          and all(ord(c) >= 0x20 for l in lines for c in l) and "CLOSEWAIT_ACTION=env" in lines
          and not any(l.startswith("NOTIFY_SOCKET=") or l.startswith("INVOCATION_ID=") for l in lines))
hang = json.loads(open(f"{w}/exec-hang.json").read())
ok_hang = hang.get("CLOSEWAIT_ACTION_TIMEOUT") == "1" and 2.0 <= float(hang["CLOSEWAIT_ACTION_SECONDS"]) < 10
flood = json.loads(open(f"{w}/exec-flood.json").read())
fout = flood.get("CLOSEWAIT_ACTION_OUTPUT", "")
size = len(fout) if isinstance(fout, list) else len(fout.encode())
ok_flood = size == 16384 and "more dropped" in flood["MESSAGE"]
print("service-test: env:", ok_env, "hang:", ok_hang, hang["MESSAGE"][-60:], "flood:", ok_flood, size)
if not ok_env: print("service-test: env output:", lines[:40])
sys.exit(0 if ok_env and ok_hang and ok_flood else 1)
PY
    check "the alert message in the journal carries the comm escaped, not raw" \
        sh -c "nsenter -t $PID1 -a journalctl -u closewaitd.service -o cat --no-pager MESSAGE_ID=$A_FINISHED CLOSEWAIT_ACTION=env | head -1 | grep -qF 'ord\\n\\x1b[2J\\xff'"
else
    fail "the exec actions' reports"
fi
C systemctl stop orders.service

# --- destroy_sockets with its drop-in: a static leaker's sockets go, a bystander's stay ------
C sh -c 'cat > /etc/systemd/system/cache.service' <<UNIT
[Service]
ExecStart=/mnt/pkg/closewaitd-workload --processes 1 --v4 8 --duration 600
UNIT
C sh -c 'cat > /etc/systemd/system/bystander.service' <<UNIT
[Service]
ExecStart=/mnt/pkg/closewaitd-workload --processes 1 --v4 6 --duration 600
UNIT
C ln -sf /usr/share/closewaitd/closewaitd-destroy-sockets.conf /etc/systemd/system/closewaitd.service.d/destroy-sockets.conf
C systemctl daemon-reload
C systemctl start cache.service bystander.service
# CLOSE_WAIT sockets held by a unit's main process and its children, by ss.
a_pids() { local m; m=$(a_main "$1"); { echo "$m"; C pgrep -P "$m"; } | paste -sd'|'; }
a_cw() { C ss -Htanp state close-wait 2>/dev/null | grep -cE "pid=($(a_pids "$1")),"; }
a_both_leak() { [ "$(a_cw cache.service)" = 8 ] && [ "$(a_cw bystander.service)" = 6 ]; }
wait_for 30 "cache and bystander leaking" a_both_leak || log "ss before: cache $(a_cw cache.service), bystander $(a_cw bystander.service)"
a_config 10 "$(printf '[[action]]\nname = "cache-destroy"\nlevel = "warning"\nreason = "count"\nmatch_unit = "cache.service"\ndestroy_sockets = true\n')"
C systemctl restart closewaitd.service
if a_report cache-destroy 45 "$WORK/destroy.json"; then
    python3 - "$WORK/destroy.json" <<'PY' && pass "destroy_sockets: 8 destroyed, fds said to stay open" || fail "destroy report"
import json, sys
e = json.loads(open(sys.argv[1]).read())
print("service-test: destroy:", e["MESSAGE"][:200])
sys.exit(0 if e.get("CLOSEWAIT_ACTION_DESTROYED") == "8" and e.get("CLOSEWAIT_ACTION_REFUSED") == "0"
         and "fds stay open" in e["MESSAGE"] else 1)
PY
    check "ss: cache.service holds no CLOSE_WAIT socket, the bystander still 6" \
        test "$(a_cw cache.service)" = 0 -a "$(a_cw bystander.service)" = 6
else
    fail "the destroy report"
    a_journal MESSAGE_ID=$A_FINISHED | tail -2 | sed 's/^/service-test: journal: /'
fi
C systemctl stop cache.service bystander.service
C rm -f /etc/systemd/system/closewaitd.service.d/destroy-sockets.conf /etc/polkit-1/rules.d/50-closewaitd.rules
C systemctl daemon-reload
write_config 5
C systemctl restart closewaitd.service

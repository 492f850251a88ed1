#!/bin/bash
# deploy/prometheus and deploy/grafana against Prometheus's own checker
# (Debian's prometheus package, promtool): the alert rules pass `promtool
# check rules` and their unit tests (`promtool test rules`: each alert fires
# on the series that should fire it and not on its healthy neighbours); a
# running daemon's /metrics, with a running job and ended ones (a completed
# one and an aborted one), passes `promtool check metrics`
# without a remark; every metric the rules and the dashboard's panels name is
# one the daemon exports; every panel's query parses (promtool again, as a
# recording rule).
# Skipped (77) without promtool or python3, except under
# FLEETCAST_REQUIRE_TOOLS (CI's step that installs them).
# usage: prometheus_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
src=$2
if ! command -v promtool >/dev/null || ! command -v python3 >/dev/null; then
  [ -n "${FLEETCAST_REQUIRE_TOOLS:-}" ] && { echo "FAIL promtool or python3 is missing"; exit 1; }
  echo "promtool or python3 not installed: skipped"
  exit 77
fi
tmp=$(mktemp -d)
daemon_pid=
source "$(dirname "$0")/lib.sh"
trap '[ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null; [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"' EXIT
rules=$src/deploy/prometheus/fleetcast-rules.yaml
dashboard=$src/deploy/grafana/fleetcast-dashboard.json

out=$(promtool check rules "$rules" 2>&1) && ok || fail "promtool check rules: $out"
out=$(cd "$src/deploy/prometheus" && promtool test rules fleetcast-rules.test.yaml 2>&1) && ok || fail "promtool test rules: $out"

# A daemon with three kinds of job behind it.
spool=$tmp/spool
start_emulator --config "$(emulator_config '{"latency_ms": 1, "device_failure_ratio": 0.1}')"
daemon_with_fleets "$spool" prometheus-test-token 200 5000
spool_job "$spool" small small.csv 0
for _ in $(seq 200); do [ -f "$spool/done/small/summary.json" ] && break; sleep 0.05; done
spool_job "$spool" running large.csv 2
for _ in $(seq 200); do admin_http GET /jobs | grep -q '"name":"running","state":"running".*"devices_per_second":[1-9]' && break; sleep 0.1; done
metrics=$(admin_http GET /metrics | tr -d '\r' | sed '1,/^$/d')
printf '%s\n' "$metrics" >"$tmp/metrics.txt"
lint=$(promtool check metrics <"$tmp/metrics.txt" 2>&1) && [ -z "$lint" ] && ok || fail "promtool check metrics: $lint"
grep -q '^fleetcast_job_devices{job_name="running",status="succeeded"} [1-9]' "$tmp/metrics.txt" && ok || fail "no per-job series for the running job"
grep -q '^fleetcast_job_stalled_seconds{job_name="running"} ' "$tmp/metrics.txt" && ok || fail "no fleetcast_job_stalled_seconds"
grep -q '^fleetcast_jobs_finished_total{state="completed"} 1$' "$tmp/metrics.txt" && ok || fail "the completed job is not counted"
grep -q 'prometheus-test-token' "$tmp/metrics.txt" && fail "the token shows in /metrics" || ok

# What the rules and the panels ask for exists, and each panel's query parses.
python3 - "$rules" "$dashboard" "$tmp/metrics.txt" "$tmp/panels.yaml" <<'PY' || fail "rules and dashboard against /metrics (above)"
import json, re, sys
rules_file, dashboard_file, metrics_file, panels_out = sys.argv[1:5]
exported = set()
for line in open(metrics_file):
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        exported.add(name)
        if kind == "histogram":
            exported.update({name + "_bucket", name + "_sum", name + "_count"})
def names(expr):
    return set(re.findall(r"\b(fleetcast_[a-z_]+)\b", expr))
errors = []
rules_text = open(rules_file).read()
for n in names(rules_text) - exported:
    errors.append(f"the rules name {n}, which the daemon does not export")
dash = json.load(open(dashboard_file))
exprs = []
for panel in dash["panels"]:
    for t in panel["targets"]:
        exprs.append((panel["title"], t["expr"]))
        for n in names(t["expr"]) - exported:
            errors.append(f"panel '{panel['title']}' names {n}, which the daemon does not export")
with open(panels_out, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        f.write(f"      - record: fleetcast_dashboard_panel_{i}\n        expr: {json.dumps(e.replace('$instance', '.*'))}\n")
for e in errors:
    print("FAIL", e)
print(f"{len(exprs)} panel queries, {len(exported)} metric names exported")
sys.exit(1 if errors else 0)
PY
out=$(promtool check rules "$tmp/panels.yaml" 2>&1) && ok || fail "a dashboard query does not parse: $out"

kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
finish

#!/bin/bash
# deploy/kubernetes/ against fleetcast's real exit codes. The manifests are
# read as Kubernetes reads them (YAML, anchors resolved: python3-yaml); the
# exit codes come from real runs of the binary against the emulator (all
# succeeded, some failed, an invalid job, a shard index beyond --shards, an
# abort by the rollout guard, a SIGTERM), and the Job's podFailurePolicy is
# applied to each the way the Job controller does (the first matching rule
# decides) to check what becomes of the Job. Also: the pods exec fleetcast
# (no shell as PID 1), the shard count agrees between completions,
# parallelism and --shards, JOB_COMPLETION_INDEX is left to Kubernetes and
# read by fleetcast (two shards cover a list exactly once), the daemon's
# probes and Service point at its admin port, the configs in the ConfigMaps
# pass `fleetcast check`.
# Skipped (77) without python3-yaml, except under FLEETCAST_REQUIRE_TOOLS.
# usage: kubernetes_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
src=$2
if ! python3 -c 'import yaml' 2>/dev/null; then
  [ -n "${FLEETCAST_REQUIRE_TOOLS:-}" ] && { echo "FAIL python3-yaml is missing"; exit 1; }
  echo "python3-yaml not installed: skipped"
  exit 77
fi
tmp=$(mktemp -d)
run_pid=
source "$(dirname "$0")/lib.sh"
trap '[ -n "$run_pid" ] && kill -KILL "$run_pid" 2>/dev/null; [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
printf 'Bearer kubernetes-test-token\n' >token
"$bin" generate-devices 2000 devices.csv --gateway-every 0 2>/dev/null
write_job() {  # FILE OUTPUT-DIR [extra members]
  cat >"$1" <<JOB
{"endpoint": "http://127.0.0.1:$port", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 50},
 "rate": {"requests_per_second": 0}, "connections": 2,
 "retry": {"max_attempts": 2, "base_delay_ms": 1, "max_delay_ms": 5},
 "output": {"dir": "$2"}${3:+, $3}}
JOB
}
codes=$tmp/codes.txt  # MEANING CODE, one per line

# Real exit codes. All succeeded, and two shards by JOB_COMPLETION_INDEX.
start_emulator --config "$(emulator_config '{"latency_ms": 0, "device_failure_ratio": 0}')" --record "$tmp/record.ndjson"
write_job ok.json out-ok
"$bin" run ok.json --quiet 2>>runs.err
echo "succeeded $?" >>"$codes"
write_job shard.json out-shard
for i in 0 1; do
  JOB_COMPLETION_INDEX=$i "$bin" run shard.json --shards 2 --quiet
  [ $? -eq 0 ] && ok || fail "shard $i of 2 did not succeed"
done
cat out-shard/shard-0-of-2/results.ndjson out-shard/shard-1-of-2/results.ndjson | sort -t: -k2 -n >shards.ndjson
stop_emulator
# The record holds ok.json's 2,000 and the two shards' 2,000: each device twice.
awk 'match($0, /"deviceKey":"[^"]*"/) { n[substr($0, RSTART, RLENGTH)]++ }
     END { for (k in n) if (n[k] != 2) bad++; exit bad > 0 || length(n) != 2000 }' "$tmp/record.ndjson" &&
  ok || fail "the two shards did not command each device once"
[ "$(wc -l <shards.ndjson)" -eq 2000 ] && [ "$(sed -n 's/^{"index":\([0-9]*\),.*/\1/p' shards.ndjson | sort -un | wc -l)" -eq 2000 ] &&
  ok || fail "the two shards' results are not every index once"
JOB_COMPLETION_INDEX=2 "$bin" run shard.json --shards 2 --quiet 2>index.err
echo "index-beyond-shards $?" >>"$codes"
grep -q 'JOB_COMPLETION_INDEX=2' index.err && ok || fail "an index beyond --shards: $(cat index.err)"
env -u JOB_COMPLETION_INDEX "$bin" run shard.json --shards 2 --quiet 2>noindex.err
[ $? -eq 2 ] && grep -q 'JOB_COMPLETION_INDEX is not set' noindex.err && ok || fail "--shards without JOB_COMPLETION_INDEX: $(cat noindex.err)"

# Some failed; aborted by the guard; an invalid job; SIGTERM mid-run.
start_emulator --config "$(emulator_config '{"latency_ms": 0, "device_failure_ratio": 0.3}')"
write_job some.json out-some
"$bin" run some.json --quiet 2>>runs.err
echo "some-failed $?" >>"$codes"
write_job abort.json out-abort '"rollout": {"abort_failure_ratio": 0.1, "abort_min_devices": 100}'
"$bin" run abort.json --quiet 2>>runs.err
echo "aborted $?" >>"$codes"
printf '{"endpoint": "http://127.0.0.1:1", "auth": {"token_file": "token"}, "command": {"type": 2, "data": "[]", "qos": 7}, "devices": {"file": "devices.csv"}}\n' >invalid.json
"$bin" run invalid.json --quiet 2>/dev/null
echo "invalid $?" >>"$codes"
write_job slow.json out-slow '"rate": {"requests_per_second": 2}'
sed -i 's/"rate": {"requests_per_second": 0}, //' slow.json
"$bin" run slow.json --quiet 2>>runs.err &
run_pid=$!
for _ in $(seq 100); do [ -s out-slow/results.ndjson ] && break; sleep 0.05; done
kill -TERM "$run_pid"
wait "$run_pid"
echo "sigterm $?" >>"$codes"
run_pid=
stop_emulator
[ "$(wc -l <"$codes")" -eq 6 ] && ok || fail "exit codes: $(cat "$codes")"

python3 - "$src/deploy/kubernetes" "$codes" "$bin" <<'PY' || fail "the manifests (above)"
import os, subprocess, sys, tempfile, yaml, json

folder, codes_file, binary = sys.argv[1:4]
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)

def load(name):
    with open(os.path.join(folder, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]

codes = dict(line.split() for line in open(codes_file))
codes = {k: int(v) for k, v in codes.items()}

# --- the sharded rollout Job
docs = load("sharded-rollout.yaml")
job = next(d for d in docs if d["kind"] == "Job")
config = next(d for d in docs if d["kind"] == "ConfigMap")
spec = job["spec"]
pod = spec["template"]["spec"]
[c] = pod["containers"]
check(c["command"] == ["/usr/local/bin/fleetcast"], f"the Job's container runs {c['command']}, not fleetcast itself")
args = c["args"]
check(args[0] == "run" and "--resume" in args, f"the Job's args {args}: run ... --resume")
check("--shard" not in args, "the Job passes --shard I/N by hand")
check("--shards" in args, "the Job does not pass --shards")
shards = int(args[args.index("--shards") + 1]) if "--shards" in args else None
check(spec["completionMode"] == "Indexed", "not an Indexed Job")
check(spec["completions"] == shards and spec["parallelism"] == shards,
      f"completions {spec['completions']}, parallelism {spec['parallelism']}, --shards {shards}: must agree")
check(not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in c.get("env", [])),
      "JOB_COMPLETION_INDEX is set by hand (Kubernetes sets it)")
check(pod["restartPolicy"] == "Never", "restartPolicy must be Never for a podFailurePolicy")
check(spec.get("backoffLimitPerIndex", 0) >= 1, "no retries per index")
check(pod.get("terminationGracePeriodSeconds", 30) > 30, "no time to drain after SIGTERM")

def job_controller(exit_code=None, condition=None):
    """What the Job controller does with a failed pod: the first matching rule."""
    if exit_code == 0:
        return "succeeded"
    for rule in spec["podFailurePolicy"]["rules"]:
        if "onPodConditions" in rule:
            if condition and any(p["type"] == condition for p in rule["onPodConditions"]):
                return rule["action"]
        elif exit_code is not None and "onExitCodes" in rule:
            on = rule["onExitCodes"]
            if on.get("containerName", c["name"]) != c["name"]:
                continue
            inside = exit_code in on["values"]
            if inside == (on["operator"] == "In"):
                return rule["action"]
    return "Count"  # retried, up to backoffLimitPerIndex

want = {
    "succeeded": "succeeded",           # the index is done
    "some-failed": "FailIndex",         # finished; not sent again blindly
    "invalid": "FailJob",               # no retry can help
    "index-beyond-shards": "FailJob",   # completions > --shards
    "aborted": "FailJob",               # the guard's verdict stops every shard
    "sigterm": "Count",                 # cancelled: retried with --resume
}
for meaning, action in want.items():
    code = codes[meaning]
    got = job_controller(exit_code=code)
    check(got == action, f"{meaning}: fleetcast exits {code}, the Job does {got}, want {action}")
check(codes["succeeded"] == 0 and codes["some-failed"] == 1 and codes["invalid"] == 2
      and codes["aborted"] == 3 and codes["sigterm"] == 4, f"exit codes changed: {codes}")
# An eviction: the pod gets SIGTERM (exit 4) and the condition DisruptionTarget.
check(job_controller(exit_code=codes["sigterm"], condition="DisruptionTarget") == "Ignore",
      "an evicted pod is not retried without counting")

# The job in the ConfigMap is valid.
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "job.json")
    open(path, "w").write(config["data"]["job.json"])
    r = subprocess.run([binary, "check", path], capture_output=True, text=True)
    check(r.returncode == 0, f"the Job's job.json: {r.stdout}{r.stderr}")

# --- the daemon Deployment
docs = load("daemon.yaml")
dep = next(d for d in docs if d["kind"] == "Deployment")
svc = next(d for d in docs if d["kind"] == "Service")
cm = next(d for d in docs if d["kind"] == "ConfigMap")
pod = dep["spec"]["template"]["spec"]
[c] = pod["containers"]
check(c["command"] == ["/usr/local/bin/fleetcast"] and c["args"][0] == "daemon",
      f"the daemon's container runs {c['command']} {c['args']}")
check(dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate",
      "two daemons could share the spool during an update")
daemon_json = json.loads(cm["data"]["daemon.json"])
admin_port = int(daemon_json["admin_listen"].rsplit(":", 1)[1])
check(not daemon_json["admin_listen"].startswith("127."), "the admin port listens on loopback only: kubelet cannot probe it")
check(daemon_json.get("admin_token_file"), "a non-loopback admin port without admin_token_file")
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
    get = c.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path and ports.get(get.get("port")) == admin_port,
          f"{probe}: {get}, want {path} on the admin port {admin_port}")
check(svc["spec"]["ports"][0]["targetPort"] in ports and svc["metadata"]["annotations"]["prometheus.io/port"] == str(admin_port),
      "the Service does not expose the admin port")
check(pod["terminationGracePeriodSeconds"] > daemon_json["drain_timeout_s"],
      "terminationGracePeriodSeconds does not leave the drain its time")
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "daemon.json")
    open(path, "w").write(cm["data"]["daemon.json"])
    r = subprocess.run([binary, "check", path, "--as", "daemon"], capture_output=True, text=True)
    check(r.returncode == 0, f"the daemon's daemon.json: {r.stdout}{r.stderr}")

for e in errors:
    print("FAIL", e)
print(f"manifests: {len(errors)} problems")
sys.exit(1 if errors else 0)
PY
[ $? -eq 0 ] && ok
finish

#!/bin/bash
# Validates the manifests offline: the core objects against Kubernetes' own OpenAPI schemas
# (kubernetes-validate from PyPI, which bundles them; strict: an unknown field is an error)
# for 1.30 (the oldest with securityContext.appArmorProfile) and the newest it knows; the
# PrometheusRule's groups with promtool and as the rules file's own; the ServiceMonitor's
# shape; the ConfigMap's TOML with closewaitd check-config.
#
# Usage: deploy/kubernetes/check.sh CLOSEWAITD_BINARY
set -euo pipefail
BIN=$1
HERE=$(cd "$(dirname "$0")/../.." && pwd)
K=$HERE/deploy/kubernetes
VENV=$HERE/.build/k8s-venv
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
for version in 1.30.0 1.34.0; do
    "$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$version" \
        "$K/namespace.yaml" "$K/configmap.yaml" "$K/daemonset.yaml" "$K/service.yaml"
done
"$K/prometheusrule.sh" | cmp -s - "$K/prometheusrule.yaml" \
    || { echo "deploy/kubernetes/prometheusrule.yaml is stale: run deploy/kubernetes/prometheusrule.sh > it" >&2; exit 1; }
"$VENV/bin/python" - "$K" "$WORK" <<'EOF2'
import sys, yaml
k, work = sys.argv[1], sys.argv[2]
rule = yaml.safe_load(open(k + "/prometheusrule.yaml"))
assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
yaml.safe_dump({"groups": rule["spec"]["groups"]}, open(work + "/rules.yml", "w"))
sm = yaml.safe_load(open(k + "/servicemonitor.yaml"))
assert sm["kind"] == "ServiceMonitor" and sm["apiVersion"] == "monitoring.coreos.com/v1"
ep = sm["spec"]["endpoints"][0]
svc = yaml.safe_load(open(k + "/service.yaml"))
assert ep["port"] in [p["name"] for p in svc["spec"]["ports"]] and ep["honorLabels"] is True
assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
ds = yaml.safe_load(open(k + "/daemonset.yaml"))
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
assert pod["hostPID"] and c["securityContext"]["capabilities"]["drop"] == ["ALL"]
assert sorted(c["securityContext"]["capabilities"]["add"]) == ["BPF", "DAC_READ_SEARCH", "PERFMON", "SYS_PTRACE"]
assert all(m.get("readOnly") for m in c["volumeMounts"] if m["mountPath"].startswith("/host/"))
assert svc["spec"]["selector"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
cm = yaml.safe_load(open(k + "/configmap.yaml"))
open(work + "/closewaitd.toml", "w").write(cm["data"]["closewaitd.toml"])
kust = yaml.safe_load(open(k + "/kustomization.yaml"))
import os
assert sorted(kust["resources"]) == sorted(f for f in os.listdir(k) if f.endswith(".yaml") and f != "kustomization.yaml")
EOF2
promtool check rules "$WORK/rules.yml"
"$BIN" check-config "$WORK/closewaitd.toml" >/dev/null
echo "k8s-check: the manifests validate (Kubernetes 1.30 and 1.34 schemas, strict), the PrometheusRule's rules pass promtool, the ConfigMap's TOML passes check-config"

#!/usr/bin/env bash
# The demo: a small service goes CPU-hot under the preloaded agent; the agent
# notices, profiles it, and we print what it found.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh default >/dev/null
build=build/default
dumps=$(mktemp -d /tmp/sleuth-demo.XXXXXX)

echo "== running examples/demo_app with the agent preloaded (dumps go to $dumps)"
SLEUTH_AGENT_DUMP_DIR="$dumps" \
SLEUTH_AGENT_INTERVAL=250ms \
SLEUTH_AGENT_HISTORY=4 \
SLEUTH_CPU_MIN=5 SLEUTH_CPU_DIFF=100 SLEUTH_CPU_ABS=30 \
SLEUTH_CPU_PROFILE_DURATION=2s \
SLEUTH_AGENT_LABELS="env=demo" \
SLEUTH_AGENT_LOG_LEVEL=info \
  "$build/cli/sleuth" run -- "$build/examples/demo_app"

sidecar=$(ls "$dumps"/*.cpu.*.json 2>/dev/null | head -n 1 || true)
if [ -z "$sidecar" ]; then
  echo "demo: the agent wrote no CPU dump; its log is above" >&2
  exit 1
fi
profile="${sidecar%.json}.pb.gz"
echo
echo "== why the agent dumped (from $(basename "$sidecar"))"
python3 - "$sidecar" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"  kind={m['kind']} reason={m['reason']} metric={m['metric']} "
      f"value={m['value']:.1f}% average={m['average']:.1f}% abs={m['thresholds']['abs']}")
print(f"  limit: {m['limits']['cpu_cores']} cores ({m['limits']['cpu_source']}); "
      f"service={m['service']} pid={m['pid']} event_id={m['event_id']}")
PY
echo
echo "== top functions of the CPU profile, read by go tool pprof (no binary needed)"
export HOME="${HOME:-/tmp}" GOCACHE=/tmp/sleuth-demo-gocache GOFLAGS=-mod=mod
go tool pprof -symbolize=none -top -nodecount=10 "$profile" 2>/dev/null

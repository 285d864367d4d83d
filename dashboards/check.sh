#!/usr/bin/env bash
# Static checks of the shipped monitoring files, run by `make test`: the Prometheus config and
# the rule files it loads, the alert rules' unit tests, and the dashboard JSON's syntax.
# Exits non-zero on the first failure. PROMTOOL overrides the promtool binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
promtool="${PROMTOOL:-promtool}"
if ! command -v "$promtool" >/dev/null 2>&1; then
  echo "dashboards/check.sh: $promtool not found (Debian package: prometheus)" >&2
  exit 1
fi

# promtool resolves rule_files relative to the config file, so run from its directory.
cd "$here/prometheus"
"$promtool" check config prometheus.yml
"$promtool" check rules alerts.yml
"$promtool" test rules alerts_test.yml

for json in "$here"/grafana/dashboards/*.json; do
  python3 -m json.tool "$json" >/dev/null
  echo "$json: valid JSON"
done

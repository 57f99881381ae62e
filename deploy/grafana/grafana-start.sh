#!/bin/sh
# Entrypoint of compose.yaml's Grafana. deploy/grafana/convsync.json is made for import
# (its datasource is the input ${DS_PROMETHEUS}, chosen when importing), and Grafana's
# provisioning fills in no inputs: so the dashboard is copied with the provisioned
# datasource's uid in their place, then Grafana starts as its image starts it (/run.sh).
set -eu
src=${CONVSYNC_DASHBOARD:-/etc/convsync/convsync.json}
dir=${CONVSYNC_DASHBOARD_DIR:-/var/lib/grafana/dashboards}
mkdir -p "$dir"
# shellcheck disable=SC2016 # the literal text ${DS_PROMETHEUS}, not a variable
sed 's/\${DS_PROMETHEUS}/prometheus/g' "$src" >"$dir/convsync.json.tmp"
mv "$dir/convsync.json.tmp" "$dir/convsync.json"
exec "${GRAFANA_RUN:-/run.sh}" "$@"

#!/usr/bin/env bash
# A Dask cluster on this machine, on loopback: one scheduler and N workers, for trying the
# cluster path of bigalign without a real cluster.
#
#   cluster/local.sh [N_WORKERS] [SCHEDULER_FILE]
#   bigalign run jobs/demo.toml --scheduler SCHEDULER_FILE     # in another terminal
#
# Ctrl-C stops everything it started.
set -euo pipefail
workers="${1:-2}"
scheduler_file="${2:-${TMPDIR:-/tmp}/bigalign-scheduler.json}"
dask="$(dirname "$(command -v python)")/dask"
[ -x "$dask" ] || dask=dask
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
rm -f "$scheduler_file"
"$dask" scheduler --host 127.0.0.1 --dashboard-address 127.0.0.1:8787 --scheduler-file "$scheduler_file" &
pids+=($!)
for _ in $(seq 50); do [ -s "$scheduler_file" ] && break; sleep 0.2; done
for _ in $(seq "$workers"); do
  # (each worker's own web server on loopback too, not on every interface)
  "$dask" worker --scheduler-file "$scheduler_file" --host 127.0.0.1 --dashboard-address 127.0.0.1:0 \
      --nthreads 1 --memory-limit auto &
  pids+=($!)
done
echo "scheduler file: $scheduler_file; dashboard: http://127.0.0.1:8787/status"
echo "submit with:    bigalign run JOB --scheduler $scheduler_file"
wait

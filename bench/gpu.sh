#!/usr/bin/env bash
# GPU figures in one bounded run (at most 8 minutes): training env steps/s and updates/s
# on CPU vs CUDA, time to 95 % on CUDA, research trials/hour with --parallel = cores.
# Without a GPU it says so and runs the CPU parts. See bench/gpu.py for the details.
#
#   bash bench/gpu.sh [--quick] [--record-dir DIR] [--no-record]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
exec timeout --kill-after=10 480 "$PY" bench/gpu.py "$@"

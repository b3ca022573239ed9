#!/usr/bin/env bash
# GPU run kit entry point: runs every phase of the self-contained sbp-gpu next to this script in one process
# (no .NET needed). Writes report.json and report.md under $OUT (or ./sbp-gpu-out); extra arguments pass through
# (e.g. --bench-batch 2, --tf32, --simulate). Exit code: sbp-gpu's (0 ok, 1 failed, 2 no GPU, 3 incomplete).
# The one-shot acceptance run (each phase in its own process under a timeout, SUMMARY.txt): accept.sh.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-$PWD/sbp-gpu-out}"
mkdir -p "$out"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi > "$out/nvidia-smi.txt" 2>&1
"$here/sbp-gpu" gpu-check --out "$out" "$@" 2>&1 | tee "$out/console.log"
exit "${PIPESTATUS[0]}"

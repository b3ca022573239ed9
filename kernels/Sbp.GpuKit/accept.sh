#!/usr/bin/env bash
# The one-shot acceptance run of the GPU kit (docs/CUDA.md, "The GPU run kit"). On a GPU machine:
#
#   OUT=/some/dir bash kernels/Sbp.GpuKit/accept.sh [--budget-s S] [--simulate] [-- KIT-OPTIONS...]
#
# 1. env: the environment into $OUT/env.txt (nvidia-smi, glibc, OS, the NVIDIA libraries in the linker cache and in
#    Python wheels, the kit's own libraries), and GPU utilization and memory each second into $OUT/gpu-util.csv;
# 2. start: the kit must start (else nothing more runs);
# 3. ops: the op suite (the op table and the large shapes, against the CPU); up to 3 failed cases again, each alone
#    with CUDA_LAUNCH_BLOCKING=1 (the error then names the failing kernel);
# 4. train: the SBP training step in a fresh process whose first library call is a cuDNN convolution;
# 5. nccl: a size-1 NCCL all-reduce and broadcast; 6. bench: step time and peak memory, full backprop vs SBP;
# 7. profile: a Swin-T batch-8 step, each phase timed with CUDA events next to the H100 model's prediction
#    (modeled-h100-swin-t-b8.txt), and per-op times with CUDA_LAUNCH_BLOCKING=1 so that each op's time is GPU time.
# Each kit phase runs in its own process under `timeout` and writes $OUT/<phase>/ (report.md, report.json,
# phases.txt, failed-cases.txt, console.log) as it goes. The whole run stays within --budget-s (default 450 s: under
# 8 minutes on one H100). $OUT/SUMMARY.txt is always written (after every phase, and at exit): each phase's exit
# code, status (passed / failed / timed out / incomplete / skipped), seconds and the failing cases.
# Exit code: 0 only when every phase passed, else 1 (64: bad arguments or no OUT).
# The kit: $SBP_GPU_KIT, else sbp-gpu next to this script (in bin/gpu-kit/), else bin/gpu-kit/sbp-gpu of the repository
# (`dotnet pwsh build.ps1 publish-gpu` makes it). --simulate runs every phase on the simulated CUDA device (CI does).
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
budget=450
simulate=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --simulate) simulate=(--simulate) ;;
        --budget-s)
            budget="${2:-}"
            shift
            case "$budget" in '' | *[!0-9]*) echo "accept.sh: --budget-s needs a whole number of seconds" >&2; exit 64 ;; esac
            ;;
        --) shift; extra=("$@"); break ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "accept.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
    shift
done
if ! command -v timeout >/dev/null 2>&1; then
    echo "accept.sh: needs timeout (GNU coreutils) to bound each phase" >&2
    exit 64
fi
if [ -z "${OUT:-}" ]; then
    echo "accept.sh: set OUT to the folder for the results, e.g. OUT=/tmp/sbp-accept bash $0" >&2
    exit 64
fi
mkdir -p "$OUT" || { echo "accept.sh: cannot create OUT=$OUT" >&2; exit 64; }
OUT="$(cd "$OUT" && pwd)"
rm -rf "$OUT"/ops-[0-9] "$OUT"/ops-rerun-[0-9] "$OUT/SUMMARY.txt"   # an earlier run's; each phase empties its own folder

kit="${SBP_GPU_KIT:-}"
if [ -z "$kit" ]; then
    for candidate in "$here/sbp-gpu" "$here/../../bin/gpu-kit/sbp-gpu"; do
        if [ -x "$candidate" ]; then kit="$candidate"; break; fi
    done
fi
kit="${kit:-$here/../../bin/gpu-kit/sbp-gpu}"
[ -d "$(dirname "$kit")" ] && kit="$(cd "$(dirname "$kit")" && pwd)/$(basename "$kit")"

start=$SECONDS
started_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
names=() statuses=() codes=() seconds=() details=()
current=""
smi_pid=""
child=""
stop_reason=""

# One row of the summary: name, status, exit code ("-" when none), seconds, detail.
record() {
    names+=("$1") statuses+=("$2") codes+=("$3") seconds+=("$4") details+=("${5:-}")
}

# Status of a kit process from its exit code.
status_of() {
    case "$1" in
        0) echo passed ;;
        1) echo failed ;;
        2) echo "no GPU" ;;
        3) echo incomplete ;;
        124 | 137) echo "timed out" ;;
        *) if [ "$1" -gt 128 ]; then echo crashed; else echo failed; fi ;;
    esac
}

write_summary() {
    local verdict=PASSED i
    for i in "${!statuses[@]}"; do [ "${statuses[$i]}" = passed ] || verdict=FAILED; done
    [ -n "$current" ] && verdict="RUNNING ($current)"
    [ "${#statuses[@]}" -eq 0 ] && [ -z "$current" ] && verdict="FAILED (nothing ran)"
    {
        echo "sbp-gpu acceptance run: $verdict"
        echo "started $started_utc; $((SECONDS - start)) s of a $budget s budget; ${simulate[*]:-real GPU}; kit: $kit"
        [ -f "$OUT/start/version.txt" ] && echo "kit version: $(head -n 1 "$OUT/start/version.txt")"
        [ -f "$OUT/gpu.txt" ] && echo "gpu: $(head -n 1 "$OUT/gpu.txt")"
        echo
        printf '%-10s %-12s %5s %8s  %s\n' phase status exit seconds detail
        for i in "${!names[@]}"; do
            printf '%-10s %-12s %5s %8s  %s\n' "${names[$i]}" "${statuses[$i]}" "${codes[$i]}" "${seconds[$i]}" "${details[$i]%%$'\n'*}"
        done
        [ -n "$current" ] && printf '%-10s %-12s %5s %8s  %s\n' "$current" running - "$((SECONDS - current_start))" "(in progress when this was written)"
        for i in "${!names[@]}"; do
            case "${details[$i]}" in *$'\n'*) echo; echo "${names[$i]}:"; echo "${details[$i]#*$'\n'}" ;; esac
        done
        echo
        echo "in $OUT: $(cd "$OUT" && ls -d -- * 2>/dev/null | grep -v '^SUMMARY' | tr '\n' ' ')"
        echo "each phase's folder: console.log, report.md, report.json, phases.txt, failed-cases.txt"
    } > "$OUT/SUMMARY.txt.tmp" && mv -f "$OUT/SUMMARY.txt.tmp" "$OUT/SUMMARY.txt"
}

finish() {
    local rc=$?
    [ -n "$smi_pid" ] && kill "$smi_pid" 2>/dev/null
    [ -n "$child" ] && kill "$child" 2>/dev/null
    if [ -n "$current" ]; then
        record "$current" interrupted - "$((SECONDS - current_start))" "accept.sh ended (exit $rc) while this phase ran"
        current=""
    fi
    write_summary
    echo
    cat "$OUT/SUMMARY.txt"
    local i
    for i in "${!statuses[@]}"; do [ "${statuses[$i]}" = passed ] || exit 1; done
    [ "${#statuses[@]}" -gt 0 ] || exit 1
    exit 0
}
trap finish EXIT
trap 'exit 130' INT TERM

# Seconds a phase may take: its cap, or what is left of the budget (less a margin for the summary).
allowance() {
    local left=$((budget - (SECONDS - start) - 3))
    if [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}

begin() {
    current="$1"
    current_start=$SECONDS
    echo "== $1 (at most $2 s)"
    write_summary
}

# A kit phase in its own process: run_kit NAME CAP [VAR=VALUE...] -- KIT-ARGS...
run_kit() {
    local name="$1" cap="$2"
    shift 2
    local vars=()
    while [ "$1" != "--" ]; do vars+=("$1"); shift; done
    shift
    if [ -n "$stop_reason" ]; then
        record "$name" skipped - 0 "skipped: $stop_reason"
        write_summary
        return
    fi
    local limit
    limit=$(allowance "$cap")
    if [ "$limit" -lt 10 ]; then
        record "$name" skipped - 0 "skipped: the budget ran out ($((budget - (SECONDS - start))) s left)"
        write_summary
        return
    fi
    local dir="$OUT/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    begin "$name" "$limit"
    # The kit's own budget ends 5 s before the timeout, so it writes its report before being killed.
    # In the background and waited for, so that a signal to this script is handled at once (finish stops the phase).
    env "${vars[@]}" timeout -k 5 "$limit" "$kit" gpu-check "${simulate[@]}" --out "$dir" --budget-s $((limit - 5)) "$@" "${extra[@]}" \
        > "$dir/console.log" 2>&1 &
    child=$!
    wait "$child"
    local rc=$? took=$((SECONDS - current_start)) status detail
    child=""
    current=""
    status=$(status_of "$rc")
    detail="$(phase_detail "$dir" "$rc")"
    record "$name" "$status" "$rc" "$took" "$detail"
    echo "   $name: $status (exit $rc, $took s)"
    [ "$rc" -eq 2 ] && stop_reason="no usable GPU ($name/console.log says why)"
    write_summary
}

# First line: a one-line verdict (the kit's own summary of what passed); further lines: the kit phases that did not
# pass, the failed op cases, and the first error lines of the console.
phase_detail() {
    local dir="$1" rc="$2" name passed_lines="" other_lines="" pname pstatus psec pdetail line
    name=$(basename "$dir")
    if [ -f "$dir/phases.txt" ]; then
        while IFS=$'\t' read -r pname pstatus psec pdetail; do
            if [ "$pstatus" = passed ]; then passed_lines+="${passed_lines:+; }$pdetail"
            else other_lines+=$'\n'"  kit phase $pname: $pstatus after $psec s: $pdetail"; fi
        done < "$dir/phases.txt"
    fi
    case "$rc" in
        0) echo "${passed_lines:-passed}" ;;
        2) grep -m 1 '^sbp-gpu:' "$dir/console.log" || echo "no usable GPU; see $name/console.log" ;;
        124 | 137) echo "killed at the timeout; $name/report.md has what finished" ;;
        129 | 13[0-9] | 1[4-9][0-9] | 2[0-9][0-9]) echo "ended by signal $((rc - 128)); $name/report.md has what finished, $name/console.log the end" ;;
        *) if [ -n "$other_lines" ]; then line="${other_lines#$'\n'  kit phase }"; echo "${line%%$'\n'*}" | cut -c1-240
           else echo "see $name/report.md and $name/console.log"; fi ;;
    esac
    [ -n "$other_lines" ] && echo "${other_lines#$'\n'}"
    [ -s "$dir/failed-cases.txt" ] && head -n 20 "$dir/failed-cases.txt" | sed 's/^/  failed case: /'
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
        # The failed cases' own lines (with their errors), or how the process ended when it crashed.
        line=$(grep -m 3 -E '^  FAIL|Unhandled exception|Segmentation|Aborted|core dumped' "$dir/console.log" | cut -c1-300)
        [ -n "$line" ] && echo "$line" | sed 's/^/  console: /'
    fi
}

# ---- 1. the environment (at most 20 s) -------------------------------------------------------------------
begin env 20
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/gpu-util.csv" 2>&1 &
    smi_pid=$!
    timeout 5 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader > "$OUT/gpu.txt" 2>&1
fi
KIT="$kit" timeout -k 2 20 bash -s > "$OUT/env.txt" 2>&1 <<'ENV'
section() { printf '\n== %s\n' "$*"; }
section date; date -u
section uname; uname -a
section os-release; cat /etc/os-release 2>/dev/null
section glibc; ldd --version 2>&1 | head -n 1
section cpus and memory; nproc; free -g 2>/dev/null | head -n 2
section nvidia-smi
if command -v nvidia-smi >/dev/null 2>&1; then timeout 8 nvidia-smi; else echo "nvidia-smi: not found"; fi
section "linker cache (ldconfig -p: libcuda, libcudart, libcublas, libcudnn, libnccl)"
ldconfig -p 2>/dev/null | grep -E 'lib(cuda|cudart|cublas|cudnn|nccl)' || echo "(none)"
section variables
env | grep -E '^(LD_LIBRARY_PATH|CUDA_[A-Z_]*|NVIDIA_[A-Z_]*|VIRTUAL_ENV|CONDA_PREFIX|PYENV_ROOT|SBP_[A-Z_]*)=' || echo "(none set)"
section python
for py in python3 python; do
    if command -v "$py" >/dev/null 2>&1; then
        command -v "$py"; "$py" --version 2>&1
        timeout 6 "$py" -m pip list 2>/dev/null | grep -i nvidia || echo "(no nvidia packages in pip list)"
        break
    fi
done
section "NVIDIA libraries on disk (find, at most 6 s)"
timeout 6 find / -xdev \( -name 'libcublasLt.so.1[23]' -o -name 'libcublas.so.1[23]' -o -name 'libcudnn.so.9' \
    -o -name 'libnccl.so.2' -o -name 'libcuda.so.1' \) 2>/dev/null | head -n 40
section "the kit ($KIT)"
ls -l "$KIT" 2>&1; ldd "$KIT" 2>&1
exit 0
ENV
env_rc=$?
current=""
if [ "$env_rc" -eq 0 ]; then record env passed 0 "$((SECONDS - current_start))" "env.txt"
else record env "$(status_of "$env_rc")" "$env_rc" "$((SECONDS - current_start))" "env.txt is partial (the 20 s ran out)"; fi
write_summary

# ---- 2. the kit starts ------------------------------------------------------------------------------------
begin start 20
mkdir -p "$OUT/start"
timeout -k 2 20 "$kit" --version > "$OUT/start/version.txt" 2>&1
start_rc=$?
current=""
if [ "$start_rc" -eq 0 ]; then
    record start passed 0 "$((SECONDS - current_start))" "$(head -n 1 "$OUT/start/version.txt")"
else
    record start failed "$start_rc" "$((SECONDS - current_start))" "the kit did not start: $(head -c 300 "$OUT/start/version.txt")"
    stop_reason="the kit did not start"
fi
write_summary

# ---- 3. ops. After a sticky error, a hang or a crash in a case, the cases after it run in a new process (ops-2,
# ---- ops-3); then up to 3 failed cases run again, each alone with synchronous launches (ops-rerun-N) --------
run_kit ops 110 -- --phase ops
ops_dirs=("$OUT/ops")
while [ -z "$stop_reason" ] && [ "${#ops_dirs[@]}" -lt 3 ]; do
    last_dir="${ops_dirs[-1]}"
    if grep -q $'\tfailed\t.*sticky CUDA error' "$last_dir/phases.txt" 2>/dev/null; then
        after=$(tail -n 1 "$last_dir/failed-cases.txt" 2>/dev/null)
    elif [ -s "$last_dir/running-case.txt" ]; then
        after=$(head -n 1 "$last_dir/running-case.txt")   # the process hung or crashed in this case
        last=$((${#details[@]} - 1))
        details[$last]+=$'\n'"  it was running '$after' when it ended"
    else
        break
    fi
    [ -n "$after" ] || break
    part="ops-$((${#ops_dirs[@]} + 1))"
    run_kit "$part" 90 -- --phase ops --after-case "$after"
    ops_dirs+=("$OUT/$part")
done
if [ -z "$stop_reason" ] && [ -n "$(cat "${ops_dirs[@]/%//failed-cases.txt}" 2>/dev/null)" ]; then
    rerun_start=$SECONDS
    n=0
    reruns=""
    while IFS= read -r case_name && [ "$n" -lt 3 ]; do
        limit=$(allowance 30)
        [ "$limit" -lt 10 ] && break
        n=$((n + 1))
        dir="$OUT/ops-rerun-$n"
        mkdir -p "$dir"
        echo "== ops rerun $n: '$case_name' alone with CUDA_LAUNCH_BLOCKING=1 (at most $limit s)"
        CUDA_LAUNCH_BLOCKING=1 timeout -k 5 "$limit" "$kit" gpu-check "${simulate[@]}" --phase ops --case "$case_name" --out "$dir" \
            --budget-s $((limit - 5)) "${extra[@]}" > "$dir/console.log" 2>&1 &
        child=$!
        wait "$child"
        rc=$?
        child=""
        why=$(grep -m 1 -E 'FAIL|sticky' "$dir/console.log" | tr -s ' ' | cut -c1-300)
        reruns+=$'\n'"  rerun $n alone with CUDA_LAUNCH_BLOCKING=1, '$case_name': $(status_of "$rc")${why:+: $why}"
    done < <(cat "${ops_dirs[@]/%//failed-cases.txt}" 2>/dev/null)
    record ops-rerun "$([ "$n" -gt 0 ] && echo done || echo skipped)" - "$((SECONDS - rerun_start))" "$n failed case(s) run again alone (ops-rerun-N/)$reruns"
    write_summary
fi

# ---- 4.-7. the other phases ---------------------------------------------------------------------------------
run_kit train 90 -- --phase train --cudnn-first
run_kit nccl 30 -- --phase nccl
run_kit bench 150 -- --phase bench
modeled=()
[ -f "$here/modeled-h100-swin-t-b8.txt" ] && modeled=(--modeled "$here/modeled-h100-swin-t-b8.txt")
run_kit profile 50 CUDA_LAUNCH_BLOCKING=1 -- --phase profile "${modeled[@]}"

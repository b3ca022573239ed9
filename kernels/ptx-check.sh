#!/usr/bin/env bash
# ptx-check: assembles every kernels/*.ptx with NVIDIA's ptxas (CUDA 11.8, from Debian's non-free
# archive) for sm_80 and sm_90, fails on any error or warning, any spill, any local memory and any
# stack frame, and writes kernels/RESOURCES.md (registers, shared memory, spills, stack per kernel
# and architecture; then the hand-written kernels/roofline-notes.md).
#
# ptxas is fetched once into a cache folder with a PRIVATE apt configuration (the machine's apt
# sources are never touched; see docs/TOOLCHAIN.md):
#   SBP_CUDA_TOOLS   cache folder (default $HOME/.cache/sbp-cuda-tools)
#   SBP_PTXAS        use this ptxas instead (no download)
#   SBP_DEBIAN_MIRROR  Debian mirror URI (default: the machine's own, from /etc/apt)
# Usage: kernels/ptx-check.sh [--no-write]   (--no-write: check only, leave RESOURCES.md alone)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SBP_CUDA_TOOLS:-${HOME:-/root}/.cache/sbp-cuda-tools}
archs=(sm_80 sm_90)
write=1
[ "${1:-}" = "--no-write" ] && write=0
start=$(date +%s.%N)

die() { echo "ptx-check: error: $*" >&2; exit 1; }

mirror_uri() {
    bash "$(dirname "${BASH_SOURCE[0]}")/debian-mirror.sh" || die "no Debian mirror to download ptxas from (see above); or set SBP_PTXAS=/path/to/ptxas"
}

# Downloads nvidia-cuda-toolkit (about 87 MB) with a private apt state and extracts ptxas.
fetch_ptxas() {
    command -v apt-get >/dev/null || die "apt-get not found; install CUDA 11.8's ptxas yourself and set SBP_PTXAS=/path/to/ptxas"
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found; set SBP_PTXAS=/path/to/ptxas"
    local uri apt tmp deb
    uri=$(mirror_uri)
    apt="$cache/apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$cache"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm contrib non-free" > "$apt/sources.list"
    local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
             -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
             -o Acquire::Retries=2 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30
             -o APT::Sandbox::User=root -o Debug::NoLocking=1 -q)
    echo "ptx-check: fetching CUDA 11.8 ptxas (nvidia-cuda-toolkit, about 87 MB) from $uri into $cache"
    local log="$cache/apt-update.log"
    if ! apt-get "${o[@]}" update >"$log" 2>&1 || grep -qE '^(E|W): Failed to fetch|^Err:' "$log"; then
        cat "$log" >&2
        die "could not read the package lists of $uri (bookworm contrib non-free). Is the mirror reachable? Set SBP_DEBIAN_MIRROR to another Debian mirror, or SBP_PTXAS to an installed ptxas."
    fi
    tmp=$(mktemp -d "$cache/download.XXXXXX")
    if ! (cd "$tmp" && apt-get "${o[@]}" download nvidia-cuda-toolkit) >"$cache/apt-download.log" 2>&1; then
        cat "$cache/apt-download.log" >&2
        rm -rf "$tmp"
        die "could not download nvidia-cuda-toolkit from $uri (bookworm non-free)."
    fi
    local debs=("$tmp"/nvidia-cuda-toolkit_*.deb)
    deb=${debs[0]}
    [ -f "$deb" ] || { rm -rf "$tmp"; die "the download of nvidia-cuda-toolkit produced no .deb file"; }
    mkdir -p "$tmp/root"
    # ptxas is all we need; cuobjdump and nvdisasm come along for inspecting cubins by hand.
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/root" ./usr/bin/ptxas ./usr/bin/cuobjdump ./usr/bin/nvdisasm \
        || { rm -rf "$tmp"; die "could not extract ptxas from $(basename "$deb")"; }
    rm -rf "$cache/root"
    mv "$tmp/root" "$cache/root"
    basename "$deb" > "$cache/root/PACKAGE"
    rm -rf "$tmp" "$apt/cache/archives"/*.deb "$apt/cache"/*.bin "$apt/lists"
}

ptxas=${SBP_PTXAS:-$cache/root/usr/bin/ptxas}
if [ -z "${SBP_PTXAS:-}" ] && [ ! -x "$ptxas" ]; then fetch_ptxas; fi
[ -x "$ptxas" ] || die "ptxas not found at $ptxas"
version=$("$ptxas" --version | sed -n 's/.*release //p')
echo "ptx-check: $ptxas ($version)"

shopt -s nullglob
files=("$here"/*.ptx)
[ ${#files[@]} -gt 0 ] || die "no .ptx files in $here"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
rows=()
nkernels=0
for f in "${files[@]}"; do
    name=$(basename "$f")
    # The header every kernel file starts with (assembles with 11.8 ptxas, JIT-compiles up to CUDA 13).
    header=$(awk '/^[ \t]*(\/\/.*)?$/ { next } { gsub(/[ \t]+/, " "); sub(/ $/, ""); printf "%s|", $0; if (++k == 3) exit }' "$f")
    if [ "$header" != ".version 7.8|.target sm_80|.address_size 64|" ]; then
        echo "ptx-check: FAIL $name: must start with .version 7.8 / .target sm_80 / .address_size 64 (found: $header)" >&2
        failures=$((failures + 1))
        continue
    fi
    while read -r entry; do
        if ! [[ "$entry" =~ ^[a-z][a-z0-9_]*_(f32|f32x4|i32|u32|bf16|f16|b16)$ ]]; then
            echo "ptx-check: FAIL $name: entry '$entry' is not named <op>_<dtype> (e.g. gather_f32, gather_f32x4; b16: bfloat16 or float16 by a parameter)" >&2
            failures=$((failures + 1))
        fi
    done < <(sed -nE 's/^\s*\.visible\s+\.entry\s+([A-Za-z0-9_]+).*/\1/p' "$f")
    for arch in "${archs[@]}"; do
        out="$work/${name%.ptx}.$arch"
        if ! "$ptxas" -arch="$arch" -v --warning-as-error --warn-on-spills --warn-on-local-memory-usage \
                "$f" -o "$out.cubin" >"$out.log" 2>&1; then
            echo "ptx-check: FAIL $name ($arch): ptxas reported errors:" >&2
            sed 's/^/    /' "$out.log" >&2
            failures=$((failures + 1))
            continue
        fi
        # ptxas -v, per entry: "Compiling entry function 'k' for 'sm_80'", then
        # "N bytes stack frame, N bytes spill stores, N bytes spill loads" and
        # "Used N registers[, N bytes smem][, N bytes lmem], N bytes cmem[0]".
        while IFS='|' read -r kernel regs smem lmem stack sst sld; do
            [ -n "$kernel" ] || continue
            nkernels=$((nkernels + 1))
            rows+=("| $name | \`$kernel\` | $arch | $regs | $smem | $sst / $sld | $stack | $lmem |")
            if [ "$sst" != 0 ] || [ "$sld" != 0 ] || [ "$lmem" != 0 ] || [ "$stack" != 0 ]; then
                echo "ptx-check: FAIL $name ($arch) $kernel: spill stores $sst, spill loads $sld, lmem $lmem, stack frame $stack (all must be 0)" >&2
                failures=$((failures + 1))
            fi
        done < <(awk '
            function flush() { if (k != "") print k "|" regs "|" smem "|" lmem "|" stack "|" sst "|" sld; k = "" }
            /Compiling entry function/ { flush(); match($0, /'"'"'[^'"'"']+'"'"'/); k = substr($0, RSTART + 1, RLENGTH - 2); regs = 0; smem = 0; lmem = 0; stack = 0; sst = 0; sld = 0 }
            /bytes stack frame/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "bytes" && $(i+2) == "stack") stack = $i; if ($(i+2) == "spill" && $(i+3) ~ /^stores/) sst = $i; if ($(i+2) == "spill" && $(i+3) ~ /^loads/) sld = $i } }
            /Used [0-9]+ registers/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^registers/) regs = $i; if ($(i+2) ~ /^smem/) smem = $i; if ($(i+2) ~ /^lmem/) lmem = $i } }
            END { flush() }' "$out.log")
    done
done

elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
if [ "$failures" -ne 0 ]; then
    echo "ptx-check: $failures failure(s) (${elapsed} s)" >&2
    exit 1
fi

if [ "$write" = 1 ]; then
    {
        echo "# Kernel resources"
        echo
        echo "Written by \`kernels/ptx-check.sh\` (\`dotnet pwsh build.ps1 ptx-check\`) from \`ptxas -arch=sm_XX -v\`, ptxas $version."
        echo "Do not edit by hand. Shared memory is the static part; kernels that take dynamic shared memory"
        echo "(layer norm backward) get it at launch. Spills, stack and local memory must stay 0 (CI fails otherwise)."
        echo
        echo "| file | kernel | arch | registers | smem (bytes) | spill stores / loads | stack | lmem |"
        echo "|---|---|---|---|---|---|---|---|"
        printf '%s\n' "${rows[@]}" | sort -t'|' -k2,2 -k3,3 -k4,4
        # The hand-written notes on kernels below half of their modeled roofline (sbp kernels model).
        if [ -f "$here/roofline-notes.md" ]; then echo; cat "$here/roofline-notes.md"; fi
    } > "$here/RESOURCES.md"
fi
echo "ptx-check: ${#files[@]} files, $nkernels kernel x arch builds, 0 spills, 0 local memory, 0 stack (${elapsed} s)"

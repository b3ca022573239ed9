#!/usr/bin/env bash
# Plants a 0.5% error in one backward rule at a time, rebuilds, runs the engine tests alone and reports
# how many fail; then restores the file. Every plant must fail at least one test, else this script fails.
# Usage: bash tests/planted-errors/run.sh [PLANT...]   (default: all; writes tests/planted-errors/RESULTS.md)
# Needs a clean working tree in engine/ (the plants are text substitutions that git restores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

cpu=engine/Backends/Cpu
# name | file | perl substitution (applied with -0pi; must match) | what the plant does
plants=(
"gelu|$cpu/CpuMath.cs|s/return \(float\)\(cdf \+ x \* pdf\);/return (float)((cdf + x * pdf) * 1.005);/; s/return cdf \+ x \* pdf;/return (cdf + x * pdf) * C(1.005);/|gelu'(x) scaled by 1.005 (scalar and vector paths)"
"layernorm|$cpu/CpuBackend.Norm.cs|s/\(dn - vDn - xhat \* vDnXhat\) \* vrs/(dn - vDn - xhat * vDnXhat) * vrs * Vector256.Create(1.005f)/; s/d\[j\] = \(dn - meanDn - xhat \* meanDnXhat\) \* rs;/d[j] = (dn - meanDn - xhat * meanDnXhat) * rs * 1.005f;/|layer norm dx scaled by 1.005"
"softmax|$cpu/CpuBackend.Softmax.cs|s/(TensorPrimitives.Multiply\(d, new ReadOnlySpan<float>\(y, n\), d\);)/\$1 TensorPrimitives.Multiply(d, 1.005f, d);/|softmax dx scaled by 1.005 (also attention's dS)"
"conv-filter|$cpu/CpuBackend.Conv.cs|s/new GemmSpec\(false, true, og, ([ck]g), checked\(\(int\)p\), Beta: 1f\)/new GemmSpec(false, true, og, \$1, checked((int)p), Alpha: 1.005f, Beta: 1f)/g|convolution filter gradient scaled by 1.005 (pointwise and im2col paths)"
"attention-dv|$cpu/CpuBackend.Attention.cs|s/var values = new GemmSpec\(true, false, m, dvd, n\);/var values = new GemmSpec(true, false, m, dvd, n, Alpha: 1.005f);/|fused attention dV scaled by 1.005"
)

selected=("$@")
out=tests/planted-errors/RESULTS.md
if [ ${#selected[@]} -eq 0 ]; then
    echo "| plant | what | engine tests failed | first failures |" >"$out.tmp"
    echo "|---|---|---|---|" >>"$out.tmp"
fi

restore() { git checkout -q -- "$cpu"; }
trap restore EXIT

status=0
for entry in "${plants[@]}"; do
    IFS='|' read -r name file subst what <<<"$entry"
    if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" $name "* ]]; then continue; fi
    if ! git diff --quiet -- "$file"; then echo "error: $file has local changes; commit or stash them first" >&2; exit 2; fi
    perl -0pi -e "$subst" "$file"
    if git diff --quiet -- "$file"; then echo "error: plant '$name' no longer matches $file; update the script" >&2; exit 2; fi
    echo "== $name: $what"
    if ! dotnet build tests/Sbp.Engine.Tests -c Release -v q -nologo >/dev/null 2>&1; then
        echo "error: plant '$name' does not compile; update the script" >&2; exit 2
    fi
    log=$(mktemp)
    dotnet test tests/Sbp.Engine.Tests -c Release --no-build 2>&1 >"$log" || true
    failed=$(sed -n 's/.*Failed: *\([0-9]*\), Passed:.*/\1/p' "$log" | tail -n 1)
    names=$(grep -E '^  Failed ' "$log" | sed 's/^  Failed \(.*\) \[[^]]*\]$/\1/' | head -n 3 | paste -sd ';' - | sed 's/;/; /g' || true)
    echo "   ${failed:-0} engine tests failed: $names"
    [ "${failed:-0}" -gt 0 ] || { echo "   NOT CAUGHT" >&2; status=1; }
    [ ${#selected[@]} -eq 0 ] && echo "| $name | $what | ${failed:-0} | $names |" >>"$out.tmp"
    rm -f "$log"
    git checkout -q -- "$file"
done
dotnet build tests/Sbp.Engine.Tests -c Release -v q -nologo >/dev/null 2>&1 || true
[ ${#selected[@]} -eq 0 ] && mv "$out.tmp" "$out"
exit "$status"

#!/usr/bin/env bash
# fetch-libcuda: puts the real NVIDIA driver library libcuda.so.1 from Debian's non-free libcuda1
# package (bookworm, driver 535) into the CUDA tools cache, so the engine's driver-API bindings can
# be checked against it without a GPU (tests/Sbp.Kernels.Tests/Cuda/LibcudaExportTests.cs: every
# bound export resolves; cuInit answers "no device").
#
# Same cache and private apt configuration as ptx-check.sh (the machine's apt sources are never
# touched; docs/TOOLCHAIN.md):
#   SBP_CUDA_TOOLS     cache folder (default $HOME/.cache/sbp-cuda-tools); the library lands in
#                      $SBP_CUDA_TOOLS/libcuda/libcuda.so.1
#   SBP_DEBIAN_MIRROR  Debian mirror URI (default: the machine's own, from /etc/apt; debian-mirror.sh)
# Prints the folder holding libcuda.so.1. Downloads about 20 MB once.
set -euo pipefail

cache=${SBP_CUDA_TOOLS:-${HOME:-/root}/.cache/sbp-cuda-tools}
dest="$cache/libcuda"
die() { echo "fetch-libcuda: error: $*" >&2; exit 1; }

if [ -f "$dest/libcuda.so.1" ]; then echo "$dest"; exit 0; fi

command -v apt-get >/dev/null || die "apt-get not found; copy a libcuda.so.1 (not the toolkit stub) into $dest yourself"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

uri=$(bash "$(dirname "${BASH_SOURCE[0]}")/debian-mirror.sh") || die "no Debian mirror to download libcuda1 from (see above)"

apt="$cache/apt-libcuda"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm contrib non-free" > "$apt/sources.list"
o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
   -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
   -o Acquire::Retries=2 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30
   -o APT::Sandbox::User=root -o Debug::NoLocking=1 -q)
echo "fetch-libcuda: downloading libcuda1 from $uri (bookworm non-free) into $dest" >&2
log="$apt/apt.log"
if ! apt-get "${o[@]}" update >"$log" 2>&1 || grep -qE '^(E|W): Failed to fetch|^Err:' "$log"; then
    cat "$log" >&2
    die "could not read the package lists of $uri; set SBP_DEBIAN_MIRROR to another Debian mirror"
fi
tmp=$(mktemp -d "$cache/libcuda-download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get "${o[@]}" download libcuda1) >>"$log" 2>&1 || { cat "$log" >&2; die "could not download libcuda1"; }
debs=("$tmp"/libcuda1_*.deb)
[ -f "${debs[0]}" ] || die "the download of libcuda1 produced no .deb file"
mkdir -p "$tmp/root"
dpkg-deb -x "${debs[0]}" "$tmp/root"
lib=$(find "$tmp/root" -name 'libcuda.so.[0-9]*.*' -type f | head -n 1)
[ -n "$lib" ] || die "$(basename "${debs[0]}") holds no libcuda.so.<version>"
mkdir -p "$dest.new"
cp "$lib" "$dest.new/libcuda.so.1"
basename "${debs[0]}" > "$dest.new/PACKAGE"
rm -rf "$dest" && mv "$dest.new" "$dest"
rm -rf "$apt/lists" "$apt/cache"
echo "$dest"

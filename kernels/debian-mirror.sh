#!/usr/bin/env bash
# debian-mirror: prints the Debian mirror URI the scripts that download Debian packages use
# (ptx-check.sh, fetch-libcuda.sh, benchmarks/bench), from, in order:
#   SBP_DEBIAN_MIRROR            an explicit URI
#   the machine's apt sources    $SBP_APT_ETC (default /etc/apt): sources.list.d/*.sources (deb822)
#                                and sources.list / sources.list.d/*.list (one-line form); the first
#                                URI whose path ends in /debian (not -security or -updates)
# and fails with a message saying so when none is found: no address is written into the repository.
set -euo pipefail

if [ -n "${SBP_DEBIAN_MIRROR:-}" ]; then echo "$SBP_DEBIAN_MIRROR"; exit 0; fi
etc=${SBP_APT_ETC:-/etc/apt}
uri=""
for f in "$etc"/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f")
    [ -n "$uri" ] && break
done
if [ -z "$uri" ]; then
    for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '$1=="deb" {for(i=2;i<=NF;i++) if ($i ~ /^(https?|ftp):\/\// && $i ~ /\/debian\/?$/) {print $i; exit}}' "$f")
        [ -n "$uri" ] && break
    done
fi
if [ -z "$uri" ]; then
    echo "debian-mirror: error: no Debian mirror found in $etc (sources.list.d/*.sources or sources.list); set SBP_DEBIAN_MIRROR to a Debian mirror URI" >&2
    exit 1
fi
echo "$uri"

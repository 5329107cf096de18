#!/bin/sh
# Build the default model bundle signed with the DEV key (models/keys/dev.key), for development,
# tests and demos. Only an appliance started with --dev trusts that key.
#
# Usage: packaging/build-dev-bundle.sh [CACHE] [OUT]
#   CACHE  download cache filled by packaging/fetch-models.py (default: $FRONTDESK_CACHE or ~/.cache/frontdesk)
#   OUT    bundle directory to (re)build (default: CACHE/bundles/dev)
#
# Idempotent: OUT.stamp records the inputs (sources.toml, dev key, tool version). When they are
# unchanged and OUT is complete, nothing is done. Otherwise the bundle is rebuilt with version
# YYYYMMDDHHMM (UTC; always above the previous build's) and expires in 365 days. Converted files
# (the Whisper models, the name lists, the name homophone tables) are cached under CACHE/converted/,
# so a rebuild does not reconvert. The homophone tables need the espeak-ng program (setup.sh
# installs it); made for the first time, they take about a minute.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}}
out=${2:-$cache/bundles/dev}
stamp="$out.stamp"

tool() {
    (cd "$repo" && cargo run -q -p fd-models --bin fd-modeltool -- "$@")
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

inputs="sources $(sha "$repo/models/sources.toml")
key $(sha "$repo/models/keys/dev.key")
tool $(tool --version)"

if [ -f "$stamp" ] && [ -f "$out/manifest.json" ] && [ -f "$out/manifest.sig" ] \
    && [ "$(sed '/^version /d' "$stamp")" = "$inputs" ]; then
    echo "build-dev-bundle: $out is up to date ($(grep '^version ' "$stamp"))"
    exit 0
fi

version=$(date -u +%Y%m%d%H%M)
if [ -f "$stamp" ]; then
    prev=$(sed -n 's/^version //p' "$stamp")
    if [ -n "$prev" ] && [ "$version" -le "$prev" ]; then
        version=$((prev + 1))
    fi
fi

mkdir -p "$(dirname "$out")"
rm -rf "$out.new" "$out.new.partial"
tool build --sources "$repo/models/sources.toml" --cache "$cache" --key "$repo/models/keys/dev.key" \
    --version "$version" --expires-days 365 --name frontdesk-dev --out "$out.new"
rm -rf "$out"
mv "$out.new" "$out"
printf '%s\nversion %s\n' "$inputs" "$version" > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
echo "build-dev-bundle: built $out (version $version)"

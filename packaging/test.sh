#!/usr/bin/env bash
# Command 2 of the README: set everything up (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/setup.sh --test
export FRONTDESK_CACHE="${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}"
# One build, one profile: the tests use the binaries setup.sh just built.
cargo test --workspace --no-fail-fast "$@"
# The engine proof tests with the real models (WER on LibriVox at 16 kHz and over G.711, Piper →
# Whisper, grammar-constrained JSON, VAD, crash/restart). Two threads: each test starts engines.
cargo test -p fd-models --features engine-tests --no-fail-fast -- --test-threads=2
